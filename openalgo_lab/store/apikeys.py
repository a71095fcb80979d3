"""API keys: create (the plain key is shown once), list, revoke, and look one up to verify.

These functions are synchronous and talk to the state database only; the REST layer runs
them off the event loop, the CLI calls them directly. A key is stored as a peppered bcrypt
hash under its public `key_id` prefix (see `state_crypto`), so neither the database nor the
listing can give the key back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from openalgo_lab.domain.errors import NotFoundError, ValidationError
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_crypto import BCRYPT_ROUNDS, api_key_id, hash_api_key, new_api_key
from openalgo_lab.store.state_models import API_KEY_SCOPES, Account, ApiKey, utcnow

MAX_LABEL_LENGTH = 128
MAX_ACCOUNT_LENGTH = 64


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key: everything but the key and its hash."""

    key_id: str
    account: str
    scope: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        def stamp(at: datetime | None) -> str | None:
            return at.isoformat() if at is not None else None

        return {
            "key_id": self.key_id,
            "account": self.account,
            "scope": self.scope,
            "label": self.label,
            "active": self.active,
            "created_at": stamp(self.created_at),
            "revoked_at": stamp(self.revoked_at),
            "last_used_at": stamp(self.last_used_at),
        }


@dataclass(frozen=True, slots=True)
class StoredKey:
    """The row a verification needs: the hash to check and who the key speaks for."""

    key_id: str
    key_hash: str
    account: str
    scope: str
    revoked: bool


def create_key(
    state: StateStore,
    account: str = "default",
    scope: str = "trading",
    label: str = "",
    *,
    pepper: bytes,
    rounds: int = BCRYPT_ROUNDS,
) -> str:
    """Store a new key for `account` (created in the state database if new) and return the
    plain key: the only time it exists outside the caller's hands."""
    account = _checked_account(account)
    if scope not in API_KEY_SCOPES:
        raise ValidationError("scope", f"must be one of {', '.join(API_KEY_SCOPES)}, got {scope!r}")
    if len(label) > MAX_LABEL_LENGTH:
        raise ValidationError("label", f"must be at most {MAX_LABEL_LENGTH} characters")
    key, key_id = new_api_key()
    key_hash = hash_api_key(key, pepper, rounds=rounds)
    with state.session() as session:
        row = session.scalar(select(Account).where(Account.name == account))
        if row is None:
            row = Account(name=account)
            session.add(row)
            session.flush()
        session.add(
            ApiKey(key_id=key_id, key_hash=key_hash, account_id=row.id, scope=scope, label=label)
        )
    return key


def list_keys(state: StateStore, account: str | None = None) -> list[KeyInfo]:
    """Every key (revoked ones too, for the audit trail), oldest first."""
    query = select(ApiKey, Account.name).join(Account).order_by(ApiKey.created_at, ApiKey.id)
    if account is not None:
        query = query.where(Account.name == account)
    with state.session() as session:
        return [
            KeyInfo(
                key_id=key.key_id,
                account=name,
                scope=key.scope,
                label=key.label,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                last_used_at=key.last_used_at,
            )
            for key, name in session.execute(query).all()
        ]


def revoke_key(state: StateStore, key_id: str) -> KeyInfo:
    """Mark a key revoked (kept, not deleted, so the journal can still name it). Revoking a
    revoked key is a no-op that keeps the first revocation time."""
    with state.session() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if key is None:
            raise NotFoundError(f"API key {key_id!r} not found")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        return KeyInfo(
            key_id=key.key_id,
            account=key.account.name,
            scope=key.scope,
            label=key.label,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


def find_key(state: StateStore, key: str) -> StoredKey | None:
    """The stored row for a presented key, found by its public prefix (not yet verified)."""
    query = (
        select(ApiKey.key_id, ApiKey.key_hash, Account.name, ApiKey.scope, ApiKey.revoked_at)
        .join(Account)
        .where(ApiKey.key_id == api_key_id(key))
    )
    with state.session() as session:
        row = session.execute(query).first()
    if row is None:
        return None
    key_id, key_hash, account, scope, revoked_at = row
    return StoredKey(key_id, key_hash, account, scope, revoked_at is not None)


def mark_used(state: StateStore, key_id: str) -> None:
    """Record a successful verification (once per cache fill, not per request)."""
    with state.session() as session:
        session.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(last_used_at=utcnow()))


def _checked_account(account: str) -> str:
    name = account.strip()
    if not name:
        raise ValidationError("account", "is required")
    if len(name) > MAX_ACCOUNT_LENGTH:
        raise ValidationError("account", f"must be at most {MAX_ACCOUNT_LENGTH} characters")
    return name
