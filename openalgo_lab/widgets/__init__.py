"""ipywidgets panels for trading from a notebook or a Voila dashboard, built on the Client.

Each panel is an ipywidgets container made as `Panel(client, **options)` and closed with
`.close()` (which unsubscribes from events and stops its timers). Panels work against an
embedded engine, the Jupyter server extension, or any OpenAlgo-compatible server: they only
use the Client. They never raise into the notebook: errors show in the panel.
"""

from openalgo_lab.widgets.approvals import Approvals
from openalgo_lab.widgets.books import Books, Funds, Holdings, OrderBook, PositionBook, TradeBook
from openalgo_lab.widgets.desk import KillSwitch, TradingDesk
from openalgo_lab.widgets.operations import Operations
from openalgo_lab.widgets.pnl import PnLPanel
from openalgo_lab.widgets.ticket import OrderTicket
from openalgo_lab.widgets.watchlist import Watchlist

__all__ = [
    "Approvals",
    "Books",
    "Funds",
    "Holdings",
    "KillSwitch",
    "Operations",
    "OrderBook",
    "OrderTicket",
    "PnLPanel",
    "PositionBook",
    "TradeBook",
    "TradingDesk",
    "Watchlist",
]
