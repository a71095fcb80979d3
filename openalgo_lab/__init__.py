"""OpenAlgo Lab: a notebook-native research-and-trade workbench for Indian markets."""

from openalgo_lab.connect import connect

__all__ = ["connect"]
__version__ = "0.1.0"
