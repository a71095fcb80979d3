"""Trade analytics over the history database, as an action (ours, not OpenAlgo's).

Analysis runs where the history lives, in the engine's process, and returns rows; the Client
turns them into DataFrames. So a kernel never opens the history database itself, and the same
call works against an embedded engine or a remote server.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from openalgo_lab import analytics
from openalgo_lab.domain.errors import OpenAlgoError, ValidationError
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action

REPORTS = ("pnl", "round_trips", "stats", "equity", "drawdown")


class HistoryUnavailable(OpenAlgoError):
    http_status = 503


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[JSON]:
    return [{str(k): _jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


@action("analytics")
async def analytics_report(ctx: ActionContext, p: Payload) -> JSON:
    """P&L, round trips, statistics, equity curve or drawdown of the account's history."""
    report = p.text("report")
    if report not in REPORTS:
        raise ValidationError("report", f"{report!r} is not one of {', '.join(REPORTS)}")
    engine = ctx.engine
    store, writer = engine.history_store, engine.history
    if store is None or writer is None:
        raise HistoryUnavailable("The history database is not open (the engine is not started)")
    await asyncio.to_thread(writer.flush)  # include the fills of the last moments
    account = ctx.account.name
    by = p.raw("by")
    if by is not None and not (isinstance(by, list) and all(isinstance(b, str) for b in by)):
        raise ValidationError("by", "must be a list of column names")
    if report == "pnl":
        frame = analytics.pnl_by(store, tuple(by or ("strategy", "symbol", "day")), account=account)
    elif report == "round_trips":
        frame = analytics.round_trips(store, account=account)
    elif report == "stats":
        frame = analytics.trade_stats(store, by=tuple(by or ("strategy",)), account=account)
    else:
        capital = p.decimal("starting_capital", default=engine.settings.capital)
        freq = p.text("freq", default="trade")
        if freq not in ("trade", "day"):
            raise ValidationError("freq", f"{freq!r} is not one of trade, day")
        if report == "equity":
            frame = analytics.equity_curve(
                store,
                starting_capital=capital,
                account=account,
                freq=freq,  # type: ignore[arg-type]
            )
        else:
            dd = analytics.max_drawdown(
                store,
                starting_capital=capital,
                account=account,
                freq=freq,  # type: ignore[arg-type]
            )
            return {"data": {k: _jsonable(v) for k, v in dd._asdict().items()}}
    return {"data": _records(frame), "columns": [str(c) for c in frame.columns]}
