"""The official `openalgo` client, unchanged, against a real `jupyter server` with the extension.

The client is synchronous and can send neither a Jupyter token nor an XSRF cookie, so this
is the test that the OpenAlgo routes are reachable the way outside callers reach them. Both
client lines are run: 1.0.47 (the newest that installs on Python 3.11, in the project's
venv) and the current 2.x (Python >= 3.12 only, in a venv cached under `.venv-client-2x/`).
The same script runs in both interpreters and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CLIENT_2X_VENV = REPO / ".venv-client-2x"

CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import date, timedelta
    import openalgo
    from openalgo import api

    host, key = sys.argv[1], sys.argv[2]
    client = api(api_key=key, host=host, timeout=30)
    today = date.today()
    out = {"version": getattr(openalgo, "__version__", "?")}
    placed = client.placeorder(strategy="client", symbol="SBIN", action="BUY", exchange="NSE",
                               price_type="MARKET", product="MIS", quantity=1)
    out["placeorder"] = placed
    out["orderstatus"] = client.orderstatus(order_id=placed.get("orderid", ""), strategy="client")
    out["orderbook"] = client.orderbook()
    out["positionbook"] = client.positionbook()
    out["funds"] = client.funds()
    out["quotes"] = client.quotes(symbol="SBIN", exchange="NSE")
    out["depth"] = client.depth(symbol="SBIN", exchange="NSE")
    history = client.history(symbol="SBIN", exchange="NSE", interval="D",
                             start_date=str(today - timedelta(days=30)), end_date=str(today))
    out["history"] = (
        {"type": type(history).__name__, "rows": len(history),
         "columns": list(history.columns), "index": type(history.index).__name__}
        if hasattr(history, "columns") else history
    )
    out["intervals"] = client.intervals()
    out["search"] = client.search(query="SBIN", exchange="NSE")
    out["symbol"] = client.symbol(symbol="SBIN", exchange="NSE")
    out["expiry"] = client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="futures")
    out["bad_quantity"] = client.placeorder(strategy="client", symbol="SBIN", action="BUY",
                                            exchange="NSE", quantity=-1)
    out["bad_key"] = api(api_key="0" * 64, host=host).funds()
    print(json.dumps(out, default=str))
    """
)


def _run_client(python: Path | str, server: LiveServer) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", CLIENT_SCRIPT, server.url, server.key],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # never import the repository's own packages by accident
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check(out: dict[str, Any]) -> None:
    placed = out["placeorder"]
    assert placed["status"] == "success", placed
    orderid = placed["orderid"]
    assert isinstance(orderid, str) and orderid

    status = out["orderstatus"]
    assert status["status"] == "success" and status["data"]["orderid"] == orderid
    assert orderid in [o["orderid"] for o in out["orderbook"]["data"]["orders"]]
    assert out["positionbook"]["status"] == "success"
    assert "availablecash" in out["funds"]["data"]
    assert out["quotes"]["data"]["ltp"] > 0
    assert len(out["depth"]["data"]["bids"]) == 5

    history = out["history"]
    assert history["type"] == "DataFrame" and history["rows"] > 0, history
    assert history["index"] == "DatetimeIndex"
    assert {"open", "high", "low", "close", "volume"} <= set(history["columns"])

    assert "D" in out["intervals"]["data"]["days"]
    assert any(row["symbol"] == "SBIN" for row in out["search"]["data"])
    assert out["symbol"]["data"]["symbol"] == "SBIN"
    assert out["expiry"]["status"] == "success" and out["expiry"]["data"]

    bad = out["bad_quantity"]
    assert bad["status"] == "error" and bad["code"] == 400, bad
    assert "quantity" in bad["message"]
    bad_key = out["bad_key"]
    assert bad_key["status"] == "error" and bad_key["code"] == 403
    assert "Invalid openalgo apikey" in bad_key["message"]


def test_official_client_1_0_47(live_server: LiveServer) -> None:
    pytest.importorskip("openalgo", reason="pip install openalgo==1.0.47 into the venv")
    out = _run_client(sys.executable, live_server)
    _check(out)


def _python_3_12() -> str | None:
    """pyenv's 3.12 first: a `python3.12` on PATH may be a pyenv shim that is not active."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        versions = Path(done.stdout.strip()) / "versions"
        if done.returncode == 0 and versions.is_dir():
            candidates += [str(p / "bin" / "python") for p in sorted(versions.glob("3.12*"))]
    if found := shutil.which("python3.12"):
        candidates.append(found)
    for candidate in candidates:
        probe = [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def _client_2x_python() -> Path:
    """The 2.x client's interpreter, creating (once) its cached venv."""
    python = CLIENT_2X_VENV / "bin" / "python"
    if python.exists():
        ok = subprocess.run([str(python), "-c", "import openalgo"], capture_output=True)
        if ok.returncode == 0:
            return python
    base = _python_3_12()
    if base is None:
        pytest.skip("Python 3.12 not found (no python3.12 on PATH, no pyenv 3.12.1)")
    subprocess.run([base, "-m", "venv", "--clear", str(CLIENT_2X_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "openalgo>=2"], check=True, timeout=600
    )
    return python


def test_official_client_2x(live_server: LiveServer) -> None:
    python = _client_2x_python()
    out = _run_client(python, live_server)
    assert str(out["version"]).startswith("2."), out["version"]
    _check(out)
