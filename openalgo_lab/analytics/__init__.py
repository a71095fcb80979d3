"""Analysis of the trade history as SQL in DuckDB, returned as pandas DataFrames.

Every function takes the live `HistoryStore` or a DuckDB connection to a history database
(an exported snapshot, say) and reads it in one read-only transaction. Realised P&L is FIFO
everywhere, so P&L by day, round trips, statistics and the equity curve agree with each
other; see each module for the precise conventions.
"""

from openalgo_lab.analytics.equity import Drawdown, equity_curve, max_drawdown
from openalgo_lab.analytics.pnl import pnl_by
from openalgo_lab.analytics.trips import round_trips, trade_stats

__all__ = [
    "Drawdown",
    "equity_curve",
    "max_drawdown",
    "pnl_by",
    "round_trips",
    "trade_stats",
]
