"""FIFO matching of fills, done once per batch as the history is written.

Why at write time: realised P&L needs every fill matched against earlier ones. Doing that at
query time means a window over all fills partitioned by position, which on 10 million fills
and two cores costs several seconds; done incrementally per batch it costs well under a
microsecond per fill, and analytics become plain aggregations over stored results.

Fill order is arrival order (the store's `seq`): for one book, the order in which the broker
reported the fills. A fill back-filled later (say, found by reconciliation) is matched when
it arrives, not at its timestamp.

The method needs no per-unit expansion and no Python loop over fills. Within one *book*
(account, strategy, exchange, symbol, product, mode) number the bought units 1, 2, 3… in fill
order, and the sold units likewise. FIFO — including short positions and reversals — always
pairs bought unit n with sold unit n: the open side is always the newest units of one side,
and a closing fill consumes the oldest of them. So fill f covers the units (lo, lo + qty] of
its side, and the units matched so far in a book are (0, min(bought, sold)]. A batch extends
that range from M_old to M_new; clipping every candidate fill (the book's open lots and the
batch's fills) to (M_old, M_new] tiles the range once with buys and once with sells, and the
matched pieces are the intersections of the two tilings: merge the end points, and each
segment between consecutive points belongs to exactly one buy and one sell.

Amounts are integers in units of 0.0001 rupee (the store's DECIMAL(18,4) scale). Per fill
they fit by construction (|price|, |charges| < 10^10 rupees); sums of products are checked
against DECIMAL(18,4)'s range (10^18 units, ₹10^14) with a float estimate before they are
formed, so int64 arithmetic here is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

import numpy as np
from numpy.typing import NDArray

from openalgo_lab.domain.errors import ValidationError

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]
LIMIT = 1e18
"""Bound on any amount in units of 0.0001 (DECIMAL(18,4)'s range); int64 holds 9.2e18, so
sums checked against this bound (with a float estimate) can be formed without overflow."""


@dataclass(frozen=True, slots=True)
class Fills:
    """Fills as parallel arrays. `lo` is the side-cumulative quantity of the book before
    the fill (the fill covers units lo+1 … lo+qty of its side); -1 until it is known."""

    book: I64
    is_buy: Mask
    qty: I64
    seq: I64
    price: I64
    charges: I64
    ts: I64
    lo: I64

    def __len__(self) -> int:
        return len(self.seq)

    def take(self, index: NDArray[np.intp] | Mask) -> Self:
        return type(self)(*(getattr(self, f.name)[index] for f in fields(self)))

    def with_lo(self, lo: I64) -> Self:
        return type(self)(
            self.book, self.is_buy, self.qty, self.seq, self.price, self.charges, self.ts, lo
        )

    @classmethod
    def empty(cls) -> Self:
        i = np.empty(0, np.int64)
        return cls(i, np.empty(0, np.bool_), i, i, i, i, i, i)

    @classmethod
    def concat(cls, a: Fills, b: Fills) -> Self:
        return cls(*(np.concatenate((getattr(a, f.name), getattr(b, f.name))) for f in fields(cls)))


@dataclass(frozen=True, slots=True)
class Matches:
    """Matched pieces: `qty` units closed by the batch fill at `exit_index` (the closing
    fill is always the newer one, so always in the batch), with their gross P&L."""

    exit_index: NDArray[np.intp]
    qty: I64
    gross: I64


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one batch changes; applied to `FifoState` only after the write commits."""

    lo: I64
    realised: I64
    matches: Matches
    bought: I64
    sold: I64
    open_lots: Fills


@dataclass(slots=True)
class FifoState:
    """Per book: units bought and sold so far, and the fills not yet fully matched."""

    bought: I64
    sold: I64
    open_lots: Fills

    @classmethod
    def empty(cls) -> FifoState:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), Fills.empty())

    def apply(self, outcome: Outcome) -> None:
        self.bought, self.sold, self.open_lots = outcome.bought, outcome.sold, outcome.open_lots

    def match(self, batch: Fills) -> Outcome:
        """Match a batch (in fill order) against the open lots; pure, state is untouched."""
        n_books = max(len(self.bought), int(batch.book.max(initial=-1)) + 1)
        bought, sold = _grown(self.bought, n_books), _grown(self.sold, n_books)
        lo, bought_new, sold_new = _side_positions(batch, bought, sold)
        batch = batch.with_lo(lo)
        done_old, done_new = np.minimum(bought, sold), np.minimum(bought_new, sold_new)

        touched = np.zeros(n_books, np.bool_)
        touched[batch.book] = True
        lots = self.open_lots
        # only lots starting below a book's new matched count can be closed by this batch
        in_play = touched[lots.book] & (lots.lo < done_new[lots.book])
        carried = lots.take(~in_play)
        cand = Fills.concat(lots.take(in_play), batch)
        n_prior = len(cand) - len(batch)

        buys, sells, start, end = _segments(cand, done_old, done_new)
        matches = _pieces(cand, buys, sells, start, end, n_prior)
        realised = np.zeros(len(batch), np.int64)
        np.add.at(realised, matches.exit_index, matches.gross)

        still_open = cand.lo + cand.qty > done_new[cand.book]
        open_lots = Fills.concat(carried, cand.take(still_open))
        open_lots = open_lots.take(np.argsort(open_lots.seq, kind="stable"))
        return Outcome(lo, realised, matches, bought_new, sold_new, open_lots)


def _grown(a: I64, n: int) -> I64:
    out = np.zeros(n, np.int64)
    out[: len(a)] = a
    return out


