"""`openalgo_lab.connect()`: the one way a notebook, script or widget gets a Client."""

from __future__ import annotations

from pathlib import Path

from openalgo_lab.client.api import Client


def connect(
    *,
    embedded: bool = False,
    data_dir: str | Path | None = None,
    account: str | None = None,
    market_hours: str | None = None,
) -> Client:
    """A Client for the running engine.

    `embedded=True` starts an engine in this process on `data_dir` (default: the
    `OPENALGO_LAB_DATA_DIR` setting). `market_hours="always"` lets its sandbox trade at any
    hour (default: the `OPENALGO_LAB_MARKET_HOURS` setting, else real sessions).

    Finding a running Jupyter server extension is the job of the remote transport, which the
    server-extension work adds; until then only the embedded engine is available, and asking
    for a remote one says so.
    """
    if not embedded:
        raise RuntimeError(
            "No OpenAlgo Lab server to connect to yet: use openalgo_lab.connect(embedded=True)"
        )
    from openalgo_lab.client.embedded import EmbeddedTransport
    from openalgo_lab.domain.calendar import MarketHours
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.engine.settings import EngineSettings

    overrides: dict[str, object] = {}
    if market_hours is not None:
        overrides["market_hours"] = MarketHours(market_hours)
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir).expanduser()
    engine = Engine(EngineSettings.from_env(**overrides))
    return Client(EmbeddedTransport(engine, account=account))
