"""Alembic environment for the state database, driven by `StateStore.migrate()`.

The store hands over an open connection inside its own transaction (so PostgreSQL's
migration lock covers the upgrade); without one, the URL in the config is used, which is
what `alembic.command` calls made by developers with `alembic_config(url)` need.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from openalgo_lab.store.state_models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=Base.metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use alembic_config(url)")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()


main()
