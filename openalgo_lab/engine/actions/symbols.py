"""Symbol and instrument actions: symbol, search, expiry, instruments (reference §2.4).

All four answer from the master contract in memory, never from the broker, so they cost no
broker rate limit and work before a broker login.
"""

from __future__ import annotations

from openalgo_lab.domain.enums import Exchange
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.models import Instrument
from openalgo_lab.domain.symbols import format_expiry_dashed
from openalgo_lab.engine.actions.market import instrument_of, symbol_of
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action
from openalgo_lab.instruments.master import instrument_record

SEARCH_LIMIT = 500  # OpenAlgo caps /search at 500 rows
EXPIRY_KINDS = ("futures", "options")
# The columns of OpenAlgo's GET /instruments rows (and CSV header), in its order.
INSTRUMENT_COLUMNS = (
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
)


@action("symbol")
async def symbol(ctx: ActionContext, p: Payload) -> JSON:
    """The master-contract row of one symbol (token, lot size, tick size, expiry...)."""
    exchange = p.exchange()
    inst = instrument_of(ctx, exchange, symbol_of(p))
    return {"data": ctx.master.record(inst)}


@action("search")
async def search(ctx: ActionContext, p: Payload) -> JSON:
    """Symbols matching every word of a free-text query (`NIFTY 26000 DEC CE`)."""
    query = p.text("query")
    exchange = p.enum(Exchange, "exchange") if p.has("exchange") else None
    found = ctx.master.search(query, exchange, limit=SEARCH_LIMIT)
    message = f"Found {len(found)} matching symbols" if found else "No matching symbols found"
    return {"message": message, "data": [instrument_record(inst) for inst in found]}


@action("expiry")
async def expiry(ctx: ActionContext, p: Payload) -> JSON:
    """The expiry dates (DD-MMM-YY, ascending) of an underlying's futures or options."""
    name = symbol_of(p)
    exchange = p.exchange()
    if not exchange.is_derivative:
        fno = ", ".join(e.value for e in Exchange if e.is_derivative)
        raise ValidationError("exchange", f"must be an F&O exchange ({fno}), got {exchange}")
    kind = p.text("instrumenttype").lower()
    if kind not in EXPIRY_KINDS:
        raise ValidationError("instrumenttype", f"must be futures or options, got {kind!r}")
    dates = ctx.master.expiries(name, exchange, kind)
    if not dates:
        message = f"No expiry dates found for {name} {kind} in {exchange}"
    else:
        message = f"Found {len(dates)} expiry dates for {name} {kind} in {exchange}"
    return {"message": message, "data": [format_expiry_dashed(d) for d in dates]}


def instrument_row(inst: Instrument) -> JSON:
    record = instrument_record(inst)
    return {column: record[column] for column in INSTRUMENT_COLUMNS}


@action("instruments")
async def instruments(ctx: ActionContext, p: Payload) -> JSON:
    """The whole master contract, or one exchange of it (the REST layer also serves CSV)."""
    exchange = p.enum(Exchange, "exchange") if p.has("exchange") else None
    rows = [
        instrument_row(inst) for inst in ctx.master if exchange is None or inst.exchange is exchange
    ]
    return {"data": rows}
