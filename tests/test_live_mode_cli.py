"""`openalgo-lab accounts set-broker` and `accounts login` against the fake Kite server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from openalgo_lab.cli import main
from openalgo_lab.domain.clock import SystemClock
from openalgo_lab.engine.live import LiveAccounts
from openalgo_lab.store.state import StateStore
from tests.fakes.kite_server import KiteFake


@pytest.fixture
def fake() -> Iterator[KiteFake]:
    with KiteFake(api_key="kite_key", api_secret="kite_secret", user_id="AB1234") as running:
        yield running


def cli(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), *args])


def stored(data_dir: Path) -> tuple[str, str, bool]:
    state = StateStore(f"sqlite:///{data_dir / 'state.db'}")
    try:
        live = LiveAccounts(state, data_dir, clock=SystemClock())
        found = live.stored("kite")
        assert found is not None
        return found.broker, found.user_id, live.stored_login("kite") is not None
    finally:
        state.close()


def test_set_broker_and_login(
    tmp_path: Path,
    fake: KiteFake,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = ["accounts", "set-broker", "kite", "zerodha", "--api-key", "kite_key"]
    assert (
        cli(tmp_path, *base, "--api-secret", "kite_secret", "--option", f"base_url={fake.base_url}")
        == 0
    )
    out = capsys.readouterr().out
    assert "broker zerodha configured" in out and "kite_secret" not in out
    assert stored(tmp_path) == ("zerodha", "", False)
    # the login prints Kite's login page and reads the redirect address from the terminal
    redirect = f"http://127.0.0.1/cb?request_token={fake.request_token()}&status=success\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(redirect))
    assert cli(tmp_path, "accounts", "login", "kite") == 0
    out = capsys.readouterr().out
    assert "kite.zerodha.com/connect/login?v=3&api_key=kite_key" in out
    assert "logged in to zerodha as AB1234 until" in out and "IST" in out
    assert stored(tmp_path) == ("zerodha", "AB1234", True)
    assert cli(tmp_path, "accounts", "login", "kite", fake.request_token()) == 0
    assert cli(tmp_path, "accounts") == 0
    listing = capsys.readouterr().out
    (line,) = [row for row in listing.splitlines() if row.startswith("kite")]
    assert "analyze" in line and "zerodha" in line and "logged in" in line


def test_account_errors_are_one_line(
    tmp_path: Path, fake: KiteFake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(tmp_path, "accounts", "login", "nobody", "tok") == 2
    assert "has no live broker" in capsys.readouterr().err
    base = ["accounts", "set-broker", "kite", "zerodha", "--api-key", "k", "--api-secret", "s"]
    assert cli(tmp_path, *base, "--option", "colour=red") == 2
    assert "unknown Zerodha options colour" in capsys.readouterr().err
    assert cli(tmp_path, *base, "--option", "novalue") == 2
    assert "is not NAME=VALUE" in capsys.readouterr().err
    assert (
        cli(
            tmp_path,
            "accounts",
            "set-broker",
            "kite",
            "nosuch",
            "--api-key",
            "k",
            "--api-secret",
            "s",
        )
        == 2
    )
    assert "not installed" in capsys.readouterr().err
    assert cli(tmp_path, *base, "--option", f"base_url={fake.base_url}") == 0
    assert cli(tmp_path, "accounts", "login", "kite", "badtoken123") == 2
    err = capsys.readouterr().err
    assert "Kite refused the login" in err and "Traceback" not in err
