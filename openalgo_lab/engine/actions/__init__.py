"""Every OpenAlgo action, registered by importing its module."""

from openalgo_lab.engine.actions import (  # noqa: F401  (importing registers the actions)
    analytics,
    books,
    calendar,
    market,
    meta,
    operations,
    options,
    options_orders,
    orders,
    symbols,
)
from openalgo_lab.engine.actions.registry import (
    ACTIONS,
    ActionContext,
    ActionSpec,
    Payload,
    RateClass,
    action,
)

__all__ = ["ACTIONS", "ActionContext", "ActionSpec", "Payload", "RateClass", "action"]
