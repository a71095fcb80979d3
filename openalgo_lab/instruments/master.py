"""The master contract in memory: lookups, expiries, option chains and symbol search.

Every index is built once in the constructor; afterwards the store is read-only, so one
instance can be shared by the engine, the REST handlers and the sandbox without locks.

Search has to answer in about a millisecond over a full broker master (100,000+ rows), so it
never scans instruments in Python. Instruments are kept in one "rank order" (exchange, then
underlying, then futures before options, expiry, strike), and every way a query word can
match (exact symbol, symbol prefix, underlying, name word, strike, expiry, type, token) is a
posting list of rank positions: a sorted key array that `bisect` cuts into a contiguous slice,
or a dictionary of numpy arrays. A query word becomes a dense array of match tiers, words are
summed, and the lowest sums win; ties keep rank order, so results are deterministic.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from openalgo_lab.domain.enums import Exchange, InstrumentType
from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.money import ZERO
from openalgo_lab.domain.symbols import MONTHS, format_expiry_dashed, parse_expiry
from openalgo_lab.progress import track

K = TypeVar("K", bound=Hashable)
Positions = npt.NDArray[np.int32]
Scores = npt.NDArray[np.int16]

# Match tiers of one query word; lower is better. A result's score is the sum over words.
TIER_SYMBOL = 0  # the whole symbol: "RELIANCE", "NIFTY01DEC2626000CE"
TIER_UNDERLYING = 1  # a derivative of exactly this underlying: "NIFTY" -> NIFTY options
TIER_SYMBOL_PREFIX = 2  # "BANKNIF" -> BANKNIFTY..., "NIFTY01DEC26" -> that expiry's chain
TIER_LEADING_WORD = 3  # the name's first word ("mahindra" -> MAHINDRA & MAHINDRA)
TIER_FIELD = 3  # a strike, expiry, type or token
TIER_WORD = 4  # any other word of the name ("bajaj auto", "mahindra" -> KOTAK MAHINDRA BANK)
TIER_LEADING_PREFIX = 5  # "reli" -> "RELIANCE INDUSTRIES"
TIER_WORD_PREFIX = 6  # "indus" -> "RELIANCE INDUSTRIES"
TIER_FUZZY_CLOSE = 7  # a typo one edit away ("RELAINCE")
TIER_FUZZY = 8
_NO_MATCH = 1000

_FUZZY_CUTOFF = 75.0
_FUZZY_CLOSE_CUTOFF = 90.0
_FUZZY_MIN_LENGTH = 3
_FUZZY_CHOICES = 8
_MAX_CHAR = "\U0010ffff"
_DEFAULT_LIMIT = 500

_EXCHANGE_ORDER: tuple[Exchange, ...] = (
    Exchange.NSE,
    Exchange.BSE,
    Exchange.NSE_INDEX,
    Exchange.BSE_INDEX,
    Exchange.NFO,
    Exchange.BFO,
)
_EXCHANGE_RANK: dict[Exchange, int] = {
    e: i
    for i, e in enumerate(_EXCHANGE_ORDER + tuple(e for e in Exchange if e not in _EXCHANGE_ORDER))
}
_TYPE_GROUP = {
    InstrumentType.INDEX: 0,
    InstrumentType.EQ: 0,
    InstrumentType.FUT: 1,
    InstrumentType.CE: 2,
    InstrumentType.PE: 2,
}
_DERIVATIVE_TYPES = frozenset({InstrumentType.FUT, InstrumentType.CE, InstrumentType.PE})
_TYPE_CODES: dict[InstrumentType, int] = {t: i for i, t in enumerate(InstrumentType)}
# Words that name an instrument type: they filter and never match names ("CE" is not CEAT).
_TYPE_WORDS: dict[str, tuple[InstrumentType, ...]] = {
    "CE": (InstrumentType.CE,),
    "CALL": (InstrumentType.CE,),
    "PE": (InstrumentType.PE,),
    "PUT": (InstrumentType.PE,),
    "FUT": (InstrumentType.FUT,),
    "FUTURE": (InstrumentType.FUT,),
    "FUTURES": (InstrumentType.FUT,),
    "OPT": (InstrumentType.CE, InstrumentType.PE),
    "OPTION": (InstrumentType.CE, InstrumentType.PE),
    "OPTIONS": (InstrumentType.CE, InstrumentType.PE),
    "EQ": (InstrumentType.EQ,),
    "INDEX": (InstrumentType.INDEX,),
}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_EXPIRY_WORD = re.compile(
    rf"(?P<dd>\d{{1,2}})?-?(?P<mmm>{'|'.join(MONTHS)})-?(?P<yy>\d{{2}}|\d{{4}})?"
)
_WORD_SPLIT = re.compile(r"[^A-Z0-9]+")
_TERM_SPLIT = re.compile(r"[\s,]+")
_EMPTY: Positions = np.zeros(0, dtype=np.int32)

EXPIRY_KINDS = ("futures", "options")
CSV_COLUMNS = (
    "symbol",
    "brsymbol",
    "name",
    "exchange",
    "brexchange",
    "token",
    "expiry",
    "strike",
    "lotsize",
    "instrumenttype",
    "tick_size",
    "freeze_qty",
    "underlying",
    "underlying_exchange",
)


class MasterContract:
    """All instruments of a broker (or the sample), indexed for the API's lookups and search."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._items: list[Instrument] = list(instruments)
        self._by_key: dict[tuple[Exchange, str], Instrument] = {}
        self._by_token: dict[tuple[Exchange, str], Instrument] = {}
        for inst in self._items:
            if inst.key in self._by_key:
                raise ValidationError(
                    "instruments", f"duplicate symbol {inst.symbol} on {inst.exchange}"
                )
            self._by_key[inst.key] = inst
            self._by_token.setdefault((inst.exchange, inst.token), inst)
        self._ids = {inst.key: i + 1 for i, inst in enumerate(self._items)}
        self._futures: dict[tuple[Exchange, str], list[Instrument]] = defaultdict(list)
        self._chains: dict[tuple[Exchange, str, date], dict[Decimal, list[Instrument | None]]] = (
            defaultdict(dict)
        )
        self._option_expiries: dict[tuple[Exchange, str], set[date]] = defaultdict(set)
        self._index_derivatives()
        self._search = _SearchIndex(self._items, self._by_key)

    def _index_derivatives(self) -> None:
        for inst in self._items:
            if inst.expiry is None:
                continue
            key = (inst.exchange, inst.name.upper())
            if inst.is_future:
                self._futures[key].append(inst)
            elif inst.is_option:
                self._option_expiries[key].add(inst.expiry)
                row = self._chains[(inst.exchange, key[1], inst.expiry)].setdefault(
                    inst.strike, [None, None]
                )
                row[0 if inst.instrumenttype is InstrumentType.CE else 1] = inst
        for futures in self._futures.values():
            futures.sort(key=lambda f: (f.expiry or date.min, f.symbol))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    # -- lookups ------------------------------------------------------------------------------
    def find(self, exchange: Exchange, symbol: str) -> Instrument | None:
        return self._by_key.get((exchange, symbol))

    def get(self, exchange: Exchange, symbol: str) -> Instrument:
        """Like `find`, but a miss is the API's 404 with the message OpenAlgo users expect."""
        found = self._by_key.get((exchange, symbol))
        if found is None:
            raise NotFoundError(f"Symbol {symbol} not found on {exchange}")
        return found

    def by_token(self, exchange: Exchange, token: str) -> Instrument | None:
        """Broker feeds and order updates name instruments by token, not symbol."""
        return self._by_token.get((exchange, token))

    def underlying_of(self, instrument: Instrument) -> Instrument | None:
        """The index or stock a derivative is priced from (None for cash, or if not listed)."""
        if not instrument.underlying or instrument.underlying_exchange is None:
            return None
        return self._by_key.get((instrument.underlying_exchange, instrument.underlying))

    def record(self, instrument: Instrument) -> dict[str, object]:
        """`/symbol` row with OpenAlgo's `id` (position in the master, from 1)."""
        return instrument_record(instrument, record_id=self._ids.get(instrument.key))

    # -- derivatives --------------------------------------------------------------------------
    def futures(self, name: str, exchange: Exchange) -> list[Instrument]:
        """Futures on an underlying, nearest expiry first."""
        return list(self._futures.get((exchange, name.strip().upper()), ()))

    def expiries(self, name: str, exchange: Exchange, kind: str) -> list[date]:
        """OpenAlgo's `/expiry`: the distinct expiries of an underlying's futures or options."""
        normalized = kind.strip().lower()
        key = (exchange, name.strip().upper())
        if normalized == "futures":
            return sorted({f.expiry for f in self._futures.get(key, ()) if f.expiry})
        if normalized == "options":
            return sorted(self._option_expiries.get(key, ()))
        raise ValidationError("instrumenttype", f"must be futures or options, got {kind!r}")

    def option_chain(
        self, name: str, exchange: Exchange, expiry: date
    ) -> list[tuple[Decimal, Instrument | None, Instrument | None]]:
        """(strike, CE, PE) rows in ascending strike; a side is None where it is not listed."""
        chain = self._chains.get((exchange, name.strip().upper(), expiry), {})
        return [(strike, row[0], row[1]) for strike, row in sorted(chain.items())]

    # -- search -------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        exchange: Exchange | None = None,
        instrumenttype: InstrumentType | None = None,
        limit: int = _DEFAULT_LIMIT,
    ) -> list[Instrument]:
        """OpenAlgo's `/search`: every word of the query must match; best matches first.

        A word matches a symbol (exactly, or as its prefix), an underlying, a word of the name
        (or its prefix), a strike, an expiry (`DEC`, `DEC26`, `01DEC26`), a type (`CE`, `FUT`)
        or a token. A word that matches nothing at all is retried as a typo (`RELAINCE`).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query", "must be a non-empty search string")
        if limit < 1:
            raise ValidationError("limit", f"must be at least 1, got {limit}")
        terms = [t for t in _TERM_SPLIT.split(query.strip().upper()) if t]
        return self._search.search(terms, exchange, instrumenttype, limit)


class _SearchIndex:
    """Posting lists over instruments in rank order; see the module docstring."""

    def __init__(
        self, instruments: Sequence[Instrument], by_key: dict[tuple[Exchange, str], Instrument]
    ) -> None:
        ranked = sorted(instruments, key=_rank_key)
        self.ranked = ranked
        self.size = len(ranked)
        self.spans = _exchange_spans(ranked)
        self.type_codes = np.fromiter(
            (_TYPE_CODES[i.instrumenttype] for i in ranked), dtype=np.int8, count=len(ranked)
        )
        self.symbols = _KeyIndex((inst.symbol, p) for p, inst in enumerate(ranked))
        cache = _WordCache(by_key)
        words = [cache(inst) for inst in ranked]
        self.leading_words = _KeyIndex((w, p) for p, ws in enumerate(words) for w in ws.leading)
        self.words = _KeyIndex((w, p) for p, ws in enumerate(words) for w in ws.every)
        self.vocabulary = sorted(set(self.words.keys))
        self.underlyings = _postings(
            (inst.name.upper(), p) for p, inst in enumerate(ranked) if inst.is_derivative
        )
        self.strikes = _postings(
            (inst.strike, p) for p, inst in enumerate(ranked) if inst.is_option
        )
        self.tokens = _postings((inst.token, p) for p, inst in enumerate(ranked))
        self.expiries = _postings(
            (inst.expiry, p) for p, inst in enumerate(ranked) if inst.expiry is not None
        )
        self.types = _postings((inst.instrumenttype, p) for p, inst in enumerate(ranked))

    def search(
        self,
        terms: Sequence[str],
        exchange: Exchange | None,
        instrumenttype: InstrumentType | None,
        limit: int,
    ) -> list[Instrument]:
        lo, hi = (0, self.size) if exchange is None else self.spans.get(exchange, (0, 0))
        if lo == hi:
            return []
        total: Scores | None = None
        for term in terms:
            scores = self.term_scores(term)
            if total is None:
                total = scores
            else:
                total += scores
                np.minimum(total, _NO_MATCH, out=total)
        assert total is not None
        window = total[lo:hi]
        valid = window < _NO_MATCH
        if instrumenttype is not None:
            valid &= self.type_codes[lo:hi] == _TYPE_CODES[instrumenttype]
        candidates = np.flatnonzero(valid)
        best = candidates[np.argsort(window[candidates], kind="stable")[:limit]]
        return [self.ranked[lo + int(p)] for p in best]

    def term_scores(self, term: str) -> Scores:
        """Best tier of `term` for every instrument (`_NO_MATCH` where it does not match)."""
        scores = np.full(self.size, _NO_MATCH, dtype=np.int16)
        matches = self.matches(term)
        if not any(len(positions) for _, positions in matches):
            matches = self.fuzzy_matches(term)
        # Worst tier first, so a better tier of the same instrument overwrites it.
        for tier, positions in sorted(matches, key=lambda m: -m[0]):
            scores[positions] = tier
        return scores

    def matches(self, term: str) -> list[tuple[int, Positions]]:
        types = _TYPE_WORDS.get(term)
        if types is not None:
            return [(TIER_FIELD, self.types.get(t, _EMPTY)) for t in types]
        out: list[tuple[int, Positions]] = []
        out += self.symbols.matches(term, TIER_SYMBOL, TIER_SYMBOL_PREFIX)
        out.append((TIER_UNDERLYING, self.underlyings.get(term, _EMPTY)))
        out += self.leading_words.matches(term, TIER_LEADING_WORD, TIER_LEADING_PREFIX)
        out += self.words.matches(term, TIER_WORD, TIER_WORD_PREFIX)
        if _NUMBER.fullmatch(term):
            out.append((TIER_FIELD, self.strikes.get(Decimal(term), _EMPTY)))
        out.append((TIER_FIELD, self.tokens.get(term, _EMPTY)))
        out += [(TIER_FIELD, p) for p in self.expiry_matches(term)]
        return out

    def expiry_matches(self, term: str) -> list[Positions]:
        m = _EXPIRY_WORD.fullmatch(term)
        if m is None:
            return []
        month = MONTHS.index(m["mmm"]) + 1
        day = int(m["dd"]) if m["dd"] else None
        year = int(m["yy"]) if m["yy"] else None
        if year is not None and year < 100:
            year += 2000
        return [
            positions
            for d, positions in self.expiries.items()
            if d.month == month and day in (None, d.day) and year in (None, d.year)
        ]

    def fuzzy_matches(self, term: str) -> list[tuple[int, Positions]]:
        """Typos: the closest name words, only for a word that matched nothing exactly."""
        if len(term) < _FUZZY_MIN_LENGTH or _NUMBER.fullmatch(term) or _EXPIRY_WORD.fullmatch(term):
            return []
        hits = process.extract(
            term,
            self.vocabulary,
            scorer=fuzz.ratio,
            score_cutoff=_FUZZY_CUTOFF,
            limit=_FUZZY_CHOICES,
        )
        out: list[tuple[int, Positions]] = []
        for word, score, _ in hits:
            tier = TIER_FUZZY_CLOSE if score >= _FUZZY_CLOSE_CUTOFF else TIER_FUZZY
            out.append((tier, self.words.exact(word)))
        return out


class _KeyIndex:
    """(key, position) pairs sorted by key: the instruments with a key equal to, or starting
    with, a term are two contiguous slices found by bisection, never by a scan."""

    def __init__(self, pairs: Iterable[tuple[str, int]]) -> None:
        ordered = sorted(pairs)
        self.keys = [k for k, _ in ordered]
        self.positions: Positions = np.fromiter(
            (p for _, p in ordered), dtype=np.int32, count=len(ordered)
        )

    def matches(self, term: str, exact_tier: int, prefix_tier: int) -> list[tuple[int, Positions]]:
        lo = bisect_left(self.keys, term)
        mid = bisect_right(self.keys, term, lo)
        hi = bisect_left(self.keys, term + _MAX_CHAR, mid)
        return [(exact_tier, self.positions[lo:mid]), (prefix_tier, self.positions[mid:hi])]

    def exact(self, term: str) -> Positions:
        return self.positions[bisect_left(self.keys, term) : bisect_right(self.keys, term)]


def _postings(pairs: Iterable[tuple[K, int]]) -> dict[K, Positions]:
    lists: dict[K, list[int]] = defaultdict(list)
    for key, position in pairs:
        lists[key].append(position)
    return {k: np.asarray(v, dtype=np.int32) for k, v in lists.items()}


def _rank_key(inst: Instrument) -> tuple[int, str, int, date, Decimal, bool, str]:
    """Cash and indices first, then each underlying's futures by expiry, then its options."""
    root = inst.name.upper() if inst.is_derivative else inst.symbol
    return (
        _EXCHANGE_RANK[inst.exchange],
        root,
        _TYPE_GROUP[inst.instrumenttype],
        inst.expiry or date.min,
        inst.strike,
        inst.instrumenttype is InstrumentType.PE,
        inst.symbol,
    )


