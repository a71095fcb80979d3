"""Operations: the traffic log of the API, as an action (ours, not OpenAlgo's).

Every API request is logged by the server (route, status, timings, the key's public id,
never the key or the body) into the history database's `requests` table; this action reads
the most recent rows and per-route latency statistics, computed by SQL there.
"""

from __future__ import annotations

import asyncio

from openalgo_lab.engine.actions.analytics import HistoryUnavailable, _records
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action

MAX_ROWS = 1000

_RECENT = """
    SELECT seq, ts, method, route, status, duration_ms, parse_ms, engine_ms, risk_ms,
           journal_ms, broker_ms, key_id, client
    FROM requests ORDER BY seq DESC LIMIT ?"""
_STATS = """
    SELECT route, count(*) AS count,
           quantile_cont(duration_ms, 0.5) AS p50_ms,
           quantile_cont(duration_ms, 0.9) AS p90_ms,
           quantile_cont(duration_ms, 0.99) AS p99_ms,
           count(*) FILTER (WHERE status >= 400) AS errors
    FROM requests GROUP BY route ORDER BY route"""


@action("traffic")
async def traffic(ctx: ActionContext, p: Payload) -> JSON:
    """The most recent API requests (newest first, `limit` ≤ 1000) and, per route, the
    request count, p50/p90/p99 of the duration in milliseconds and the error count."""
    limit = p.integer("limit", default=100, minimum=1, maximum=MAX_ROWS)
    engine = ctx.engine
    store = engine.history_store
    if store is None:
        raise HistoryUnavailable("The history database is not open (the engine is not started)")
    await asyncio.to_thread(engine.flush_requests)  # include the requests of the last moments
    recent = await asyncio.to_thread(store.query, _RECENT, (limit,))
    stats = await asyncio.to_thread(store.query, _STATS)
    return {"data": {"requests": _records(recent), "routes": _records(stats)}}
