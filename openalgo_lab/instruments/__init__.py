"""Master contract: OpenAlgo-normalised instruments, lookups, expiries, chains and search."""

from openalgo_lab.instruments.master import (
    MasterContract,
    instrument_record,
    load_csv,
    save_csv,
)
from openalgo_lab.instruments.sample import build_sample_master, reference_prices, sample_master

__all__ = [
    "MasterContract",
    "build_sample_master",
    "instrument_record",
    "load_csv",
    "reference_prices",
    "sample_master",
    "save_csv",
]