def _exchange_spans(ranked: Sequence[Instrument]) -> dict[Exchange, tuple[int, int]]:
    spans: dict[Exchange, tuple[int, int]] = {}
    for p, inst in enumerate(ranked):
        lo, _ = spans.get(inst.exchange, (p, p))
        spans[inst.exchange] = (lo, p + 1)
    return spans


@dataclass(frozen=True, slots=True)
class _Words:
    """An instrument's searchable words; `leading` (a subset) are those a name starts with."""

    leading: frozenset[str]
    every: frozenset[str]

    def __or__(self, other: _Words) -> _Words:
        return _Words(self.leading | other.leading, self.every | other.every)


class _WordCache:
    """Searchable words of an instrument, computed once per underlying (a chain shares them).

    Words are the name's words, and for cash and indices the symbol's parts ("BAJAJ-AUTO").
    Stock derivatives also carry the company's name words, so "tata steel" finds TATASTEEL
    futures. Index derivatives do not: "NIFTY" is a word of most NSE index names, and
    inheriting it would bury NIFTY's own chain under every other index's.
    """

    def __init__(self, by_key: dict[tuple[Exchange, str], Instrument]) -> None:
        self._by_key = by_key
        self._cache: dict[tuple[str, str, Exchange | None, bool], _Words] = {}

    def __call__(self, inst: Instrument) -> _Words:
        derivative = inst.instrumenttype in _DERIVATIVE_TYPES
        other = inst.underlying if derivative else inst.symbol
        key = (inst.name, other, inst.underlying_exchange, derivative)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._compute(inst, derivative)
        return found

    def _compute(self, inst: Instrument, derivative: bool) -> _Words:
        words = _text_words(inst.name)
        if not derivative:
            return words | _text_words(inst.symbol)
        own = inst.name.strip().upper()
        words |= _Words(frozenset({own}), frozenset({own}))
        if inst.underlying_exchange is not None and inst.underlying_exchange.is_cash:
            company = self._by_key.get((inst.underlying_exchange, inst.underlying))
            if company is not None:
                words |= _text_words(company.name)
        return words


