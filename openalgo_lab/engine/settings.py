"""One settings object for the engine, filled from `OPENALGO_LAB_*` environment variables.

The Jupyter extension (traitlets) and the CLI build the same object, so the data directory,
database URL and market hours mean the same thing everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from openalgo_lab.domain.calendar import MarketHours, market_hours_from_env

ENV_PREFIX = "OPENALGO_LAB_"
DEFAULT_DATA_DIR = Path.home() / ".openalgo-lab"


class SettingsError(ValueError):
    """A configuration value is wrong; the message says which and why."""


@dataclass(frozen=True)
class EngineSettings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty: SQLite file `state.db` in the data directory
    market_hours: MarketHours = MarketHours.EXCHANGE
    seed: int = 0
    capital: Decimal = Decimal(10_000_000)
    step_interval: float = 0.25  # seconds between sandbox matching steps
    max_order_value: Decimal = Decimal(50_000_000)  # sane default risk limit (₹5 crore)
    max_order_quantity: int = 100_000
    accounts: tuple[str, ...] = field(default=("default",))
    # "live": an account's sandbox matches against its live broker's quotes (OpenAlgo's
    # analyzer) once a live broker is configured; "simulated": always the simulated market
    sandbox_prices: str = "simulated"

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'state.db'}"

    @property
    def history_path(self) -> Path:
        return self.data_dir / "history.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "engine.lock"

    @classmethod
    def from_env(cls, **overrides: object) -> EngineSettings:
        env = os.environ
        values: dict[str, object] = {}
        if data_dir := env.get(ENV_PREFIX + "DATA_DIR"):
            values["data_dir"] = Path(data_dir).expanduser()
        if url := env.get(ENV_PREFIX + "DATABASE_URL"):
            values["database_url"] = url
        try:
            values["market_hours"] = market_hours_from_env()
        except ValueError as err:
            raise SettingsError(str(err)) from None
        if seed := env.get(ENV_PREFIX + "SEED"):
            values["seed"] = _int(seed, "SEED")
        if capital := env.get(ENV_PREFIX + "CAPITAL"):
            values["capital"] = _decimal(capital, "CAPITAL")
        if prices := env.get(ENV_PREFIX + "SANDBOX_PRICES"):
            values["sandbox_prices"] = _choice(prices, "SANDBOX_PRICES", SANDBOX_PRICES)
        if accounts := env.get(ENV_PREFIX + "ACCOUNTS"):
            values["accounts"] = tuple(a.strip() for a in accounts.split(",") if a.strip())
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


SANDBOX_PRICES = ("simulated", "live")


def _choice(text: str, name: str, choices: tuple[str, ...]) -> str:
    value = text.strip().lower()
    if value not in choices:
        raise SettingsError(f"{ENV_PREFIX}{name}={text!r} must be one of {', '.join(choices)}")
    return value


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name}={text!r} is not a whole number") from None


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise SettingsError(f"{ENV_PREFIX}{name}={text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise SettingsError(f"{ENV_PREFIX}{name}={text!r} must be a positive number")
    return value
