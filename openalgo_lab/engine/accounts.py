"""Trading accounts held by the engine.

OpenAlgo runs one broker account per instance; an engine here holds several. Each account has
its own analyze (paper) switch: in analyze mode its orders go to its own sandbox, otherwise to
its live adapter. Every account always has a sandbox, so switching to analyze never needs a
broker login.

Each side brings its own master contract: the sandbox trades the sample master, a live broker
its own (Zerodha's instrument dump, say), so symbols are checked against the master of the
broker that will receive the order (`order_master`) or serve the data (`data_master`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from openalgo_lab.brokers.base import Broker
from openalgo_lab.brokers.sandbox.broker import SandboxBroker
from openalgo_lab.domain.errors import BrokerSessionExpired
from openalgo_lab.instruments.master import MasterContract


@runtime_checkable
class LiveBroker(Broker, Protocol):
    """What the engine needs of a live adapter beyond the `Broker` protocol: its login, its
    own master contract, the tag it puts on the wire for one of ours, and a way to close."""

    @property
    def logged_in(self) -> bool: ...

    @property
    def master(self) -> MasterContract | None: ...

    def login_url(self) -> str: ...

    async def complete_login(self, request_token_or_url: str) -> object: ...

    def wire_tag(self, tag: str) -> str:
        """The tag the broker shows for an order we sent with `tag` (brokers limit tags)."""
        ...

    def remember(
        self,
        orderid: str,
        strategy: str,
        tag: str,
        *,
        resume_from: Mapping[str, int] | None = None,
    ) -> None:
        """What the engine knows of an order sent before a restart (its strategy and our
        tag), so the broker's books and events carry them again. For an order still open
        at the stop, `resume_from` holds the fills already recorded (trade id -> quantity):
        its later fills, and those made while we were down, must be neither lost nor doubled."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class TradingAccount:
    name: str
    sandbox: SandboxBroker
    live: LiveBroker | None = None
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
        """Live data when the account has a live broker: always in live mode (an expired
        login then says so), in analyze mode only while logged in (else simulated data, so
        paper trading never needs a login)."""
        if self.live is not None and (not self.analyze or self.live.logged_in):
            return self.live
        return self.sandbox

    @property
    def order_master(self) -> MasterContract:
        """The master of the broker that takes this account's orders."""
        if self.analyze or self.live is None:
            return self.sandbox.master
        return self.live.master or self.sandbox.master

    @property
    def data_master(self) -> MasterContract:
        """The master of the broker that serves this account's market data."""
        if self.data_broker is self.live and self.live is not None:
            return self.live.master or self.sandbox.master
        return self.sandbox.master