def _side_positions(batch: Fills, bought: I64, sold: I64) -> tuple[I64, I64, I64]:
    """Each fill's `lo` on its own side, and the books' new bought/sold totals."""
    order = _stable_order(batch.book)
    book = batch.book[order]
    is_buy = batch.is_buy[order]
    qty = batch.qty[order]
    first = np.ones(len(book), np.bool_)
    first[1:] = book[1:] != book[:-1]
    group = np.cumsum(first) - 1

    def within_book(v: I64) -> tuple[I64, I64]:
        incl = np.cumsum(v)
        base = (incl - v)[first][group]
        return incl - v - base, incl - base

    buy_before, buy_incl = within_book(np.where(is_buy, qty, 0))
    sell_before, sell_incl = within_book(np.where(is_buy, 0, qty))
    lo = np.empty(len(book), np.int64)
    lo[order] = np.where(is_buy, bought[book] + buy_before, sold[book] + sell_before)
    last = np.ones(len(book), np.bool_)
    last[:-1] = first[1:]
    bought_new, sold_new = bought.copy(), sold.copy()
    bought_new[book[last]] += buy_incl[last]
    sold_new[book[last]] += sell_incl[last]
    return lo, bought_new, sold_new


def _segments(
    cand: Fills, done_old: I64, done_new: I64
) -> tuple[NDArray[np.intp], NDArray[np.intp], I64, I64]:
    """Intersect the buy and sell tilings of each book's newly matched range.

    Returns, per segment, the candidate index of its buy and of its sell and the unit range
    (start, end]. Points are kept relative to each book's old matched count, so that they
    are small and (book, point) sorts as one integer key."""
    base = done_old[cand.book]
    rel_lo = np.maximum(cand.lo - base, 0)
    rel_hi = np.minimum(cand.lo + cand.qty, done_new[cand.book]) - base
    active = rel_lo < rel_hi
    buys = np.flatnonzero(active & cand.is_buy)
    sells = np.flatnonzero(active & ~cand.is_buy)
    # candidates are in fill order, so within a book and side their ends already ascend
    buys = buys[_stable_order(cand.book[buys])]
    sells = sells[_stable_order(cand.book[sells])]

    ev_book = np.concatenate((cand.book[buys], cand.book[sells]))
    ev_end = np.concatenate((rel_hi[buys], rel_hi[sells]))
    ev_buy = np.concatenate((np.ones(len(buys), np.int64), np.zeros(len(sells), np.int64)))
    order = _by_book_then(ev_book, ev_end)
    ev_book, ev_end, ev_buy = ev_book[order], ev_end[order], ev_buy[order]
    head = np.ones(len(ev_book), np.bool_)
    head[1:] = (ev_book[1:] != ev_book[:-1]) | (ev_end[1:] != ev_end[:-1])
    buys_before = np.cumsum(ev_buy) - ev_buy
    sells_before = np.cumsum(1 - ev_buy) - (1 - ev_buy)

    seg_book, end = ev_book[head], ev_end[head]
    seg_buy, seg_sell = buys[buys_before[head]], sells[sells_before[head]]
    same = np.zeros(len(seg_book), np.bool_)
    same[1:] = seg_book[1:] == seg_book[:-1]
    start = np.zeros_like(end)
    start[1:] = end[:-1]
    start[~same] = 0
    offset = done_old[seg_book]
    return seg_buy, seg_sell, start + offset, end + offset


def _stable_order(book: I64) -> NDArray[np.intp]:
    """Indices ordering by book, keeping fill order within a book. Book ids below 2**16
    sort as uint16, which numpy radix-sorts in linear time."""
    if len(book) and int(book.max()) < 1 << 16:
        return np.argsort(book.astype(np.uint16), kind="stable")
    return np.argsort(book, kind="stable")


def _by_book_then(book: I64, value: I64) -> NDArray[np.intp]:
    """Indices ordering by (book, value), as one int64 sort when the key fits."""
    if not len(book):
        return np.zeros(0, np.intp)
    span = int(value.max()) + 1
    if (int(book.max()) + 1) * span < 2**62:
        return np.argsort(book * span + value, kind="stable")
    return np.lexsort((value, book))


def _pieces(
    cand: Fills,
    buys: NDArray[np.intp],
    sells: NDArray[np.intp],
    start: I64,
    end: I64,
    n_prior: int,
) -> Matches:
    qty = end - start
    sell_price, buy_price = cand.price[sells], cand.price[buys]
    _require_in_range(np.abs(qty.astype(np.float64) * (sell_price - buy_price)).sum(), "price")
    exit_ = np.maximum(buys, sells)  # candidates are in fill order: the later one closes
    return Matches(exit_index=exit_ - n_prior, qty=qty, gross=qty * (sell_price - buy_price))


def _require_in_range(magnitude: float, field: str) -> None:
    if magnitude >= LIMIT:
        raise ValidationError(
            field, "amounts in this batch exceed what history keeps exactly (DECIMAL(18,4))"
        )


def running_totals(net: I64, start_total: int, start_peak: int) -> tuple[I64, I64]:
    """Cumulative net P&L after each fill and its running peak (never below `start_peak`)."""
    _require_in_range(float(np.abs(net).sum()) + abs(start_total) + abs(start_peak), "charges")
    total = np.cumsum(net) + np.int64(start_total)
    peak = np.maximum(np.maximum.accumulate(total), np.int64(start_peak))
    return total, peak.astype(np.int64)
