"""Every analytics figure against an independent, deliberately plain implementation.

The oracle walks the fills one by one with a deque of open lots per book (textbook FIFO),
in Python with Decimal; the store matches in numpy at write time and the analytics in SQL.
Random streams cover several accounts, strategies, symbols and IST days, longs and shorts,
partial closes, reversals, orders filled in parts, fills without an order id and batches
split at random points (so matching crosses batch boundaries).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openalgo_lab.analytics import equity_curve, max_drawdown, pnl_by, round_trips, trade_stats
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.store.history import HistoryStore, TradeRow

START = datetime(2024, 3, 4, 3, 30, tzinfo=UTC)
BOOKS = [  # account, strategy, symbol, product
    ("acc1", "trend", "SBIN", "MIS"),
    ("acc1", "trend", "INFY", "MIS"),
    ("acc1", "meanrev", "SBIN", "MIS"),
    ("acc2", "trend", "SBIN", "MIS"),
    ("acc2", "", "SBIN", "CNC"),
]
CAPITAL = Decimal(100_000)
AS_OF = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- random trade streams -----------------------------------------------------------------
@st.composite
def streams(draw: st.DrawFn) -> list[TradeRow]:
    """Orders of 1-3 fills each, on random books and sides, at non-decreasing times."""
    rows: list[TradeRow] = []
    ts = START
    for number in range(draw(st.integers(1, 24))):
        account, strategy, symbol, product = draw(st.sampled_from(BOOKS))
        action = draw(st.sampled_from(["BUY", "SELL"]))
        orderid = f"O{number}" if draw(st.integers(0, 7)) else ""
        for part in draw(st.lists(st.integers(1, 40), min_size=1, max_size=3)):
            ts += timedelta(minutes=draw(st.sampled_from([0, 1, 7, 45, 200, 700])))
            rows.append(
                TradeRow(
                    account=account,
                    tradeid=f"T{len(rows)}",
                    orderid=orderid,
                    strategy=strategy,
                    symbol=symbol,
                    exchange="NSE",
                    product=product,
                    action=action,
                    quantity=part,
                    price=Decimal(draw(st.integers(1800, 2200))) * Decimal("0.05"),
                    charges=Decimal(draw(st.integers(0, 999))) / 100,
                    ts=ts,
                    mode="analyze",
                )
            )
    return rows


@contextmanager
def stored(rows: list[TradeRow], cuts: list[int]) -> Iterator[HistoryStore]:
    """A store holding `rows`, appended in batches split at `cuts`."""
    store = HistoryStore(":memory:")
    try:
        bounds = [0, *sorted({c % (len(rows) + 1) for c in cuts}), len(rows)]
        for lo, hi in itertools.pairwise(bounds):
            store.append_trades(rows[lo:hi])
        yield store
    finally:
        store.close()


# -- the oracle ---------------------------------------------------------------------------
def book_of(row: TradeRow) -> tuple[str, ...]:
    return (row.account, row.strategy, row.exchange, row.symbol, row.product, row.mode)


def ist_day(ts: datetime) -> date:
    return ts.astimezone(IST).date()


def units(amount: Decimal) -> int:
    return int(amount * 10_000)


@dataclass
class Piece:
    entry: int
    exit: int
    quantity: int
    charge_units: int


@dataclass
class Oracle:
    rows: list[TradeRow]
    realised: list[Decimal] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    open_lots: dict[tuple[str, ...], deque[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Textbook FIFO: a fill first closes the oldest opposite lots, the rest opens."""
        self.realised = [Decimal(0)] * len(self.rows)
        self.used = [0] * len(self.rows)
        lots: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
        for i, row in enumerate(self.rows):
            queue = lots[book_of(row)]
            while (
                self.used[i] < row.quantity and queue and self.rows[queue[0]].action != row.action
            ):
                j = queue[0]
                entry = self.rows[j]
                take = min(row.quantity - self.used[i], entry.quantity - self.used[j])
                buy, sell = (entry, row) if entry.action == "BUY" else (row, entry)
                self.realised[i] += take * (sell.price - buy.price)
                charge = self._share(j, take) + self._share(i, take)
                self.pieces.append(Piece(j, i, take, charge))
                if self.used[j] == entry.quantity:
                    queue.popleft()
            if self.used[i] < row.quantity:
                queue.append(i)
        self.open_lots = dict(lots)

    def _share(self, i: int, take: int) -> int:
        """Charges of fill i on its next `take` units, cumulatively floored to 0.0001."""
        c, q, done = units(self.rows[i].charges), self.rows[i].quantity, self.used[i]
        self.used[i] += take
        return (c * (done + take)) // q - (c * done) // q

    # P&L -------------------------------------------------------------------------------
    def pnl(self, marks: dict[tuple[str, str], Decimal] | None) -> dict[tuple, list]:
        out: dict[tuple, list] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0), 0])
        for i, row in enumerate(self.rows):
            group = out[(row.strategy, row.symbol, ist_day(row.ts))]
            group[0] += self.realised[i]
            group[2] += row.charges
            group[3] += row.quantity if row.action == "BUY" else -row.quantity
        for i in self.open_indices():
            row = self.rows[i]
            if marks is not None:
                left = row.quantity - self.used[i]
                mark = marks[(row.exchange, row.symbol)]
                sign = 1 if row.action == "BUY" else -1
                out[(row.strategy, row.symbol, ist_day(AS_OF))][1] += (
                    sign * left * (mark - row.price)
                )
        return dict(out)

    def open_indices(self) -> list[int]:
        return [i for queue in self.open_lots.values() for i in queue]

    # round trips -----------------------------------------------------------------------
    def trips(self) -> list[dict[str, object]]:
        groups: dict[tuple, list[Piece]] = defaultdict(list)
        for piece in self.pieces:
            exit_row = self.rows[piece.exit]
            order = exit_row.orderid or f"#{piece.exit}"
            groups[(book_of(exit_row), order)].append(piece)
        trips = []
        for (book, _), pieces in groups.items():
            qty = sum(p.quantity for p in pieces)
            entry = [self.rows[p.entry] for p in pieces]
            exit_ = [self.rows[p.exit] for p in pieces]
            is_long = entry[0].action == "BUY"
            gross = sum(
                (p.quantity * (x.price - e.price) * (1 if is_long else -1))
                for p, e, x in zip(pieces, entry, exit_, strict=True)
            )
            charges = Decimal(sum(p.charge_units for p in pieces)) / 10_000
            entry_time = min(e.ts for e in entry)
            exit_time = max(x.ts for x in exit_)
            trips.append(
                {
                    "first_exit": min(p.exit for p in pieces),
                    "account": book[0],
                    "strategy": book[1],
                    "symbol": book[3],
                    "direction": "LONG" if is_long else "SHORT",
                    "exit_orderid": exit_[0].orderid,
                    "entry_time": entry_time,
                    "exit_time": exit_time,
                    "quantity": qty,
                    "entry_price": sum(
                        p.quantity * e.price for p, e in zip(pieces, entry, strict=True)
                    )
                    / qty,
                    "exit_price": sum(
                        p.quantity * x.price for p, x in zip(pieces, exit_, strict=True)
                    )
                    / qty,
                    "gross": gross,
                    "charges": charges,
                    "net": gross - charges,
                    "hold_time": exit_time - entry_time,
                }
            )
        return sorted(trips, key=lambda t: t["first_exit"])  # type: ignore[arg-type, return-value]

    # equity --------------------------------------------------------------------------------
    def nets(self, account: str | None) -> list[tuple[int, Decimal]]:
        return [
            (i, self.realised[i] - row.charges)
            for i, row in enumerate(self.rows)
            if account is None or row.account == account
        ]


