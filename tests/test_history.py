"""The history store: schema, exact round trips of values, upserts, the batching writer,
read-only queries and snapshots."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from openalgo_lab.domain.enums import Action, Exchange, OrderStatus, PriceType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Candle, Order, OrderEvent, Trade
from openalgo_lab.store.history import (
    CandleRow,
    HistoryStore,
    HistoryWriter,
    OrderEventRow,
    OrderRow,
    TradeRow,
)

T0 = datetime(2024, 3, 4, 3, 45, tzinfo=UTC)


def trade(i: int, action: str = "BUY", **kw: object) -> TradeRow:
    values: dict[str, object] = {
        "account": "acc",
        "tradeid": f"T{i}",
        "orderid": f"O{i}",
        "strategy": "s",
        "symbol": "SBIN",
        "exchange": "NSE",
        "product": "MIS",
        "action": action,
        "quantity": 10,
        "price": Decimal("812.35"),
        "charges": Decimal("1.25"),
        "ts": T0 + timedelta(seconds=i),
        "mode": "analyze",
    }
    values.update(kw)
    return TradeRow(**values)  # type: ignore[arg-type]


def order(orderid: str, status: str, updated: datetime, filled: int = 0) -> OrderRow:
    return OrderRow(
        account="acc",
        orderid=orderid,
        strategy="s",
        symbol="SBIN",
        exchange="NSE",
        action="BUY",
        quantity=10,
        pricetype="LIMIT",
        product="MIS",
        price=Decimal("800.05"),
        trigger_price=Decimal(0),
        status=status,
        filled_quantity=filled,
        average_price=Decimal("800.05") if filled else Decimal(0),
        placed_at=T0,
        updated_at=updated,
        rejection_reason="",
        mode="analyze",
    )


def candle(ts: datetime, close: str, volume: int = 100) -> CandleRow:
    c = Decimal(close)
    return CandleRow("NSE", "SBIN", "1m", ts, c, c + 1, c - 1, c, volume, 0)


def random_trades(n: int, seed: int) -> list[TradeRow]:
    rng = random.Random(seed)
    return [
        trade(
            i,
            rng.choice(["BUY", "SELL"]),
            symbol=rng.choice(["SBIN", "INFY"]),
            account=rng.choice(["a1", "a2"]),
            quantity=rng.randint(1, 50),
            price=Decimal(rng.randint(9000, 11000)) / 100,
            charges=Decimal(rng.randint(0, 500)) / 100,
        )
        for i in range(n)
    ]


FILL_COLUMNS = "seq, book, tradeid, side_lo, realised, account_total, account_peak, overall_total"


# -- schema ------------------------------------------------------------------------------------
def test_schema_creation_is_idempotent_on_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    with HistoryStore(path) as store:
        store.append_trades([trade(1)])
        tables = store.query("SELECT table_name FROM information_schema.tables ORDER BY 1")
    for _ in range(2):
        with HistoryStore(path) as store:
            again = store.query("SELECT table_name FROM information_schema.tables ORDER BY 1")
            assert again.equals(tables)
            assert store.query("SELECT count(*) AS n FROM trades").n[0] == 1
            assert store.query("SELECT count(*) AS n FROM meta").n[0] == 1
    assert {"books", "fills", "orders", "order_events", "candles", "trades"} <= set(
        tables.table_name
    )


def test_a_file_has_one_writer_per_process(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.duckdb"):
        with pytest.raises(ValidationError) as err:
            HistoryStore(tmp_path / "h.duckdb")
        assert err.value.field == "path"
    HistoryStore(tmp_path / "h.duckdb").close()  # released on close


# -- trades ------------------------------------------------------------------------------------
def test_trades_read_back_exactly() -> None:
    rows = [
        trade(1, price=Decimal("0.0025"), charges=Decimal("0.0001"), exchange="CDS"),
        trade(2, "SELL", price=Decimal("99999.9999"), charges=Decimal("123.45")),
        trade(3, price=Decimal("-37.63"), charges=Decimal(0), exchange="MCX", product="NRML"),
        trade(4, ts=datetime(2024, 3, 4, 9, 15, 0, 123456, tzinfo=timezone(timedelta(hours=5.5)))),
    ]
    with HistoryStore(":memory:") as store:
        store.append_trades(rows)
        got = (
            store.cursor()
            .execute(
                "SELECT account, tradeid, orderid, strategy, symbol, exchange, product, action,"
                " quantity, price, charges, ts, mode FROM trades ORDER BY seq"
            )
            .fetchall()
        )
        text = store.query("SELECT CAST(price AS VARCHAR) AS p FROM trades ORDER BY seq").p
    for row, back in zip(rows, got, strict=True):
        assert back[:9] == (
            row.account, row.tradeid, row.orderid, row.strategy, row.symbol,
            row.exchange, row.product, row.action, row.quantity,
        )  # fmt: skip
        assert back[9] == row.price and back[10] == row.charges
        assert back[11].replace(tzinfo=UTC) == row.ts
        assert back[12] == row.mode
    assert list(text) == ["0.0025", "99999.9999", "-37.6300", "812.3500"]
    assert got[3][11] == datetime(2024, 3, 4, 3, 45, 0, 123456)  # stored as UTC


def test_fifo_results_are_stored_with_each_fill() -> None:
    rows = [
        trade(1, "BUY", quantity=10, price=Decimal(100), charges=Decimal(1)),
        trade(2, "SELL", quantity=15, price=Decimal(103), charges=Decimal(1)),  # reverses
        trade(3, "BUY", quantity=5, price=Decimal(101), charges=Decimal(1)),
    ]
    with HistoryStore(":memory:") as store:
        store.append_trades(rows[:1])
        store.append_trades(rows[1:])
        got = store.query("SELECT side_lo, realised, overall_total, overall_peak FROM fills")
    assert got.side_lo.tolist() == [0, 0, 10]
    assert got.realised.tolist() == [0, 30, 10]  # 10 x (103-100), then 5 x (103-101)
    assert got.overall_total.tolist() == [-1, 28, 37]
    assert got.overall_peak.tolist() == [0, 28, 37]


def test_reopening_resumes_fifo_exactly(tmp_path: Path) -> None:
    rows = random_trades(400, seed=7)
    with HistoryStore(":memory:") as whole:
        whole.append_trades(rows)
        expected = whole.query(f"SELECT {FILL_COLUMNS} FROM fills ORDER BY seq")
    path = tmp_path / "h.duckdb"
    for lo, hi in ((0, 150), (150, 151), (151, 400)):
        with HistoryStore(path) as store:
            store.append_trades(rows[lo:hi])
    with HistoryStore(path) as store:
        assert store.query(f"SELECT {FILL_COLUMNS} FROM fills ORDER BY seq").equals(expected)


def test_import_matches_append_and_sorts_by_time() -> None:
    rows = random_trades(300, seed=3)
    frame = pd.DataFrame(
        {
            name: [getattr(r, name) for r in rows]
            for name in (
                "account",
                "tradeid",
                "orderid",
                "strategy",
                "symbol",
                "exchange",
                "product",
                "action",
                "quantity",
                "ts",
                "mode",
            )
        }
    )
    frame["price"] = [float(r.price) for r in rows]
    frame["charges"] = [str(r.charges) for r in rows]
    with HistoryStore(":memory:") as appended, HistoryStore(":memory:") as imported:
        appended.append_trades(rows)
        assert imported.import_trades(frame.iloc[::-1]) == len(rows)  # reversed: re-sorted
        columns = FILL_COLUMNS.replace("book, ", "")
        a = appended.query(f"SELECT {columns} FROM fills ORDER BY seq")
        b = imported.query(f"SELECT {columns} FROM fills ORDER BY seq")
    assert a.equals(b)


@pytest.mark.parametrize(
    ("column", "value"),
    [("action", "HOLD"), ("account", None), ("price", 1.00005), ("quantity", 0.5), ("ts", "x")],
)
def test_import_validates_every_column(column: str, value: object) -> None:
    frame = pd.DataFrame(
        {
            "account": ["a", "a"],
            "tradeid": ["T1", "T2"],
            "orderid": ["O1", ""],
            "strategy": ["s", "s"],
            "symbol": ["SBIN", "SBIN"],
            "exchange": ["NSE", "NSE"],
            "product": ["MIS", "MIS"],
            "action": ["BUY", "SELL"],
            "quantity": [5, 5],
            "price": [100.05, 101.1],
            "charges": [0.0, 1.5],
            "ts": [T0, T0 + timedelta(seconds=1)],
            "mode": ["live", "live"],
        }
    )
    with HistoryStore(":memory:") as store:
        assert store.import_trades(frame) == 2
        bad = frame.astype({column: object})
        bad.loc[1, column] = value
        with pytest.raises(ValidationError) as err:
            store.import_trades(bad)
        assert err.value.field == column
        for gone in ("mode", "ts"):
            with pytest.raises(ValidationError) as missing:
                store.import_trades(frame.drop(columns=[gone]))
            assert missing.value.field == gone
        assert store.query("SELECT count(*) AS n FROM fills").n[0] == 2


def test_a_failed_write_leaves_nothing_and_state_intact(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = random_trades(500, seed=11)
    with HistoryStore(":memory:") as store, HistoryStore(":memory:") as clean:
        store._chunk = 64  # several pipelined steps in one transaction
        store.append_trades(rows[:200])
        real = store._insert
        calls = 0

        def flaky(prepared: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise OSError("disk full")
            real(prepared)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "_insert", flaky)
        with pytest.raises(OSError):
            store.append_trades(rows[200:])
        assert store.query("SELECT count(*) AS n FROM fills").n[0] == 200
        monkeypatch.setattr(store, "_insert", real)
        store.append_trades(rows[200:])
        clean.append_trades(rows)
        query = f"SELECT {FILL_COLUMNS} FROM fills ORDER BY seq"
        assert store.query(query).equals(clean.query(query))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": datetime(2024, 1, 1, 10, 0)}, "ts"),
        ({"price": Decimal("1.00005")}, "price"),
        ({"price": 10.5}, "price"),
        ({"charges": Decimal("1e10")}, "charges"),
        ({"action": "HOLD"}, "action"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"exchange": "LSE"}, "exchange"),
        ({"mode": "paper"}, "mode"),
        ({"symbol": ""}, "symbol"),
        ({"strategy": "a\x1fb"}, "strategy"),
    ],
)
def test_bad_trade_rows_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        trade(1, **change)
    assert err.value.field == field


def test_rows_from_domain_objects() -> None:
    fill = Trade(
        "T9", "O9", "SBIN", Exchange.NSE, Action.SELL, Product.MIS, 3, Decimal("801.5"), T0,
        strategy="s", charges=Decimal("0.42"),
    )  # fmt: skip
    row = TradeRow.from_trade("acc", fill, "live")
    assert (row.action, row.exchange, row.ts, row.charges) == ("SELL", "NSE", T0, Decimal("0.42"))
    placed = Order(
        "O9", "SBIN", Exchange.NSE, Action.SELL, 5, PriceType.LIMIT, Product.MIS,
        Decimal("801.5"), Decimal(0), OrderStatus.PARTIALLY_FILLED, 3, Decimal("801.333333"),
        T0, T0, strategy="s",
    )  # fmt: skip
    assert OrderRow.from_order("acc", placed, "live").average_price == Decimal("801.3333")
    event = OrderEventRow.from_event("acc", OrderEvent(placed, fill, {"reason": "tick"}))
    assert event.status == "partially filled" and '"tradeid": "T9"' in event.detail
    bar = Candle(T0, Decimal(1), Decimal(2), Decimal("0.5"), Decimal("1.5"), 10)
    assert CandleRow.from_candle("NSE", "SBIN", "1m", bar).high == Decimal(2)
    with pytest.raises(ValidationError) as err:
        CandleRow("NSE", "SBIN", "1m", T0, Decimal(3), Decimal(2), Decimal(1), Decimal(2), 1)
    assert err.value.field == "high"


# -- orders, events, candles -------------------------------------------------------------
def test_order_upsert_keeps_the_latest_state() -> None:
    t = T0
    with HistoryStore(":memory:") as store:
        store.append_orders([order("A", "open", t), order("B", "open", t)])
        store.append_orders(
            [
                order("A", "complete", t + timedelta(seconds=5), filled=10),
                order("A", "partially filled", t + timedelta(seconds=2), filled=4),  # older
            ]
        )
        store.append_orders([order("A", "open", t + timedelta(seconds=1))])  # late replay
        store.append_orders([order("B", "cancelled", t), order("B", "rejected", t)])  # tie
        got = store.query("SELECT orderid, status, filled_quantity FROM orders ORDER BY 1")
    assert got.values.tolist() == [["A", "complete", 10], ["B", "rejected", 0]]


def test_order_events_are_appended_in_order() -> None:
    with HistoryStore(":memory:") as store:
        events = [OrderEventRow("acc", "A", s, 0, T0) for s in ("open", "cancelled")]
        store.append_order_events(events)
        store.append_order_events([OrderEventRow("acc", "B", "rejected", 0, T0, "{}")])
        got = store.query("SELECT orderid, status FROM order_events ORDER BY seq")
    assert got.values.tolist() == [["A", "open"], ["A", "cancelled"], ["B", "rejected"]]


def test_candles_upsert_on_their_key() -> None:
    with HistoryStore(":memory:") as store:
        store.append_candles([candle(T0, "100"), candle(T0 + timedelta(minutes=1), "101")])
        store.append_candles([candle(T0, "100.5", 150), candle(T0, "100.75", 175)])
        got = store.query("SELECT ts, close, volume FROM candles ORDER BY ts")
    assert got.close.tolist() == [100.75, 101.0]
    assert got.volume.tolist() == [175, 100]


# -- the writer ---------------------------------------------------------------------------
def test_writer_writes_in_the_background_and_submit_never_blocks() -> None:
    with HistoryStore(":memory:") as store:
        writer = HistoryWriter(store, max_batch=500, flush_interval=0.02)
        writer.start()
        rows = random_trades(20_000, seed=5)
        with store._lock:  # the database is busy: the writer thread cannot write
            started = time.perf_counter()
            for row in rows:
                writer.submit_trade(row)
            writer.submit_order(order("A", "open", T0))
            writer.submit_order_event(OrderEventRow("acc", "A", "open", 0, T0))
            writer.submit_candles([candle(T0, "100")])
            elapsed = time.perf_counter() - started
            assert writer.pending == 20_003
        assert elapsed < 1.0  # O(1) appends, never waiting for the database
        deadline = time.monotonic() + 10
        while writer.pending and time.monotonic() < deadline:  # no flush: the thread writes
            time.sleep(0.01)
        writer.flush()
        counts = store.query(
            "SELECT (SELECT count(*) FROM fills) f, (SELECT count(*) FROM orders) o,"
            " (SELECT count(*) FROM order_events) e, (SELECT count(*) FROM candles) c"
        )
        writer.stop()
    assert counts.values.tolist() == [[20_000, 1, 1, 1]]


def test_flush_covers_submissions_from_other_threads() -> None:
    with HistoryStore(":memory:") as store:
        writer = HistoryWriter(store, max_batch=100, flush_interval=5.0)
        writer.start()
        rows = random_trades(3_000, seed=9)
        threads = [
            threading.Thread(target=lambda part=part: [writer.submit_trade(r) for r in part])
            for part in (rows[0::3], rows[1::3], rows[2::3])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writer.flush()  # long flush_interval: only the flush can have written them
        assert store.query("SELECT count(*) AS n FROM fills").n[0] == 3_000
        writer.stop()


def test_writer_retries_io_errors_and_drops_invalid_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with HistoryStore(":memory:") as store:
        writer = HistoryWriter(store, max_batch=10)
        real = store.append_trades
        failures = iter([OSError("disk full"), ValidationError("price", "out of range")])

        def failing(rows: list[TradeRow]) -> None:
            error = next(failures, None)
            if error is not None:
                raise error
            real(rows)

        monkeypatch.setattr(store, "append_trades", failing)
        writer.submit_trade(trade(1))
        with pytest.raises(OSError):
            writer.flush()  # kept for the next attempt
        assert writer.pending == 1
        writer.flush()  # now rejected as invalid: dropped and counted
        assert writer.pending == 0 and writer.rejected == 1
        writer.submit_trade(trade(2))
        writer.stop()
        assert store.query("SELECT tradeid FROM fills").tradeid.tolist() == ["T2"]


def test_writer_arguments_are_checked() -> None:
    with HistoryStore(":memory:") as store:
        with pytest.raises(ValidationError):
            HistoryWriter(store, max_batch=0)
        with pytest.raises(ValidationError):
            HistoryWriter(store, flush_interval=0)


# -- reading ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO meta VALUES ('x', 'y')",
        "UPDATE orders SET status = 'open'",
        "DELETE FROM fills",
        "DROP TABLE candles",
        "CREATE TABLE x (a INT)",
        "COPY fills TO 'x.csv'",
        "ATTACH 'other.duckdb' AS o",
        "CHECKPOINT",
        "SELECT 1; DELETE FROM fills",
        "WITH x AS (SELECT 1) INSERT INTO meta SELECT 'a', 'b' FROM x",
    ],
)
def test_query_rejects_anything_but_one_select(sql: str) -> None:
    with HistoryStore(":memory:") as store:
        with pytest.raises(ValidationError) as err:
            store.query(sql)
        assert err.value.field == "sql"
        assert "only a single SELECT" in err.value.message
        assert store.query("SELECT count(*) AS n FROM meta").n[0] == 1


def test_query_runs_selects_with_parameters() -> None:
    with HistoryStore(":memory:") as store:
        store.append_trades([trade(1), trade(2, "SELL")])
        got = store.query(
            "WITH t AS (SELECT * FROM trades WHERE action = ?) SELECT tradeid FROM t", ["SELL"]
        )
        assert got.tradeid.tolist() == ["T2"]
        with pytest.raises(ValidationError) as err:
            store.query("SELECT * FROM no_such_table")
        assert err.value.field == "sql"


def test_snapshot_is_readable_while_the_store_stays_writable(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "live.duckdb") as store:
        store.append_trades(random_trades(1_000, seed=1))
        store.append_orders([order("A", "open", T0)])
        snapshot = store.export_snapshot(tmp_path / "snaps" / "history.duckdb")
        reader = duckdb.connect(str(snapshot), read_only=True)
        try:
            assert reader.execute("SELECT count(*) FROM trades").fetchone() == (1_000,)
            store.append_trades(random_trades(10, seed=2))  # the live store keeps writing
            assert reader.execute("SELECT count(*) FROM fills").fetchone() == (1_000,)
            assert reader.execute("SELECT count(*) FROM orders").fetchone() == (1,)
        finally:
            reader.close()
        again = store.export_snapshot(snapshot)  # replaces the old snapshot atomically
        with duckdb.connect(str(again), read_only=True) as second:
            assert second.execute("SELECT count(*) FROM fills").fetchone() == (1_010,)
        assert sorted(p.name for p in snapshot.parent.iterdir()) == ["history.duckdb"]
