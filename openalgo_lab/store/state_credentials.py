"""Broker logins and account modes in the state database.

An account trades through a broker (`accounts.broker`, "sandbox" unless configured) with a
login kept in `broker_credentials`: the app's api_key and api_secret, and after each daily
login the access token with its expiry. Every secret column holds `SecretBox` ciphertext, so
a copy of the database alone reveals no credential. Non-secret adapter options (a Kite base
URL for a test server, polling intervals) live in the settings table under
`broker.options.<account>`, and the account's analyze switch in `accounts.analyze`.

These functions are synchronous and short; the engine calls them off the order path, and the
CLI and notebooks call them directly, also while a server runs (SQLite WAL and PostgreSQL both
allow it): a running engine picks up a new login the next time it needs one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_crypto import SecretBox
from openalgo_lab.store.state_models import Account, BrokerCredential, Setting

SANDBOX = "sandbox"
OPTIONS_KEY = "broker.options.{}"
MAX_ACCOUNT_LENGTH = 64
MAX_SECRET_LENGTH = 512


@dataclass(frozen=True)
class StoredBroker:
    """An account's broker configuration, secrets decrypted (never shown in a repr)."""

    account: str
    broker: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str | None = field(repr=False, default=None)
    user_id: str = ""
    expires_at: datetime | None = None
    options: dict[str, str] = field(default_factory=dict)

    def login_valid(self, now: datetime) -> bool:
        return bool(self.access_token) and self.expires_at is not None and now < self.expires_at

    def fingerprint(self) -> str:
        """A digest of what an adapter is built from (broker, app credentials, options; not
        the login, which adapters reload themselves): equal digests, the same adapter."""
        parts = [self.broker, self.api_key, self.api_secret, *sorted(self.options.items())]
        return hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccountMode:
    name: str
    broker: str
    analyze: bool


def _checked(name: str, value: str, *, limit: int = MAX_SECRET_LENGTH) -> str:
    value = value.strip()
    if not value:
        raise ValidationError(name, "is required")
    if len(value) > limit or any(ch.isspace() for ch in value):
        raise ValidationError(name, f"must be 1 to {limit} characters without spaces")
    return value


def _account(session: Session, name: str, *, create: bool) -> Account | None:
    found = session.scalars(select(Account).where(Account.name == name)).first()
    if found is None and create:
        found = Account(name=_checked("account", name, limit=MAX_ACCOUNT_LENGTH))
        session.add(found)
        session.flush()
    return found


def _credential(session: Session, account: Account, broker: str) -> BrokerCredential | None:
    return session.scalars(
        select(BrokerCredential).where(
            BrokerCredential.account_id == account.id, BrokerCredential.broker == broker
        )
    ).first()


def configure_broker(
    state: StateStore,
    box: SecretBox,
    account: str,
    broker: str,
    *,
    api_key: str,
    api_secret: str,
    options: Mapping[str, str] | None = None,
) -> None:
    """Point `account` at `broker` with the app's key and secret (encrypted). A different
    api_key drops the stored login, which belonged to the other app."""
    broker = _checked("broker", broker, limit=32).lower()
    if broker == SANDBOX:
        raise ValidationError("broker", "the sandbox needs no credentials; use a live broker")
    api_key = _checked("api_key", api_key)
    api_secret = _checked("api_secret", api_secret)
    with state.session() as session:
        row = _account(session, account, create=True)
        assert row is not None
        row.broker = broker
        cred = _credential(session, row, broker)
        if cred is None:
            cred = BrokerCredential(account_id=row.id, broker=broker)
            session.add(cred)
        elif cred.api_key_encrypted and box.decrypt(cred.api_key_encrypted) != api_key:
            cred.access_token_encrypted = None
            cred.expires_at = None
            cred.user_id = ""
        cred.api_key_encrypted = box.encrypt(api_key)
        cred.api_secret_encrypted = box.encrypt(api_secret)
        session.merge(Setting(key=OPTIONS_KEY.format(account), value=dict(options or {})))


def store_login(
    state: StateStore,
    box: SecretBox,
    account: str,
    *,
    access_token: str,
    user_id: str,
    expires_at: datetime,
) -> None:
    """Keep the day's login (encrypted) for the account's configured broker."""
    with state.session() as session:
        row = _account(session, account, create=False)
        cred = _credential(session, row, row.broker) if row is not None else None
        if row is None or cred is None:
            raise NotFoundError(f"Account {account!r} has no broker configured")
        cred.access_token_encrypted = box.encrypt(_checked("access_token", access_token))
        cred.user_id = user_id[:64]
        cred.expires_at = expires_at


def load_broker(state: StateStore, box: SecretBox, account: str) -> StoredBroker | None:
    """The account's live broker configuration, or None for a sandbox-only account."""
    with state.session() as session:
        row = _account(session, account, create=False)
        if row is None or row.broker == SANDBOX:
            return None
        cred = _credential(session, row, row.broker)
        if cred is None or not cred.api_key_encrypted or not cred.api_secret_encrypted:
            return None
        options = session.get(Setting, OPTIONS_KEY.format(account))
        return StoredBroker(
            account=account,
            broker=row.broker,
            api_key=box.decrypt(cred.api_key_encrypted),
            api_secret=box.decrypt(cred.api_secret_encrypted),
            access_token=box.decrypt_optional(cred.access_token_encrypted),
            user_id=cred.user_id,
            expires_at=cred.expires_at,
            options={str(k): str(v) for k, v in dict(options.value if options else {}).items()},
        )


def remove_broker(state: StateStore, account: str) -> None:
    """Back to the sandbox only: the login and keys of the account's broker are deleted."""
    with state.session() as session:
        row = _account(session, account, create=False)
        if row is None:
            raise NotFoundError(f"Account {account!r} not found")
        for cred in list(row.credentials):
            session.delete(cred)
        row.broker = SANDBOX
        row.analyze = True
        options = session.get(Setting, OPTIONS_KEY.format(account))
        if options is not None:
            session.delete(options)


def set_analyze(state: StateStore, account: str, analyze: bool) -> None:
    with state.session() as session:
        row = _account(session, account, create=True)
        assert row is not None
        row.analyze = analyze


def account_modes(state: StateStore) -> list[AccountMode]:
    """Every account the state database knows, with its broker and analyze switch."""
    with state.session() as session:
        rows = session.scalars(select(Account).order_by(Account.id)).all()
        return [AccountMode(r.name, r.broker, r.analyze) for r in rows]
