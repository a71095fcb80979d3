"""Zerodha Kite Connect v3 over httpx (see `broker.ZerodhaBroker`)."""

from openalgo_lab.brokers.zerodha.broker import KiteConfig, ZerodhaBroker

__all__ = ["KiteConfig", "ZerodhaBroker"]
