"""Webhook strategies: TradingView, ChartInk and Python alerts turned into orders.

A strategy is a row of the `strategies` table (name, account, webhook token, mode); what
OpenAlgo keeps in `strategy_symbol_mappings` and in its time columns lives in the row's
`settings` JSON, so the feature needs no migration:

    {"symbols": {"<ALERT SYMBOL>": {"symbol", "exchange", "quantity", "product"}},
     "start_time": "HH:MM" | null, "end_time": ..., "squareoff_time": ...,   # IST
     "semi_auto": bool, "dedupe_seconds": int}

Alert grammar (what `parse_alert` accepts):

* JSON `{"symbol", "action", "position_size"?, "quantity"?}` — OpenAlgo's strategy payload,
  also what TradingView sends when the alert message is JSON. `action` is BUY or SELL
  (OpenAlgo's meaning, relative to the strategy's mode) or SHORT / COVER (explicit short
  entry / exit).
* text/plain `ACTION SYMBOL [QUANTITY]`, e.g. `BUY RELIANCE 10`, words separated by spaces
  or commas, case-insensitive; ACTION as above. QUANTITY is an unsigned entry size.
* ChartInk `{"stocks": "A,B", "trigger_prices": "1,2", "scan_name": "... BUY ..."}`: the
  first of BUY / SELL / SHORT / COVER found as a word in `scan_name` is the action, where
  (as in OpenAlgo) BUY = long entry, SELL = long exit, SHORT = short entry, COVER = short
  exit. One order per mapped stock; unmapped stocks are skipped and reported.

How a signal becomes an order follows OpenAlgo (docs §6.2): in LONG mode BUY enters with
`placeorder` and SELL flattens with `placesmartorder(position_size=0)`; SHORT mode mirrors
it; BOTH mode always uses `placesmartorder` with the target position (the alert's
`position_size`, else +quantity for an entry and 0 for an exit). Entry size is
|position_size|, else the alert's quantity, else the mapping's quantity. LONG mode refuses
short signals (SHORT, COVER, SELL with a negative position_size) and SHORT mode refuses
long ones. Entries are accepted in [start, end] and exits in [start, squareoff] (IST).

Each order's idempotency key is derived from the webhook token, a hash of the alert body
and of the symbol, and a time bucket of `dedupe_seconds` (60 by default), so a sender that
retries an alert (TradingView retries slow answers) orders once; an identical alert in a
later bucket orders again. The journal does the deduplication.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError, ValidationError
from openalgo_lab.engine import action_center
from openalgo_lab.store.state_models import Account, Strategy

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Engine, Reply
    from openalgo_lab.store.state import StateStore

JSON = dict[str, Any]
PLATFORMS = ("tradingview", "chartink", "python")
MODES = ("LONG", "SHORT", "BOTH")
PRODUCTS = ("MIS", "CNC", "NRML")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _-]{3,50}$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
VERBS = ("BUY", "SELL", "SHORT", "COVER")
DEFAULT_DEDUPE_SECONDS = 60
TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, within the column's 64


class AlertRefused(OpenAlgoError):
    """An alert that is well formed but not allowed now (mode, time window, inactive)."""

    http_status = 400


class AlertFailed(OpenAlgoError):
    """Every order of an alert failed; carries the engine's status for the answer."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class Intent(Enum):
    LONG_ENTRY = "long entry"
    LONG_EXIT = "long exit"
    SHORT_ENTRY = "short entry"
    SHORT_EXIT = "short exit"

    @property
    def is_entry(self) -> bool:
        return self in (Intent.LONG_ENTRY, Intent.SHORT_ENTRY)


@dataclass(frozen=True, slots=True)
class SymbolMapping:
    """What an alert's symbol trades: OpenAlgo's `strategy_symbol_mappings` row."""

    symbol: str
    exchange: str
    quantity: int
    product: str

    def to_json(self) -> JSON:
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "quantity": self.quantity,
            "product": self.product,
        }


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """A strategy as the alert path needs it, detached from the database session."""

    id: int
    name: str
    account: str
    webhook_token: str
    platform: str
    mode: str
    active: bool
    symbols: dict[str, SymbolMapping]
    start_time: time | None = None
    end_time: time | None = None
    squareoff_time: time | None = None
    semi_auto: bool = False
    dedupe_seconds: int = DEFAULT_DEDUPE_SECONDS

    def to_json(self) -> JSON:
        def hhmm(value: time | None) -> str | None:
            return value.strftime("%H:%M") if value is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "account": self.account,
            "webhook_token": self.webhook_token,
            "platform": self.platform,
            "mode": self.mode,
            "active": self.active,
            "symbols": {k: v.to_json() for k, v in self.symbols.items()},
            "start_time": hhmm(self.start_time),
            "end_time": hhmm(self.end_time),
            "squareoff_time": hhmm(self.squareoff_time),
            "semi_auto": self.semi_auto,
            "dedupe_seconds": self.dedupe_seconds,
        }


