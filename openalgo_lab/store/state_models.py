"""Tables of the state database: who may trade, with which broker login, and what was asked.

The state database holds the small, precious, transactional facts (accounts, API keys,
encrypted broker logins, strategies, settings and the order journal). Order books, trades and
candles live in DuckDB history instead, because they are large, append-mostly and analytical.

These models describe the *current* schema for the ORM. The schema itself is created only by
the Alembic migrations under `migrations/`, and a test checks that the two agree, so a model
change without a migration fails CI instead of failing on a user's machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names make migrations reproducible on every backend (SQLite has no
# ALTER CONSTRAINT, so batch migrations need to find constraints by name).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

API_KEY_SCOPES = ("read", "trading")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Instants stored as UTC and always read back timezone-aware.

    SQLite keeps no time zone and would hand back naive datetimes while PostgreSQL hands back
    aware ones; one behaviour on both backends keeps "store UTC, show IST" a one-liner.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store instants with a time zone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL so settings and journal payloads can be indexed and queried there.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDoc,
    }


class Account(Base):
    """A trading account: its own sandbox, its own broker login, its own analyze switch."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    broker: Mapped[str] = mapped_column(String(32), default="sandbox")
    analyze: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )
    credentials: Mapped[list[BrokerCredential]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )
    strategies: Mapped[list[Strategy]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


class ApiKey(Base):
    """An OpenAlgo API key, kept only as a peppered bcrypt hash.

    `key_id` is a public prefix of the key, so verifying a request costs one bcrypt check
    against one row instead of OpenAlgo's check against every stored hash. Keys are scoped
    (`read` keys cannot place orders) and revoked rather than deleted, for the audit trail.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("scope IN ('read', 'trading')", name="scope"),
        Index(None, "account_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(16), default="trading")
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    account: Mapped[Account] = relationship(back_populates="api_keys")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class BrokerCredential(Base):
    """A broker login for one account; every secret column holds SecretBox ciphertext.

    `api_key` (the broker app's public id) is encrypted too: brokers treat the pair as one
    credential, and a database dump should reveal nothing a login needs.
    """

    __tablename__ = "broker_credentials"
    __table_args__ = (UniqueConstraint("account_id", "broker"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    broker: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    api_secret_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    feed_token_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(back_populates="credentials")


class Strategy(Base):
    """A named strategy whose webhook alerts trade one account (OpenAlgo's `strategies`).

    `webhook_token` is the bearer secret in the webhook URL; it is kept in clear because the
    user must be able to copy the URL again, and it can only place this strategy's orders.
    """

    __tablename__ = "strategies"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint("mode IN ('LONG', 'SHORT', 'BOTH')", name="mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32), default="tradingview")
    mode: Mapped[str] = mapped_column(String(8), default="BOTH")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    intraday: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="strategies")


class Setting(Base):
    """Engine-wide settings as JSON values (the install salt, UI preferences, risk limits)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONDoc)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


IN_FLIGHT = text("status = 'accepted'")
HAS_ORDERID = text("orderid IS NOT NULL")


class JournalEntry(Base):
    """One order request, written before any broker call (see `state_journal.Journal`).

    `account` is the account's name rather than a foreign key: the journal must accept an
    entry for any account the engine serves, and the insert is on the order path.
    """

    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint("account", "idempotency_key"),
        # Partial indexes: only in-flight entries and entries with an order id are indexed,
        # which keeps the startup scan small and saves a page write on every journal commit.
        Index(None, "status", sqlite_where=IN_FLIGHT, postgresql_where=IN_FLIGHT),
        Index(None, "orderid", sqlite_where=HAS_ORDERID, postgresql_where=HAS_ORDERID),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column()
    response: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    orderid: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    transitions: Mapped[list[JournalTransition]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="JournalTransition.id"
    )


class JournalTransition(Base):
    """Every status an entry passed through, in order, with when and why."""

    __tablename__ = "journal_transitions"
    __table_args__ = (Index(None, "entry_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    entry: Mapped[JournalEntry] = relationship(back_populates="transitions")
