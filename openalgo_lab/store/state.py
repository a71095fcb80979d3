"""The state database: one SQLAlchemy engine, migrations, units of work, install secrets.

SQLite in the data directory is the default because a workbench should start with nothing
to install; any SQLAlchemy URL works, and PostgreSQL is the one we test for deployments that
outgrow one machine. The schema is created and upgraded only by the Alembic migrations
shipped in this package, run programmatically by `migrate()`, so no `alembic.ini` or working
directory matters at run time.

Developers add a migration with
`alembic.command.revision(alembic_config(url), "message", autogenerate=True)`
against a database at head.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openalgo_lab.store.state_crypto import (
    SecretBox,
    SecretError,
    load_or_create_pepper,
    new_salt,
)
from openalgo_lab.store.state_models import (
    Account,
    ApiKey,
    Base,
    BrokerCredential,
    JournalEntry,
    JournalTransition,
    Setting,
    Strategy,
)

log = logging.getLogger(__name__)

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "BrokerCredential",
    "JournalEntry",
    "JournalTransition",
    "SecretBox",
    "SecretError",
    "Setting",
    "StateStore",
    "Strategy",
    "alembic_config",
    "load_or_create_pepper",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SALT_SETTING = "install.salt"
SQLITE_BUSY_TIMEOUT_MS = 5_000
# Checkpoints run on a background thread every CHECKPOINT_INTERVAL seconds; the writer's own
# automatic checkpoint is pushed out to a safety limit (pages of 4 KiB) that only a stalled
# background thread lets the WAL reach.
CHECKPOINT_INTERVAL = 0.1
CHECKPOINT_RETRY = 0.002
CHECKPOINT_ATTEMPTS = 25
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
# Any constant: it only has to be the same for every process migrating one database.
_PG_MIGRATION_LOCK = 0x0A16_0001


def json_default(value: object) -> object:
    """Encode the engine's value types so a request with Decimals or enums can be journaled."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: object) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


class StateStore:
    """Owns the engine and connection pool for one state database.

    For SQLite every connection gets WAL (readers never block the writer), foreign keys
    (off by default in SQLite), a busy timeout (a second writer waits instead of failing at
    once) and `synchronous=NORMAL`. With WAL, NORMAL keeps every commit atomic and durable
    across a crash of the process, the failure the order journal guards against, and only an
    OS crash or power cut can lose the last commits; FULL would add an fsync to every commit,
    which costs more than the whole 2 ms order-path budget on ordinary disks. Pass
    `sqlite_synchronous="FULL"` where power loss matters more than latency.

    SQLite's own WAL checkpoint runs inside whichever commit crosses its limit, copying and
    fsyncing megabytes on the order path; measured, that alone put the journal's p99 near
    3 ms. So a background thread checkpoints a file database every 100 ms, and the inline
    limit is raised to a safety net. Under sustained saturation the WAL can still only be
    reset by a checkpoint that catches up with the writer, so about one order in a thousand
    then waits for that checkpoint's fsync (8 to 30 ms on the development VM); p99 is not
    affected.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", echo: bool = False) -> None:
        self.url: URL = make_url(url)
        if self.is_sqlite:
            _ensure_sqlite_parent(self.url)
        self.engine: Engine = create_engine(
            self.url,
            echo=echo,
            json_serializer=dumps,
            pool_pre_ping=not self.is_sqlite,
        )
        self._closers: list[Callable[[], None]] = []
        self._checkpointer: _Checkpointer | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous.upper())
            if _is_file_database(self.url):
                self._checkpointer = _Checkpointer(self.engine, CHECKPOINT_INTERVAL)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._salt_lock = threading.Lock()
        self._closed = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest migration; a no-op when it is already there.

        On PostgreSQL an advisory lock serialises engines on different machines that share
        one database; on SQLite the data-directory lock already guarantees one migrator.
        """
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            elif self.engine.dialect.driver == "pysqlite":
                # The driver would run each CREATE outside a transaction; an explicit BEGIN
                # makes the whole upgrade atomic and takes the write lock before reading.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def schema_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` in `close()`, before the pool goes: for connections held outside it."""
        self._closers.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._closers:
            self._closers.pop()()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings and install secrets ------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as connection:
            row = connection.execute(select(Setting.value).where(Setting.key == key)).first()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: Any) -> None:
        with self.session() as session:
            session.merge(Setting(key=key, value=value))

    def install_salt(self) -> str:
        """The per-install salt for `SecretBox`, created on first use.

        It lives in the database it protects, so every machine sharing a PostgreSQL state
        database derives the same key from the same pepper. Concurrent first uses agree: the
        loser of the insert race reads the winner's salt.
        """
        with self._salt_lock:
            existing = self.get_setting(SALT_SETTING)
            if isinstance(existing, str):
                return existing
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(Setting).values(key=SALT_SETTING, value=new_salt()))
            except IntegrityError:
                pass
            salt = self.get_setting(SALT_SETTING)
            if not isinstance(salt, str):
                raise SecretError(f"setting {SALT_SETTING!r} is not a salt string")
            return salt

    def secret_box(self, data_dir: Path) -> SecretBox:
        """The SecretBox for this install: pepper from the data directory, salt from here."""
        return SecretBox(load_or_create_pepper(data_dir), self.install_salt())


def alembic_config(url: URL | str) -> Config:
    """An Alembic configuration that needs no ini file, pointing at the shipped migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _is_file_database(url: URL) -> bool:
    database = url.database or ""
    return bool(database) and database != ":memory:" and "mode=memory" not in database


def _ensure_sqlite_parent(url: URL) -> None:
    database = url.database
    if not _is_file_database(url) or not database or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class _Checkpointer:
    """Copies the SQLite WAL into the database off the order path (see `StateStore`).

    PASSIVE checkpoints never wait for, or block, readers and writers. The thread holds only
    a weak reference to the engine, so a store dropped without `close()` does not leak it.
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self._engine = weakref.ref(engine)
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            engine = self._engine()
            if engine is None:
                return
            try:
                with engine.connect() as connection:
                    self._checkpoint(connection)
            except Exception:  # a vanished or broken database: try again next round
                log.debug("background WAL checkpoint failed", exc_info=True)
            del engine

    def _checkpoint(self, connection: Connection) -> None:
        """A PASSIVE checkpoint cannot start while the writer updates the WAL header, which
        under load is most of the time; retrying at short intervals finds a gap."""
        for _ in range(CHECKPOINT_ATTEMPTS):
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").scalar()
            if not busy or self._stopped.wait(CHECKPOINT_RETRY):
                return


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"sqlite_synchronous={synchronous!r}: use NORMAL, FULL or EXTRA")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        finally:
            cursor.close()