def _text_words(text: str) -> _Words:
    """Words of a name, plus the words run together ("BAJAJAUTO", "NIFTYBANK")."""
    parts = [p for p in _WORD_SPLIT.split(text.strip().upper()) if p]
    if not parts:
        return _Words(frozenset(), frozenset())
    joined = {"".join(parts)}
    return _Words(frozenset({parts[0]} | joined), frozenset(parts) | joined)


# -- OpenAlgo rows and CSV --------------------------------------------------------------------
def instrument_record(inst: Instrument, record_id: int | None = None) -> dict[str, object]:
    """One row of OpenAlgo's `/symbol` and `/search` answers (floats only at this edge)."""
    record: dict[str, object] = {} if record_id is None else {"id": record_id}
    record.update(
        symbol=inst.symbol,
        brsymbol=inst.brsymbol,
        name=inst.name,
        exchange=inst.exchange.value,
        brexchange=inst.brexchange,
        token=inst.token,
        expiry=format_expiry_dashed(inst.expiry) if inst.expiry else "",
        strike=float(inst.strike) if inst.is_option else 0.0,
        lotsize=inst.lotsize,
        instrumenttype=inst.instrumenttype.value,
        tick_size=float(inst.tick_size),
        freeze_qty=inst.freeze_qty,
    )
    return record