@dataclass(frozen=True, slots=True)
class Signal:
    """One alert line: a verb for one alert symbol, with the sizes the sender gave."""

    symbol: str
    verb: str
    position_size: int | None = None
    quantity: int | None = None
    explicit: bool = False  # ChartInk: BUY/SELL mean long entry/exit whatever the mode


@dataclass(frozen=True, slots=True)
class Alert:
    signals: list[Signal]
    source: str  # "strategy", "text" or "chartink"
    raw: str = field(default="", repr=False)


# -- validation of the strategy's own settings -------------------------------------------------
def _parse_time(name: str, value: Any) -> time | None:
    if value in (None, ""):
        return None
    match = TIME_PATTERN.match(str(value).strip())
    if match is None:
        raise ValidationError(name, f"must be HH:MM (IST), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _positive_int(name: str, value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(name, f"must be a whole number, got {value!r}") from None
    if number <= 0:
        raise ValidationError(name, f"must be positive, got {number}")
    return number


def parse_mapping(alert_symbol: str, value: Mapping[str, Any]) -> SymbolMapping:
    """One symbol mapping from its JSON form; the traded symbol defaults to the alert's."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"symbols.{alert_symbol}", "must be an object")
    product = str(value.get("product", "MIS")).upper()
    if product not in PRODUCTS:
        raise ValidationError(f"symbols.{alert_symbol}.product", f"must be one of {PRODUCTS}")
    exchange = str(value.get("exchange", "")).upper().strip()
    if not exchange:
        raise ValidationError(f"symbols.{alert_symbol}.exchange", "is required")
    return SymbolMapping(
        symbol=str(value.get("symbol") or alert_symbol).upper().strip(),
        exchange=exchange,
        quantity=_positive_int(f"symbols.{alert_symbol}.quantity", value.get("quantity", 1)),
        product=product,
    )


def parse_mappings(value: Any) -> dict[str, SymbolMapping]:
    """`{"ALERT": {...}}` or `[{"alert_symbol"?, "symbol", ...}]` → alert symbol → mapping."""
    if value is None:
        return {}
    items: list[tuple[str, Mapping[str, Any]]]
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = []
        for entry in value:
            if not isinstance(entry, Mapping) or not (
                entry.get("alert_symbol") or entry.get("symbol")
            ):
                raise ValidationError("symbols", "each entry needs a symbol")
            items.append((str(entry.get("alert_symbol") or entry["symbol"]), entry))
    else:
        raise ValidationError("symbols", "must be an object or a list")
    return {k.upper().strip(): parse_mapping(k, v) for k, v in items}


def config_from_row(row: Strategy, account: str) -> StrategyConfig:
    settings = dict(row.settings or {})
    return StrategyConfig(
        id=row.id,
        name=row.name,
        account=account,
        webhook_token=row.webhook_token,
        platform=row.platform,
        mode=row.mode,
        active=row.active,
        symbols=parse_mappings(settings.get("symbols")),
        start_time=_parse_time("start_time", settings.get("start_time")),
        end_time=_parse_time("end_time", settings.get("end_time")),
        squareoff_time=_parse_time("squareoff_time", settings.get("squareoff_time")),
        semi_auto=bool(settings.get("semi_auto", False)),
        dedupe_seconds=int(settings.get("dedupe_seconds", DEFAULT_DEDUPE_SECONDS)),
    )


def settings_from_request(body: Mapping[str, Any]) -> JSON:
    """The `settings` JSON of a new strategy, validated (errors name the field)."""
    start = _parse_time("start_time", body.get("start_time"))
    end = _parse_time("end_time", body.get("end_time"))
    squareoff = _parse_time("squareoff_time", body.get("squareoff_time"))
    if start and end and end < start:
        raise ValidationError("end_time", "must not be before start_time")
    if start and squareoff and squareoff < start:
        raise ValidationError("squareoff_time", "must not be before start_time")
    dedupe = _positive_int("dedupe_seconds", body.get("dedupe_seconds", DEFAULT_DEDUPE_SECONDS))
    mappings = parse_mappings(body.get("symbols"))
    return {
        "symbols": {k: v.to_json() for k, v in mappings.items()},
        "start_time": body.get("start_time") or None,
        "end_time": body.get("end_time") or None,
        "squareoff_time": body.get("squareoff_time") or None,
        "semi_auto": bool(body.get("semi_auto", False)),
        "dedupe_seconds": dedupe,
    }


# -- the store ----------------------------------------------------------------------------------
def create_strategy(state: StateStore, body: Mapping[str, Any], account: str) -> StrategyConfig:
    """Store a new strategy with a fresh webhook token; `account` must already be one the
    engine serves (the caller checks), its state row is created if missing."""
    name = str(body.get("name", "")).strip()
    if not NAME_PATTERN.match(name):
        raise ValidationError("name", "must be 3 to 50 letters, digits, spaces, _ or -")
    platform = str(body.get("platform", "tradingview")).lower()
    if platform not in PLATFORMS:
        raise ValidationError("platform", f"must be one of {', '.join(PLATFORMS)}")
    mode = str(body.get("mode", "BOTH")).upper()
    if mode not in MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
    settings = settings_from_request(body)
    with state.session() as session:
        acct = session.scalar(select(Account).where(Account.name == account))
        if acct is None:
            acct = Account(name=account)
            session.add(acct)
            session.flush()
        clash = session.scalar(
            select(Strategy.id).where(Strategy.account_id == acct.id, Strategy.name == name)
        )
        if clash is not None:
            raise ValidationError("name", f"a strategy named {name!r} exists for {account}")
        row = Strategy(
            name=name,
            account_id=acct.id,
            webhook_token=secrets.token_urlsafe(TOKEN_BYTES),
            platform=platform,
            mode=mode,
            intraday=bool(settings["squareoff_time"] or settings["end_time"]),
            settings=settings,
        )
        session.add(row)
        session.flush()
        return config_from_row(row, account)


def list_strategies(state: StateStore, account: str | None = None) -> list[StrategyConfig]:
    query = select(Strategy, Account.name).join(Account).order_by(Strategy.id)
    if account is not None:
        query = query.where(Account.name == account)
    with state.session() as session:
        return [config_from_row(row, name) for row, name in session.execute(query).all()]


def get_strategy(state: StateStore, strategy_id: int) -> StrategyConfig:
    query = select(Strategy, Account.name).join(Account).where(Strategy.id == strategy_id)
    with state.session() as session:
        found = session.execute(query).first()
        if found is None:
            raise NotFoundError(f"Strategy {strategy_id} not found")
        return config_from_row(found[0], found[1])


def find_by_token(state: StateStore, token: str) -> StrategyConfig | None:
    """The strategy a webhook URL names; None for an unknown token."""
    query = select(Strategy, Account.name).join(Account).where(Strategy.webhook_token == token)
    with state.session() as session:
        found = session.execute(query).first()
        return config_from_row(found[0], found[1]) if found is not None else None


# -- parsing alerts -----------------------------------------------------------------------------
def _optional_int(name: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(float(str(value).strip()))
    except ValueError:
        raise ValidationError(name, f"must be a number, got {value!r}") from None


def _verb(value: Any) -> str:
    verb = str(value or "").strip().upper()
    if verb not in VERBS:
        raise ValidationError("action", f"must be one of {', '.join(VERBS)}, got {value!r}")
    return verb


def parse_text(text: str) -> Alert:
    """`ACTION SYMBOL [QUANTITY]`, e.g. `BUY RELIANCE 10` (see the module docstring)."""
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    if len(words) not in (2, 3):
        raise ValidationError("alert", "text alerts must read 'ACTION SYMBOL [QUANTITY]'")
    quantity = _positive_int("quantity", words[2]) if len(words) == 3 else None
    signal = Signal(symbol=words[1].upper(), verb=_verb(words[0]), quantity=quantity)
    return Alert([signal], "text", text)


def parse_chartink(body: Mapping[str, Any], raw: str) -> Alert:
    """ChartInk's scan alert: one signal per stock, the action from the scan's name."""
    stocks = [s.strip().upper() for s in str(body.get("stocks") or "").split(",") if s.strip()]
    if not stocks:
        raise ValidationError("stocks", "is required: a comma-separated list of symbols")
    scan_name = str(body.get("scan_name") or body.get("alert_name") or "")
    words = set(re.split(r"[^A-Za-z]+", scan_name.upper()))
    verb = next((v for v in VERBS if v in words), None)
    if verb is None:
        raise ValidationError("scan_name", "must contain BUY, SELL, SHORT or COVER")
    return Alert([Signal(s, verb, explicit=True) for s in stocks], "chartink", raw)


def parse_alert(body: Mapping[str, Any] | str) -> Alert:
    """Any supported alert body; raises ValidationError (400) naming what is wrong."""
    if isinstance(body, str):
        return parse_text(body)
    raw = json.dumps(body, sort_keys=True, default=str)
    if "stocks" in body:
        return parse_chartink(body, raw)
    symbol = str(body.get("symbol") or "").strip().upper()
    if not symbol:
        raise ValidationError("symbol", "is required")
    signal = Signal(
        symbol=symbol,
        verb=_verb(body.get("action")),
        position_size=_optional_int("position_size", body.get("position_size")),
        quantity=_optional_int("quantity", body.get("quantity")),
    )
    return Alert([signal], "strategy", raw)


# -- from a signal to an order ------------------------------------------------------------------
def intent_of(signal: Signal, mode: str) -> Intent:
    """What the signal asks for, given the strategy's mode (see the module docstring)."""
    verb, size = signal.verb, signal.position_size
    if verb == "SHORT":
        return Intent.SHORT_ENTRY
    if verb == "COVER":
        return Intent.SHORT_EXIT
    if signal.explicit or mode in ("LONG", "BOTH"):
        if verb == "BUY":
            return (
                Intent.LONG_ENTRY
                if size is None or size > 0 or mode == "LONG"
                else Intent.LONG_EXIT
            )
        if size is not None and size < 0:
            return Intent.SHORT_ENTRY
        return Intent.LONG_EXIT
    # SHORT mode: SELL enters, BUY exits, unless the size says otherwise
    if verb == "SELL":
        return Intent.SHORT_ENTRY
    return Intent.LONG_ENTRY if size is not None and size > 0 else Intent.SHORT_EXIT


def check_mode(intent: Intent, mode: str) -> None:
    if mode == "LONG" and intent in (Intent.SHORT_ENTRY, Intent.SHORT_EXIT):
        raise AlertRefused(f"Strategy is LONG only: {intent.value} refused")
    if mode == "SHORT" and intent in (Intent.LONG_ENTRY, Intent.LONG_EXIT):
        raise AlertRefused(f"Strategy is SHORT only: {intent.value} refused")


def check_window(strategy: StrategyConfig, intent: Intent, now: datetime) -> None:
    """Entries only in [start, end], exits only in [start, squareoff] (IST), as OpenAlgo."""
    at = now.astimezone(IST).time().replace(second=0, microsecond=0)
    start = strategy.start_time
    end = strategy.end_time if intent.is_entry else strategy.squareoff_time or strategy.end_time
    shown = at.strftime("%H:%M")
    if start is not None and at < start:
        raise AlertRefused(
            f"Alert at {shown} IST is outside the trading window: starts at {start:%H:%M}"
        )
    if end is not None and at > end:
        what = "entries end" if intent.is_entry else "exits end (square-off)"
        raise AlertRefused(
            f"Alert at {shown} IST is outside the trading window: {what} at {end:%H:%M}"
        )


def _check_both_sign(signal: Signal) -> None:
    size = signal.position_size
    if size is None or signal.verb not in ("BUY", "SELL"):
        return
    if signal.verb == "BUY" and size < 0:
        raise ValidationError("position_size", "must be >= 0 for BUY in BOTH mode")
    if signal.verb == "SELL" and size > 0:
        raise ValidationError("position_size", "must be <= 0 for SELL in BOTH mode")


def order_for(strategy: StrategyConfig, signal: Signal, intent: Intent) -> tuple[str, JSON]:
    """The OpenAlgo action and payload for one signal (always MARKET, mapping's product)."""
    mapping = strategy.symbols.get(signal.symbol)
    if mapping is None:
        raise ValidationError(
            "symbol", f"{signal.symbol} is not mapped in strategy {strategy.name}"
        )
    size = signal.position_size
    entry_qty = abs(size) if size else signal.quantity or mapping.quantity
    long_side = intent in (Intent.LONG_ENTRY, Intent.SHORT_EXIT)
    base: JSON = {
        "strategy": strategy.name,
        "symbol": mapping.symbol,
        "exchange": mapping.exchange,
        "action": "BUY" if long_side else "SELL",
        "pricetype": "MARKET",
        "product": mapping.product,
    }
    if strategy.mode == "BOTH":
        if size is not None and not signal.explicit and signal.verb in ("BUY", "SELL"):
            target = size
        elif intent.is_entry:
            target = entry_qty if intent is Intent.LONG_ENTRY else -entry_qty
        else:
            target = 0
        quantity = mapping.quantity if target else 0
        return "placesmartorder", base | {"quantity": str(quantity), "position_size": str(target)}
    if intent.is_entry:
        return "placeorder", base | {"quantity": str(entry_qty)}
    return "placesmartorder", base | {"quantity": "0", "position_size": "0"}


def idempotency_key(strategy: StrategyConfig, alert: Alert, signal: Signal, now: datetime) -> str:
    """Token + alert body + symbol + time bucket, hashed: the same alert retried within the
    bucket gets the same key (the journal then repeats the first answer). 40 characters, the
    length of the tag the broker keeps, so reconciliation can find the order by it."""
    bucket = int(now.timestamp()) // max(1, strategy.dedupe_seconds)
    material = "\n".join((strategy.webhook_token, alert.raw, signal.symbol, str(bucket)))
    return "wh-" + hashlib.sha256(material.encode()).hexdigest()[:37]


# -- the alert path -----------------------------------------------------------------------------
async def handle_alert(
    engine: Engine, strategy: StrategyConfig, body: Mapping[str, Any] | str
) -> JSON:
    """Turn one alert into orders (or Action Center entries); returns OpenAlgo's success
    envelope. Raises ValidationError (bad alert), AlertRefused (mode, window, inactive) or
    AlertFailed (every order failed) for the caller to answer with their status."""
    alert = parse_alert(body)
    if not strategy.active:
        raise AlertRefused(f"Strategy {strategy.name} is inactive")
    now = engine.clock.now()
    planned: list[tuple[Signal, str, JSON]] = []
    skipped: list[str] = []
    for signal in alert.signals:
        intent = intent_of(signal, strategy.mode)
        check_mode(intent, strategy.mode)
        check_window(strategy, intent, now)
        if strategy.mode == "BOTH":
            _check_both_sign(signal)
        if alert.source == "chartink" and signal.symbol not in strategy.symbols:
            skipped.append(signal.symbol)
            continue
        api_type, payload = order_for(strategy, signal, intent)
        planned.append((signal, api_type, payload))
    if not planned:
        return {"status": "warning", "message": "No orders were queued", "skipped": skipped}
    if strategy.semi_auto:
        return await _queue(engine, strategy, alert, now, planned, skipped)
    results: list[JSON] = []
    replies: list[Reply] = []
    for signal, api_type, payload in planned:
        key = idempotency_key(strategy, alert, signal, now)
        reply = await engine.call(api_type, payload, account=strategy.account, idempotency_key=key)
        replies.append(reply)
        results.append({"symbol": payload["symbol"], "action": api_type, **reply.body})
    if not any(r.ok for r in replies):
        first = replies[0]
        raise AlertFailed(str(first.body.get("message", "order failed")), first.status)
    symbols = ", ".join(str(r["symbol"]) for r, rep in zip(results, replies, strict=True) if rep.ok)
    return {
        "status": "success",
        "message": f"Orders placed for symbols: {symbols}",
        "orders": results,
        "skipped": skipped,
    }


async def _queue(
    engine: Engine,
    strategy: StrategyConfig,
    alert: Alert,
    now: datetime,
    planned: list[tuple[Signal, str, JSON]],
    skipped: list[str],
) -> JSON:
    """Semi-auto: park every order in the Action Center instead of placing it (a retried
    alert finds its pending order, by the same key a placed order would use)."""
    state = engine.state
    if state is None:
        raise OpenAlgoError("The engine is not running")
    ids: list[int] = []
    for signal, api_type, payload in planned:
        pending = await asyncio.to_thread(
            action_center.enqueue,
            state,
            account=strategy.account,
            api_type=api_type,
            order_data=payload,
            strategy=strategy.name,
            now=now,
            dedupe_key=idempotency_key(strategy, alert, signal, now),
        )
        ids.append(pending.id)
    return {
        "status": "success",
        "message": "Order queued for approval in Action Center",
        "mode": "semi_auto",
        "pending_order_id": ids[0],
        "pending_order_ids": ids,
        "skipped": skipped,
    }