def drawdown_of(points: list[tuple[object, Decimal]]) -> tuple[Decimal, object, object, Decimal]:
    """(amount, peak point, trough point, peak total) of a running-total series; the peak
    point is the last one at or before the trough standing at the peak (None: the start)."""
    total, peak, best = Decimal(0), Decimal(0), (Decimal(0), None, None, Decimal(0))
    at_peak: object = None
    for label, net in points:
        total += net
        if total >= peak:
            peak, at_peak = total, label
        if peak - total > best[0]:
            best = (peak - total, at_peak, label, peak)
    return best


# -- the tests ----------------------------------------------------------------------------
def day_of(value: object) -> date:
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


@SETTINGS
@given(streams(), st.lists(st.integers(0, 200), max_size=4), st.booleans())
def test_pnl_by_strategy_symbol_day_matches_fifo_oracle(
    rows: list[TradeRow], cuts: list[int], with_marks: bool
) -> None:
    oracle = Oracle(rows)
    marks = {("NSE", s): Decimal(p) for s, p in (("SBIN", "101.35"), ("INFY", "99.8"))}
    expected = oracle.pnl(marks if with_marks else None)
    with stored(rows, cuts) as store:
        exact = pnl_by(store, marks=marks if with_marks else None, as_of=AS_OF, exact=True)
        approx = pnl_by(store, marks=marks if with_marks else None, as_of=AS_OF)
        total = pnl_by(store, (), marks=marks if with_marks else None, as_of=AS_OF, exact=True)
    got = {
        (r.strategy, r.symbol, day_of(r.day)): [r.realised, r.unrealised, r.charges, r.net_quantity]
        for r in exact.itertuples()
    }
    assert got == expected
    for r in exact.itertuples():
        assert r.net == r.realised + r.unrealised - r.charges
    for a, e in zip(approx.itertuples(), exact.itertuples(), strict=True):
        assert abs(a.net - float(e.net)) < 0.005
        assert abs(a.realised - float(e.realised)) < 0.005
    assert total.net.iloc[0] == sum(v[0] + v[1] - v[2] for v in expected.values())