def save_csv(instruments: Iterable[Instrument], path: str | PathLike[str]) -> None:
    """OpenAlgo's `/instruments` CSV columns, then ours; numbers as exact decimals."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for inst in instruments:
            writer.writerow(_csv_row(inst))


def _csv_row(inst: Instrument) -> list[str]:
    return [
        inst.symbol,
        inst.brsymbol,
        inst.name,
        inst.exchange.value,
        inst.brexchange,
        inst.token,
        format_expiry_dashed(inst.expiry) if inst.expiry else "",
        str(inst.strike),
        str(inst.lotsize),
        inst.instrumenttype.value,
        str(inst.tick_size),
        str(inst.freeze_qty),
        inst.underlying,
        inst.underlying_exchange.value if inst.underlying_exchange else "",
    ]


def load_csv(path: str | PathLike[str], *, progress: bool | None = None) -> MasterContract:
    """Read a master saved by `save_csv` (or OpenAlgo's `/instruments` CSV, which lacks the
    last three columns); a bad row is a `ValidationError` naming its line. A full broker
    master has over 100,000 rows: `progress` counts them (see `openalgo_lab.progress`)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS[:11] if c not in (reader.fieldnames or ())]
        if missing:
            raise ValidationError("csv", f"{path}: missing columns {', '.join(missing)}")
        numbered = enumerate(reader, start=2)
        desc = f"loading {Path(path).name}"
        rows = [
            _parse_row(row, line)
            for line, row in track(numbered, desc=desc, unit=" rows", enabled=progress)
        ]
    return MasterContract(rows)


