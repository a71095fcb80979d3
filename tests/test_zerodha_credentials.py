"""Broker credentials at rest, the live-account glue, and the Kite rate limiter's arithmetic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from openalgo_lab.brokers.zerodha import ZerodhaBroker
from openalgo_lab.brokers.zerodha.http import SlidingWindowLimiter
from openalgo_lab.domain.clock import ManualClock
from openalgo_lab.domain.errors import BrokerSessionExpired, NotFoundError, ValidationError
from openalgo_lab.engine.live import LiveAccounts
from openalgo_lab.store import state_credentials as creds
from openalgo_lab.store.state import StateStore

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 10:30 IST


@pytest.fixture
def live(tmp_path: Path) -> LiveAccounts:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    state.migrate()
    yield LiveAccounts(state, tmp_path, clock=ManualClock(NOW))  # type: ignore[misc]
    state.close()


def test_secrets_are_encrypted_at_rest(live: LiveAccounts) -> None:
    live.configure(
        "kite",
        "zerodha",
        api_key="kite_key",
        api_secret="kite_secret_value",
        options={"base_url": "http://127.0.0.1:1"},
    )
    live.save_login("kite", "token_value_123", "AB1234", NOW + timedelta(hours=14))
    with live.state.engine.connect() as conn:
        dump = " ".join(
            str(row) for row in conn.execute(text("SELECT * FROM broker_credentials")).all()
        )
    for secret in ("kite_key", "kite_secret_value", "token_value_123"):
        assert secret not in dump
    stored = live.stored("kite")
    assert stored is not None and stored.api_secret == "kite_secret_value"
    assert stored.options == {"base_url": "http://127.0.0.1:1"}
    assert "kite_secret_value" not in repr(stored) and "token_value_123" not in repr(stored)
    assert live.stored_login("kite") == ("token_value_123", "AB1234", NOW + timedelta(hours=14))


def test_new_api_key_drops_the_login_and_expired_logins_are_not_offered(
    live: LiveAccounts,
) -> None:
    live.configure("kite", "zerodha", api_key="k1", api_secret="s1")
    live.save_login("kite", "tok", "AB1234", NOW - timedelta(minutes=1))
    assert live.stored_login("kite") is None  # expired
    live.save_login("kite", "tok", "AB1234", NOW + timedelta(hours=1))
    live.configure("kite", "zerodha", api_key="k1", api_secret="s2")  # same app: kept
    assert live.stored_login("kite") is not None
    live.configure("kite", "zerodha", api_key="k2", api_secret="s2")  # another app: dropped
    assert live.stored_login("kite") is None


def test_configure_checks_broker_and_options(live: LiveAccounts) -> None:
    with pytest.raises(NotFoundError, match="not installed"):
        live.configure("a", "nosuchbroker", api_key="k", api_secret="s")
    with pytest.raises(ValidationError, match="unknown Zerodha options"):
        live.configure("a", "zerodha", api_key="k", api_secret="s", options={"colour": "red"})
    with pytest.raises(ValidationError, match="timeout"):
        live.configure("a", "zerodha", api_key="k", api_secret="s", options={"timeout": "x"})
    with pytest.raises(ValidationError, match="api_secret: is required"):
        live.configure("a", "zerodha", api_key="k", api_secret=" ")
    with pytest.raises(ValidationError, match="cannot be configured with credentials"):
        live.configure("a", "sandbox", api_key="k", api_secret="s")
    assert live.stored("a") is None and live.build("a") is None


def test_build_restores_the_stored_login(live: LiveAccounts) -> None:
    live.configure("kite", "zerodha", api_key="k", api_secret="s")
    broker = live.build("kite")
    assert isinstance(broker, ZerodhaBroker) and not broker.logged_in
    with pytest.raises(
        BrokerSessionExpired,
        match=r"broker session expired: the Zerodha \(Kite\) login of account 'kite'",
    ):
        broker.session.ensure()
    live.save_login("kite", "tok", "AB1234", NOW + timedelta(hours=1))
    broker.session.ensure()  # found in the store: a login made elsewhere reaches it
    assert broker.logged_in and broker.session.login is not None
    assert broker.session.login.user_id == "AB1234"
    assert "tok" not in repr(broker) and "'s'" not in repr(broker)
    rebuilt = live.build("kite")
    assert rebuilt is not None and rebuilt.logged_in


def test_modes_and_removal(live: LiveAccounts) -> None:
    live.configure("kite", "zerodha", api_key="k", api_secret="s")
    live.set_analyze("kite", False)
    assert [(m.name, m.broker, m.analyze) for m in live.modes()] == [("kite", "zerodha", False)]
    creds.remove_broker(live.state, "kite")
    assert [(m.name, m.broker, m.analyze) for m in live.modes()] == [("kite", "sandbox", True)]
    assert live.stored("kite") is None
    with pytest.raises(NotFoundError):
        creds.store_login(
            live.state, live.box, "kite", access_token="t", user_id="u", expires_at=NOW
        )


def test_sliding_window_limiter_spreads_a_burst() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = SlidingWindowLimiter([(10, 1.0), (200, 60.0)], clock=lambda: now[0], sleep=sleep)

    async def burst(n: int) -> list[float]:
        stamps = []
        for _ in range(n):
            async with limiter.slot():
                stamps.append(now[0])
        return stamps

    stamps = asyncio.run(burst(25))
    assert stamps[:10] == [0.0] * 10 and stamps[10:20] == [1.0] * 10 and stamps[20:] == [2.0] * 5
    # over a minute, at most 200 in any 60 s window
    stamps += asyncio.run(burst(400))
    for i in range(200, len(stamps)):
        assert stamps[i] - stamps[i - 200] >= 60.0 - 1e-9
    with pytest.raises(ValueError):
        SlidingWindowLimiter([(0, 1.0)])


def test_limiter_counts_a_request_until_its_answer() -> None:
    """A slow answer pushes the next request out: the server may have seen it late."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = SlidingWindowLimiter([(1, 1.0)], clock=lambda: now[0], sleep=sleep, poll=0.1)

    async def run() -> float:
        first = await limiter.acquire()
        now[0] = 0.3  # the answer takes 0.3 s
        limiter.release(first)
        await limiter.acquire()
        return now[0]

    assert asyncio.run(run()) == pytest.approx(1.3)