@SETTINGS
@given(streams(), st.lists(st.integers(0, 200), max_size=4))
def test_round_trips_match_fifo_oracle(rows: list[TradeRow], cuts: list[int]) -> None:
    expected = Oracle(rows).trips()
    with stored(rows, cuts) as store:
        exact = round_trips(store, exact=True)
        approx = round_trips(store)
    assert len(exact) == len(expected)
    for got, want, flt in zip(exact.itertuples(), expected, approx.itertuples(), strict=True):
        for key in ("account", "strategy", "symbol", "direction", "exit_orderid", "quantity"):
            assert getattr(got, key) == want[key], key
        assert got.entry_time == want["entry_time"]
        assert got.exit_time == want["exit_time"]
        assert got.hold_time == want["hold_time"]
        assert got.gross == want["gross"]
        assert got.charges == want["charges"]
        assert got.net == want["net"]
        assert flt.entry_price == pytest.approx(float(want["entry_price"]))  # type: ignore[arg-type]
        assert flt.exit_price == pytest.approx(float(want["exit_price"]))  # type: ignore[arg-type]
        assert abs(flt.net - float(want["net"])) < 0.005  # type: ignore[arg-type]


def test_round_trip_charges_are_pro_rata_and_conserved() -> None:
    """Allocation rounds each piece to 0.0001 but a fill's pieces add up to its charges."""
    t = START
    rows = [
        TradeRow(
            "a",
            "T1",
            "O1",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "BUY",
            3,
            Decimal(100),
            Decimal("1"),
            t,
            "live",
        ),
        TradeRow(
            "a",
            "T2",
            "O2",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "SELL",
            1,
            Decimal(101),
            Decimal(0),
            t,
            "live",
        ),
        TradeRow(
            "a",
            "T3",
            "O3",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "SELL",
            1,
            Decimal(102),
            Decimal(0),
            t,
            "live",
        ),
        TradeRow(
            "a",
            "T4",
            "O4",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "SELL",
            1,
            Decimal(103),
            Decimal(0),
            t,
            "live",
        ),
    ]
    with stored(rows, []) as store:
        trips = round_trips(store, exact=True)
    assert list(trips.charges) == [Decimal("0.3333"), Decimal("0.3333"), Decimal("0.3334")]
    assert sum(trips.charges) == Decimal(1)
    assert list(trips.gross) == [Decimal(1), Decimal(2), Decimal(3)]


@SETTINGS
@given(streams(), st.lists(st.integers(0, 200), max_size=4))
def test_trade_stats_match_oracle(rows: list[TradeRow], cuts: list[int]) -> None:
    trips = Oracle(rows).trips()
    with stored(rows, cuts) as store:
        stats = trade_stats(store, exact=True)
    assert sorted(stats.strategy) == sorted({t["strategy"] for t in trips})  # type: ignore[type-var]
    for row in stats.itertuples():
        mine = [t for t in trips if t["strategy"] == row.strategy]
        nets = [t["net"] for t in mine]
        profit = sum((n for n in nets if n > 0), Decimal(0))  # type: ignore[operator]
        loss = -sum((n for n in nets if n < 0), Decimal(0))  # type: ignore[operator]
        assert row.trades == len(mine)
        assert row.wins == sum(n > 0 for n in nets)  # type: ignore[operator]
        assert row.losses == sum(n < 0 for n in nets)  # type: ignore[operator]
        assert row.win_rate == pytest.approx(row.wins / len(mine))
        assert row.gross_profit == profit
        assert row.gross_loss == loss
        assert row.net == sum(nets, Decimal(0))  # type: ignore[arg-type]
        assert row.expectancy == pytest.approx(float(sum(nets, Decimal(0)) / len(mine)))  # type: ignore[arg-type]
        if loss:
            assert row.profit_factor == pytest.approx(float(profit / loss))
        elif profit:
            assert row.profit_factor == math.inf
        else:
            assert math.isnan(row.profit_factor)
        holds = [t["hold_time"].total_seconds() for t in mine]  # type: ignore[attr-defined]
        assert row.avg_hold.total_seconds() == pytest.approx(sum(holds) / len(holds), abs=1e-6)


