"""Trading accounts held by the engine.

OpenAlgo runs one broker account per instance; an engine here holds several. Each account has
its own analyze (paper) switch: in analyze mode its orders go to its own sandbox, otherwise to
its live adapter. Every account always has a sandbox, so switching to analyze never needs a
broker login.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openalgo_lab.brokers.base import Broker
from openalgo_lab.brokers.sandbox.broker import SandboxBroker
from openalgo_lab.domain.errors import BrokerSessionExpired


@dataclass
class TradingAccount:
    name: str
    sandbox: SandboxBroker
    live: Broker | None = None
    analyze: bool = True
    strategies: set[str] = field(default_factory=set)

    @property
    def broker_name(self) -> str:
        return self.live.name if self.live is not None else self.sandbox.name

    @property
    def mode(self) -> str:
        return "analyze" if self.analyze else "live"

    @property
    def order_broker(self) -> Broker:
        if self.analyze:
            return self.sandbox
        if self.live is None:
            raise BrokerSessionExpired(
                f"Account {self.name!r} has no live broker session; log in to the broker "
                "or switch the account to analyze mode"
            )
        return self.live

    @property
    def data_broker(self) -> Broker:
        return self.live if self.live is not None else self.sandbox
