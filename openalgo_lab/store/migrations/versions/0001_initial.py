"""Initial state schema: accounts, API keys, broker credentials, strategies, settings, journal.

Written out by hand rather than imported from the models, so this revision creates the same
tables forever even as the models move on; `test_state` checks that models and migrations
agree.

Revision ID: 0001
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("analyze", sa.Boolean(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("revoked_at", INSTANT, nullable=True),
        sa.Column("last_used_at", INSTANT, nullable=True),
        sa.CheckConstraint("scope IN ('read', 'trading')", name="ck_api_keys_scope"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_api_keys_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "broker_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=True),
        sa.Column("api_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("access_token_encrypted", sa.Text(), nullable=True),
        sa.Column("feed_token_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", INSTANT, nullable=True),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_broker_credentials_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_broker_credentials"),
        sa.UniqueConstraint("account_id", "broker", name="uq_broker_credentials_account_id_broker"),
    )
    op.create_table(
        "strategies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("webhook_token", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("intraday", sa.Boolean(), nullable=False),
        sa.Column("settings", JSON_DOC, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.CheckConstraint("mode IN ('LONG', 'SHORT', 'BOTH')", name="ck_strategies_mode"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_strategies_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_strategies"),
        sa.UniqueConstraint("account_id", "name", name="uq_strategies_account_id_name"),
        sa.UniqueConstraint("webhook_token", name="uq_strategies_webhook_token"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", JSON_DOC, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("request", JSON_DOC, nullable=False),
        sa.Column("response", JSON_DOC, nullable=True),
        sa.Column("orderid", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal_entries"),
        sa.UniqueConstraint(
            "account", "idempotency_key", name="uq_journal_entries_account_idempotency_key"
        ),
    )
    in_flight = sa.text("status = 'accepted'")
    op.create_index(
        "ix_journal_entries_status",
        "journal_entries",
        ["status"],
        sqlite_where=in_flight,
        postgresql_where=in_flight,
    )
    has_orderid = sa.text("orderid IS NOT NULL")
    op.create_index(
        "ix_journal_entries_orderid",
        "journal_entries",
        ["orderid"],
        sqlite_where=has_orderid,
        postgresql_where=has_orderid,
    )
    op.create_table(
        "journal_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name="fk_journal_transitions_entry_id_journal_entries",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_journal_transitions"),
    )
    op.create_index("ix_journal_transitions_entry_id", "journal_transitions", ["entry_id"])


def downgrade() -> None:
    op.drop_table("journal_transitions")
    op.drop_table("journal_entries")
    op.drop_table("settings")
    op.drop_table("strategies")
    op.drop_table("broker_credentials")
    op.drop_table("api_keys")
    op.drop_table("accounts")