@SETTINGS
@given(streams(), st.lists(st.integers(0, 200), max_size=4), st.sampled_from([None, "acc1"]))
def test_equity_curve_and_drawdown_match_oracle(
    rows: list[TradeRow], cuts: list[int], account: str | None
) -> None:
    oracle = Oracle(rows)
    nets = oracle.nets(account)
    with stored(rows, cuts) as store:
        curve = equity_curve(store, starting_capital=CAPITAL, account=account, exact=True)
        daily = equity_curve(
            store, starting_capital=CAPITAL, account=account, freq="day", exact=True
        )
        worst = max_drawdown(store, starting_capital=CAPITAL, account=account)
        worst_day = max_drawdown(store, starting_capital=CAPITAL, account=account, freq="day")

    total, peak = Decimal(0), Decimal(0)
    assert len(curve) == len(nets)
    for row, (i, net) in zip(curve.itertuples(), nets, strict=True):
        total += net
        peak = max(peak, total)
        assert row.ts == rows[i].ts
        assert row.net == net
        assert row.equity == CAPITAL + total
        assert row.peak == CAPITAL + peak
        assert row.drawdown == peak - total
        assert row.drawdown_pct == pytest.approx(float((peak - total) / (CAPITAL + peak)))

    amount, at_peak, trough, top = drawdown_of([(i, net) for i, net in nets])
    assert worst.amount == amount
    assert worst.trough_ts == (rows[trough].ts if trough is not None else None)  # type: ignore[index]
    assert worst.peak_ts == (rows[at_peak].ts if at_peak is not None else None)  # type: ignore[index]
    assert worst.pct == pytest.approx(float(amount / (CAPITAL + top)) if amount else 0.0)

    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for i, net in nets:
        by_day[ist_day(rows[i].ts)] += net
    days = sorted(by_day)
    assert [day_of(d) for d in daily.day] == days
    running = Decimal(0)
    best = Decimal(0)
    for row, day in zip(daily.itertuples(), days, strict=True):
        running += by_day[day]
        best = max(best, running)
        assert row.equity == CAPITAL + running
        assert row.drawdown == best - running
    amount, at_peak, trough, _ = drawdown_of([(d, by_day[d]) for d in days])
    assert worst_day.amount == amount
    midnight = lambda d: datetime(d.year, d.month, d.day, tzinfo=IST)  # noqa: E731
    assert worst_day.trough_ts == (midnight(trough) if trough else None)
    assert worst_day.peak_ts == (midnight(at_peak) if at_peak else None)


# -- behaviour at the edges -----------------------------------------------------------------
def test_marks_must_cover_every_open_position() -> None:
    rows = [
        TradeRow(
            "a",
            "T1",
            "O1",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "BUY",
            5,
            Decimal(100),
            Decimal(0),
            START,
            "live",
        )
    ]
    with stored(rows, []) as store:
        with pytest.raises(ValidationError) as err:
            pnl_by(store, marks={("NSE", "INFY"): Decimal(1)})
        assert err.value.field == "marks"
        assert "NSE:SBIN" in err.value.message
        with pytest.raises(ValidationError) as bad:
            pnl_by(store, by=("strategy", "colour"))
        assert bad.value.field == "by"
        with pytest.raises(ValidationError) as capital:
            equity_curve(store, starting_capital=Decimal(0))
        assert capital.value.field == "starting_capital"
        with pytest.raises(ValidationError):
            equity_curve(store, starting_capital=CAPITAL, freq="week")  # type: ignore[arg-type]


def test_empty_history_gives_empty_frames() -> None:
    with stored([], []) as store:
        assert pnl_by(store).empty
        assert round_trips(store).empty
        assert trade_stats(store).empty
        assert trade_stats(store, by=()).empty
        assert equity_curve(store, starting_capital=CAPITAL).empty
        assert max_drawdown(store, starting_capital=CAPITAL).amount == 0


def test_analytics_read_an_exported_snapshot(tmp_path: Path) -> None:
    """Another process reads a snapshot with plain duckdb and gets the same answers."""
    t = START
    rows = [
        TradeRow(
            "a",
            "T1",
            "O1",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "BUY",
            5,
            Decimal(100),
            Decimal("2.5"),
            t,
            "live",
        ),
        TradeRow(
            "a",
            "T2",
            "O2",
            "s",
            "SBIN",
            "NSE",
            "MIS",
            "SELL",
            5,
            Decimal("103.25"),
            Decimal("2.5"),
            t + timedelta(minutes=3),
            "live",
        ),
    ]
    with HistoryStore(tmp_path / "history.duckdb") as store:
        store.append_trades(rows)
        live = pnl_by(store, ("strategy",), exact=True)
        path = store.export_snapshot(tmp_path / "snap.duckdb")
        conn = duckdb.connect(str(path), read_only=True)
        try:
            assert pnl_by(conn, ("strategy",), exact=True).equals(live)
            assert round_trips(conn, exact=True).net.tolist() == [Decimal("11.25")]
        finally:
            conn.close()
