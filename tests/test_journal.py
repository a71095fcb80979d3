"""Order journal on SQLite and PostgreSQL: idempotency, in-flight recovery, secrets, speed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from openalgo_lab.domain.errors import NotFoundError
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_journal import (
    ACCEPTED,
    ACKNOWLEDGED,
    REJECTED,
    Journal,
    JournalBegin,
    JournalError,
    strip_secrets,
)
from openalgo_lab.store.state_models import JournalEntry, JournalTransition

ORDER = {
    "apikey": "a" * 64,
    "strategy": "test",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "quantity": "10",
    "pricetype": "MARKET",
    "product": "MIS",
}
OK = {"status": "success", "orderid": "25110100000001"}


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    store = StateStore(state_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def journal(store: StateStore) -> Journal:
    return Journal(store)


def begin(journal: Journal, key: str, account: str = "default", **request: str) -> JournalBegin:
    return journal.begin(
        account=account, action="placeorder", idempotency_key=key, request={**ORDER, **request}
    )


def count(store: StateStore, model: type[JournalEntry] | type[JournalTransition]) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def test_begin_acknowledge_transition(journal: Journal, store: StateStore) -> None:
    started = begin(journal, "k1")
    assert not started.duplicate and started.previous_status == ACCEPTED
    assert started.previous_response is None
    assert [r.entry_id for r in journal.in_flight()] == [started.entry_id]

    journal.acknowledge(started.entry_id, orderid="25110100000001", response=OK)
    assert journal.in_flight() == []
    journal.transition("25110100000001", "open")
    journal.transition(started.entry_id, "complete", "filled 10 @ 801.05")

    record = journal.lookup("default", "k1")
    assert record is not None
    assert (record.status, record.orderid, record.response) == ("complete", "25110100000001", OK)
    assert record.action == "placeorder" and record.request["symbol"] == "SBIN"
    assert record.created_at.tzinfo == UTC and record.updated_at >= record.created_at
    history = journal.history(started.entry_id)
    assert [(h.status, h.detail) for h in history] == [
        (ACCEPTED, "placeorder"),
        (ACKNOWLEDGED, "orderid 25110100000001"),
        ("open", ""),
        ("complete", "filled 10 @ 801.05"),
    ]
    assert all(h.at.tzinfo == UTC for h in history)


def test_reject_leaves_only_the_rejected_entry(journal: Journal, store: StateStore) -> None:
    started = begin(journal, "k1", quantity="0")
    response = {"status": "error", "message": "quantity: must be positive"}
    journal.reject(started.entry_id, reason="quantity: must be positive", response=response)
    journal.reject(started.entry_id, reason="again", response=response)  # harmless repeat
    record = journal.get(started.entry_id)
    assert record is not None
    assert (record.status, record.reason, record.response) == (
        REJECTED,
        response["message"],
        response,
    )
    assert record.orderid is None and not record.in_flight
    assert [h.status for h in journal.history(started.entry_id)] == [ACCEPTED, REJECTED]
    with pytest.raises(JournalError, match="not in flight"):
        journal.acknowledge(started.entry_id, orderid="1", response=OK)


def test_settling_twice_is_refused_unless_identical(journal: Journal) -> None:
    started = begin(journal, "k1")
    journal.acknowledge(started.entry_id, orderid="7", response=OK)
    journal.acknowledge(started.entry_id, orderid="7", response=OK)  # a retried ack
    with pytest.raises(JournalError, match="'acknowledged', not in flight"):
        journal.acknowledge(started.entry_id, orderid="8", response=OK)
    with pytest.raises(JournalError, match="cannot reject"):
        journal.reject(started.entry_id, reason="late", response={})
    with pytest.raises(NotFoundError):
        journal.acknowledge(999_999, orderid="9", response=OK)
    assert len(journal.history(started.entry_id)) == 2


def test_retry_with_the_same_key_returns_the_first_result(
    journal: Journal, store: StateStore
) -> None:
    first = begin(journal, "retry-1")
    in_progress = begin(journal, "retry-1")
    assert in_progress.duplicate and in_progress.entry_id == first.entry_id
    assert (in_progress.previous_status, in_progress.previous_response) == (ACCEPTED, None)

    journal.acknowledge(first.entry_id, orderid="25110100000001", response=OK)
    again = begin(journal, "retry-1")
    assert again.duplicate and again.request_matches
    assert (again.previous_status, again.previous_response) == (ACKNOWLEDGED, OK)
    assert count(store, JournalEntry) == 1


def test_reused_key_with_a_different_request_is_flagged(journal: Journal) -> None:
    begin(journal, "k")
    assert not begin(journal, "k", quantity="11").request_matches
    assert begin(journal, "k", apikey="another key").request_matches  # secrets do not count


def test_keys_are_per_account(journal: Journal) -> None:
    assert not begin(journal, "same", account="a").duplicate
    assert not begin(journal, "same", account="b").duplicate
    assert [r.account for r in journal.in_flight("b")] == ["b"]
    assert len(journal.in_flight()) == 2
    assert (journal.count(), journal.count("a"), journal.count("nobody")) == (2, 1, 0)


def test_rejected_first_attempt_is_repeated_not_retried(journal: Journal) -> None:
    started = begin(journal, "k")
    journal.reject(started.entry_id, reason="market closed", response={"status": "error"})
    again = begin(journal, "k")
    assert again.duplicate and again.previous_status == REJECTED
    assert again.previous_response == {"status": "error"}


def test_in_flight_survives_a_restart(state_url: str) -> None:
    store = StateStore(state_url)
    store.migrate()
    journal = Journal(store)
    done = begin(journal, "done")
    journal.acknowledge(done.entry_id, orderid="1", response=OK)
    lost = begin(journal, "lost", account="acct2")
    store.close()  # the process dies before the broker answers

    reopened = StateStore(state_url)
    reopened.migrate()
    try:
        recovered = Journal(reopened).in_flight()
        assert [(r.entry_id, r.account, r.idempotency_key) for r in recovered] == [
            (lost.entry_id, "acct2", "lost")
        ]
        assert Journal(reopened).in_flight("default") == []
    finally:
        reopened.close()


def test_recent_is_newest_first_and_filtered(journal: Journal) -> None:
    for i in range(5):
        begin(journal, f"k{i}", account="a" if i % 2 else "b")
    assert [r.idempotency_key for r in journal.recent()] == ["k4", "k3", "k2", "k1", "k0"]
    assert [r.idempotency_key for r in journal.recent(limit=2)] == ["k4", "k3"]
    assert [r.idempotency_key for r in journal.recent(account="a")] == ["k3", "k1"]
    assert journal.lookup("a", "k0") is None and journal.get(12345) is None


def test_transition_by_orderid_needs_the_account_when_shared(journal: Journal) -> None:
    for account in ("a", "b"):
        entry = begin(journal, "k", account=account).entry_id
        journal.acknowledge(entry, orderid="1001", response=OK)
    with pytest.raises(JournalError, match="several accounts"):
        journal.transition("1001", "cancelled")
    journal.transition("1001", "cancelled", account="b")
    assert [r.status for r in journal.recent()] == ["cancelled", ACKNOWLEDGED]
    with pytest.raises(NotFoundError):
        journal.transition("404", "open")
    with pytest.raises(NotFoundError):
        journal.transition(404, "open")
    with pytest.raises(JournalError):
        journal.transition(1, ACCEPTED)


def test_secrets_are_stripped_from_stored_requests(journal: Journal, store: StateStore) -> None:
    request = {
        **ORDER,
        "api_secret": "s3cret",
        "access_token": "tok",
        "Password": "pw",
        "price": Decimal("801.05"),
        "orders": [{"symbol": "SBIN", "apikey": "inner", "auth_token": "x"}],
    }
    started = journal.begin(
        account="default", action="basketorder", idempotency_key="b1", request=request
    )
    stored = journal.get(started.entry_id)
    assert stored is not None
    assert stored.request == {
        "strategy": "test",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "quantity": "10",
        "pricetype": "MARKET",
        "product": "MIS",
        "price": "801.05",
        "orders": [{"symbol": "SBIN"}],
    }
    with store.engine.connect() as connection:
        raw = connection.exec_driver_sql("SELECT request FROM journal_entries").scalar_one()
    for secret in ("a" * 64, "s3cret", "tok", "pw", "inner"):
        assert secret not in str(raw)


def test_strip_secrets_keeps_everything_else() -> None:
    assert strip_secrets({"symbol": "X", "nested": {"token": 1, "keep": [1, {"TOTP": 2}]}}) == {
        "symbol": "X",
        "nested": {"keep": [1, {}]},
    }


def test_idempotency_key_is_required(journal: Journal) -> None:
    for bad in ("", "k" * 129):
        with pytest.raises(ValueError, match="idempotency_key"):
            begin(journal, bad)


def test_concurrent_begins_with_one_key_place_one_order(
    journal: Journal, store: StateStore
) -> None:
    threads, results = 12, []
    barrier = threading.Barrier(threads)

    def attempt() -> None:
        barrier.wait()
        results.append(begin(journal, "racy"))

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.entry_id for r in results}) == 1
    assert count(store, JournalEntry) == 1 and count(store, JournalTransition) == 1


def test_concurrent_begins_from_separate_engines(state_url: str) -> None:
    """Two engines on one database (two machines on PostgreSQL): the database decides."""
    stores = [StateStore(state_url) for _ in range(3)]
    stores[0].migrate()
    journals = [Journal(s) for s in stores]
    results = []
    barrier = threading.Barrier(len(journals) * 3)

    def attempt(journal: Journal) -> None:
        barrier.wait()
        for key in ("x", "y", "z"):
            results.append((key, begin(journal, key)))

    workers = [threading.Thread(target=attempt, args=(j,)) for j in journals for _ in range(3)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for key in ("x", "y", "z"):
            outcomes = [r for k, r in results if k == key]
            assert len(outcomes) == 9
            assert sum(not r.duplicate for r in outcomes) == 1
            assert len({r.entry_id for r in outcomes}) == 1
        assert count(stores[0], JournalEntry) == 3
    finally:
        for s in stores:
            s.close()


def test_begin_and_acknowledge_are_fast_on_sqlite(tmp_path: Path) -> None:
    """A regression guard, far below the measured rate (about 8,000 orders/s on 2 vCPUs)."""
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.migrate()
        journal = Journal(store)
        latencies = []
        started = time.perf_counter()
        for i in range(2_000):
            t0 = time.perf_counter()
            entry = begin(journal, f"k{i}").entry_id
            journal.acknowledge(entry, orderid=str(i), response=OK)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    latencies.sort()
    assert 2_000 / elapsed > 1_000, f"{2_000 / elapsed:.0f} orders/s"
    assert latencies[len(latencies) // 2] < 0.002


def test_timestamps_are_utc(journal: Journal) -> None:
    before = datetime.now(UTC)
    record = journal.get(begin(journal, "t").entry_id)
    assert record is not None and before <= record.created_at <= datetime.now(UTC)
