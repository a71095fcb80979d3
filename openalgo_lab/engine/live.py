"""Live brokers of accounts: configured in the state database, built through the registry.

An account becomes live-capable when a broker and its app credentials are stored for it
(`configure`). The engine then builds the adapter (`build`) through the entry-point registry
and hands it two callbacks over the state database: one to keep each new login (encrypted),
one to look for a login made elsewhere (the CLI, a notebook, another process), so logging in
from a terminal reaches a running server without a restart.

Adapters are built with `from_credentials(...)` (see `ZerodhaBroker.from_credentials`) and
must satisfy `accounts.LiveBroker`. Nothing here talks to a broker; building is cheap and
never needs the network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from openalgo_lab.brokers.registry import load_broker
from openalgo_lab.domain.calendar import MarketCalendar
from openalgo_lab.domain.clock import Clock
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.engine.accounts import LiveBroker
from openalgo_lab.engine.settings import EngineSettings
from openalgo_lab.store import state_credentials as creds
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_crypto import SecretBox

log = logging.getLogger(__name__)

StoredLogin = tuple[str, str, datetime]  # access token, broker user id, expiry
BROKER_CACHE_DIR = "brokers"
FACTORY = "from_credentials"  # the classmethod an adapter builds itself with


class LiveAccounts:
    """The state database's side of live trading for one engine (or one CLI command)."""

    def __init__(
        self,
        state: StateStore,
        data_dir: Path,
        *,
        clock: Clock,
        calendar: MarketCalendar | None = None,
    ) -> None:
        self.state = state
        self.data_dir = data_dir
        self.clock = clock
        self.calendar = calendar
        self._box: SecretBox | None = None

    @classmethod
    def open(cls, settings: EngineSettings | None = None) -> LiveAccounts:
        """Open the state database of `settings` (default: the environment's) on its own,
        for notebooks and tools: it works beside a running engine. `close()` it after."""
        from openalgo_lab.domain.clock import SystemClock

        settings = settings or EngineSettings.from_env()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        state = StateStore(settings.state_url)
        state.migrate()
        return cls(state, settings.data_dir, clock=SystemClock())

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> LiveAccounts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def box(self) -> SecretBox:
        """The install's SecretBox (key derivation runs once, on first use)."""
        if self._box is None:
            self._box = self.state.secret_box(self.data_dir)
        return self._box

    def cache_dir(self, broker: str) -> Path:
        """Where a broker's daily files (its instrument dump) are kept, shared by accounts."""
        return self.data_dir / BROKER_CACHE_DIR / broker

    # -- configuration ---------------------------------------------------------------------
    def configure(
        self,
        account: str,
        broker: str,
        *,
        api_key: str,
        api_secret: str,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Store the account's broker and app credentials; checks that the broker is
        installed and accepts the options before anything is written."""
        cls = _broker_class(broker)
        check = getattr(cls, "check_options", None)
        if callable(check):
            check(dict(options or {}))
        creds.configure_broker(
            self.state,
            self.box,
            account,
            broker,
            api_key=api_key,
            api_secret=api_secret,
            options=options,
        )

    def stored(self, account: str) -> creds.StoredBroker | None:
        return creds.load_broker(self.state, self.box, account)

    def modes(self) -> list[creds.AccountMode]:
        return creds.account_modes(self.state)

    def set_analyze(self, account: str, analyze: bool) -> None:
        creds.set_analyze(self.state, account, analyze)

    # -- logins ----------------------------------------------------------------------------
    def save_login(self, account: str, access_token: str, user_id: str, expires: datetime) -> None:
        creds.store_login(
            self.state,
            self.box,
            account,
            access_token=access_token,
            user_id=user_id,
            expires_at=expires,
        )

    def stored_login(self, account: str) -> StoredLogin | None:
        """The account's stored login if it is still valid now."""
        found = self.stored(account)
        if found is None or not found.login_valid(self.clock.now()):
            return None
        assert found.access_token is not None and found.expires_at is not None
        return found.access_token, found.user_id, found.expires_at

    # -- adapters --------------------------------------------------------------------------
    def build(self, account: str) -> LiveBroker | None:
        """The account's live adapter, or None when it has no broker configured."""
        stored = self.stored(account)
        return None if stored is None else self.adapter(stored)

    def adapter(self, stored: creds.StoredBroker) -> LiveBroker:
        """The adapter for a configuration already read from the state database."""
        account = stored.account
        factory = getattr(_broker_class(stored.broker), FACTORY)

        def save(access_token: str, user_id: str, expires: datetime) -> None:
            self.save_login(account, access_token, user_id, expires)

        def reload() -> StoredLogin | None:
            return self.stored_login(account)

        broker = factory(
            account=account,
            api_key=stored.api_key,
            api_secret=stored.api_secret,
            options=stored.options,
            cache_dir=self.cache_dir(stored.broker),
            clock=self.clock,
            calendar=self.calendar,
            save_login=save,
            stored_login=reload,
        )
        if not isinstance(broker, LiveBroker):
            raise TypeError(f"broker {stored.broker!r} built {broker!r}, not a live broker")
        return broker


def _broker_class(broker: str) -> type:
    """The installed adapter class; it must build itself from stored credentials."""
    cls = load_broker(broker)
    if not callable(getattr(cls, FACTORY, None)):
        raise ValidationError("broker", f"{broker!r} cannot be configured with credentials")
    return cls
