"""Shared fixtures.

PostgreSQL: the state and journal tests run against SQLite and a real PostgreSQL server. The
server is `OPENALGO_LAB_TEST_PG_URL` when set (a URL whose user may CREATE DATABASE);
otherwise a throwaway cluster is started once per test session (once per xdist worker),
installing Debian's `postgresql` first when we are root on a machine that lacks it. Where no
server can be had, those tests skip with the reason, shown by `pytest -ra`. Deselect them
with `-m "not postgresql"`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.live_server import LiveServer, running_server
from tests.system_packages import Unavailable, apt_install, run_checked

PG_URL_ENV = "OPENALGO_LAB_TEST_PG_URL"
APT_TIMEOUT = 180  # seconds; a cold `apt-get install postgresql` takes one to two minutes
START_TIMEOUT = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgresql: runs against a real PostgreSQL server (started once per session); "
        "deselect with -m 'not postgresql'",
    )


class PostgresUnavailable(Unavailable):
    """Why no PostgreSQL server could be had; becomes the skip reason."""


@dataclass
class PostgresServer:
    """A server the tests may create and drop databases on."""

    admin_url: str
    _admin: Engine | None = field(default=None, repr=False)

    def _engine(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def create_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"oal_test_{uuid.uuid4().hex[:16]}"
        with self._engine().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(self.admin_url).set(database=name)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        with self._engine().connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self._admin is not None:
            self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    given = os.environ.get(PG_URL_ENV)
    if given:
        server = PostgresServer(given)
        try:
            with server._engine().connect():
                pass
        except Exception as err:
            why = " ".join(str(getattr(err, "orig", None) or err).split())
            pytest.skip(f"PostgreSQL unavailable: cannot connect to ${PG_URL_ENV}: {why}")
        yield server
        server.close()
        return
    try:
        cluster = ThrowawayCluster.start()
    except PostgresUnavailable as why:
        pytest.skip(f"PostgreSQL unavailable: {why}; set ${PG_URL_ENV} to use a running server")
    server = PostgresServer(cluster.url)
    try:
        yield server
    finally:
        server.close()
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state database: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, listening on a free localhost port."""

    root: Path
    bindir: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> ThrowawayCluster:
        bindir = find_pg_bindir() or install_postgresql()
        run_as = _unprivileged_prefix()
        # Short path: the server's unix socket lives here and socket paths are limited.
        root = Path(tempfile.mkdtemp(prefix="oal-pg-"))
        if run_as:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(root, bindir, _free_port(), run_as)
        try:
            cluster._initdb()
            cluster._pg_ctl_start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _initdb(self) -> None:
        command = [str(self.bindir / "initdb"), "-D", str(self.root / "data"), "-U", "postgres"]
        command += ["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        _run(self.run_as + command, "initdb", timeout=START_TIMEOUT)

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data")]
        command += ["-l", str(self.root / "server.log"), "-w", "-t", str(START_TIMEOUT)]
        command += ["-o", options, "start"]
        try:
            _run(self.run_as + command, "pg_ctl start", timeout=START_TIMEOUT + 10)
        except PostgresUnavailable as err:
            raise PostgresUnavailable(f"{err}; server log: {self._log_tail()}") from None

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = (self.root / "server.log").read_text(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:])
        return "(none)"

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            command = [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data")]
            with contextlib.suppress(Exception):
                subprocess.run(
                    [*self.run_as, *command, "-m", "immediate", "stop"],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
        shutil.rmtree(self.root, ignore_errors=True)


def find_pg_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's newest version."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in versions:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def install_postgresql() -> Path:
    """Install Debian's `postgresql` (see `system_packages`)."""
    return apt_install("postgresql", find_pg_bindir, error=PostgresUnavailable, timeout=APT_TIMEOUT)


def _unprivileged_prefix() -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` system user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'postgres' user") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and there is no runuser to drop privileges")
    return [runuser, "-u", "postgres", "--"]


def _run(
    command: list[str], what: str, *, timeout: float, env: dict[str, str] | None = None
) -> None:
    run_checked(command, what, timeout=timeout, env=env, error=PostgresUnavailable)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `jupyter server` with the extension and a trading API key (tests/live_server.py)."""
    with running_server(tmp_path_factory.mktemp("live-server")) as server:
        yield server
