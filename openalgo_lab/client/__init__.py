"""Clients of the engine: the OpenAlgo-compatible `Client` over an embedded or remote engine."""

from openalgo_lab.client.api import Client, Transport

__all__ = ["Client", "Transport"]