def _parse_row(row: dict[str, str], line: int) -> Instrument:
    try:
        exchange = Exchange(row["exchange"].strip())
        symbol = row["symbol"].strip()
        kind = _instrument_type(row["instrumenttype"].strip(), symbol, exchange)
        expiry_text = row["expiry"].strip()
        underlying_exchange = (row.get("underlying_exchange") or "").strip()
        return Instrument(
            symbol=symbol,
            exchange=exchange,
            name=row["name"].strip(),
            instrumenttype=kind,
            token=row["token"].strip(),
            tick_size=Decimal(row["tick_size"].strip()),
            lotsize=int(Decimal(row["lotsize"].strip())),
            brsymbol=row["brsymbol"].strip(),
            brexchange=row["brexchange"].strip(),
            expiry=parse_expiry(expiry_text, "expiry") if expiry_text else None,
            strike=Decimal(row["strike"].strip()) if kind.is_option else ZERO,
            freeze_qty=int(Decimal((row.get("freeze_qty") or "0").strip() or "0")),
            underlying=(row.get("underlying") or "").strip(),
            underlying_exchange=Exchange(underlying_exchange) if underlying_exchange else None,
        )
    except (ValueError, InvalidOperation, ValidationError) as exc:
        reason = exc.message if isinstance(exc, ValidationError) else str(exc)
        raise ValidationError("csv", f"line {line}: {reason}") from None


def _instrument_type(text: str, symbol: str, exchange: Exchange) -> InstrumentType:
    """Our types, or the broker spellings OpenAlgo masters carry (`OPTIDX`, `FUTSTK`, "")."""
    if text in InstrumentType.__members__:
        return InstrumentType(text)
    if exchange.is_index:
        return InstrumentType.INDEX
    if exchange.is_cash:
        return InstrumentType.EQ
    if symbol.endswith(("CE", "PE")):
        return InstrumentType(symbol[-2:])
    if symbol.endswith("FUT"):
        return InstrumentType.FUT
    raise ValueError(f"unknown instrumenttype {text!r} for {symbol}")
