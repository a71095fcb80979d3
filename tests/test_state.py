"""State database: migrations on SQLite and PostgreSQL, models, secrets at rest."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from openalgo_lab.store.state import (
    Account,
    ApiKey,
    Base,
    BrokerCredential,
    SecretBox,
    SecretError,
    Setting,
    StateStore,
    Strategy,
    alembic_config,
    load_or_create_pepper,
)
from openalgo_lab.store.state_crypto import (
    PEPPER_ENV,
    PEPPER_FILE,
    api_key_id,
    hash_api_key,
    new_api_key,
    verify_api_key,
)

TABLES = {
    "accounts",
    "api_keys",
    "broker_credentials",
    "strategies",
    "settings",
    "journal_entries",
    "journal_transitions",
    "alembic_version",
}
PEPPER = b"p" * 64


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    store = StateStore(state_url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _no_env_pepper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PEPPER_ENV, raising=False)


def test_migrations_create_every_table_and_match_the_models(state_url: str) -> None:
    store = StateStore(state_url)
    try:
        store.migrate()
        assert set(inspect(store.engine).get_table_names()) == TABLES
        assert store.schema_revision() == "0001"
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        # The developers' path: Alembic commands on a URL, no ini file, no open connection.
        command.check(alembic_config(state_url))
    finally:
        store.close()


def test_migrate_is_idempotent_and_keeps_data(state_url: str) -> None:
    with StateStore(state_url) as store:
        store.migrate()
        store.set_setting("ui.theme", "dark")
    with StateStore(state_url) as again:
        again.migrate()
        again.migrate()
        assert again.schema_revision() == "0001"
        assert again.get_setting("ui.theme") == "dark"


def test_a_failed_migration_leaves_nothing_behind(state_url: str) -> None:
    with StateStore(state_url) as store:
        with store.engine.begin() as connection:  # a clash with the last table created
            connection.execute(text("CREATE TABLE journal_transitions (x INTEGER)"))
        with pytest.raises(Exception, match="journal_transitions"):
            store.migrate()
        assert inspect(store.engine).get_table_names() == ["journal_transitions"]
        assert store.schema_revision() is None


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.db"
    with StateStore(f"sqlite:///{path}") as store:
        store.migrate()
        assert path.exists()
        with store.engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


def test_in_memory_sqlite_is_accepted() -> None:
    with StateStore("sqlite://") as store:
        store.migrate()
        store.set_setting("a", [1, 2])
        assert store.get_setting("a") == [1, 2]


def test_models_round_trip(store: StateStore) -> None:
    box = SecretBox(PEPPER, store.install_salt())
    key, key_id = new_api_key()
    expires = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    with store.session() as session:
        account = Account(name="alice", broker="zerodha", analyze=False)
        account.api_keys.append(
            ApiKey(key_id=key_id, key_hash=hash_api_key(key, PEPPER, rounds=4), scope="read")
        )
        account.credentials.append(
            BrokerCredential(
                broker="zerodha",
                user_id="AB1234",
                api_secret_encrypted=box.encrypt("app-secret"),
                access_token_encrypted=box.encrypt("access-token"),
                expires_at=expires,
            )
        )
        account.strategies.append(
            Strategy(
                name="nifty-momentum",
                webhook_token="tok-123",
                mode="LONG",
                settings={"start": "09:20", "squareoff": "15:15", "symbols": ["NIFTY"]},
            )
        )
        session.add(account)
        session.add(Setting(key="risk.max_order_value", value={"rupees": "50000000"}))

    with store.session() as session:
        account = session.scalars(select(Account).where(Account.name == "alice")).one()
        assert (account.broker, account.analyze) == ("zerodha", False)
        assert account.created_at.tzinfo is not None
        (api_key,) = account.api_keys
        assert api_key.scope == "read" and api_key.active
        assert verify_api_key(key, api_key.key_hash, PEPPER)
        (credential,) = account.credentials
        assert credential.expires_at == expires
        assert box.decrypt_optional(credential.access_token_encrypted) == "access-token"
        assert box.decrypt_optional(credential.api_secret_encrypted) == "app-secret"
        assert credential.api_key_encrypted is None
        (strategy,) = account.strategies
        assert strategy.settings["symbols"] == ["NIFTY"]
        assert strategy.active and strategy.intraday
        api_key.revoked_at = datetime.now(UTC)
        api_key.last_used_at = datetime.now(UTC) - timedelta(minutes=1)
    assert store.get_setting("risk.max_order_value") == {"rupees": "50000000"}

    with store.session() as session:
        revoked = session.scalars(select(ApiKey)).one()
        assert not revoked.active
        session.delete(session.scalars(select(Account)).one())
    with store.session() as session:  # cascades, enforced by the database on SQLite too
        for model in (ApiKey, BrokerCredential, Strategy):
            assert session.scalars(select(model)).all() == []


def test_foreign_keys_are_enforced(store: StateStore) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Strategy(name="orphan", account_id=999, webhook_token="t"))


def test_constraints_reject_bad_rows(store: StateStore) -> None:
    with store.session() as session:
        session.add(Account(name="bob"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Account(name="bob"))
    with store.session() as session:
        bob = session.scalars(select(Account)).one()
        bob_id = bob.id
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(ApiKey(key_id="k1", key_hash="h", account_id=bob_id, scope="admin"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Strategy(name="s", account_id=bob_id, webhook_token="w", mode="SIDEWAYS"))


def test_naive_datetimes_are_refused(store: StateStore) -> None:
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(Account(name="naive", created_at=datetime(2026, 1, 1)))


def test_settings_overwrite(store: StateStore) -> None:
    assert store.get_setting("missing", "fallback") == "fallback"
    store.set_setting("k", {"v": 1})
    store.set_setting("k", {"v": 2})
    assert store.get_setting("k") == {"v": 2}
    with store.engine.connect() as connection:
        assert (
            connection.execute(text("SELECT COUNT(*) FROM settings WHERE key = 'k'")).scalar() == 1
        )


def test_install_salt_is_created_once_and_shared(state_url: str) -> None:
    with StateStore(state_url) as first:
        first.migrate()
        salts: list[str] = []
        threads = [
            threading.Thread(target=lambda: salts.append(first.install_salt())) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with StateStore(state_url) as second:
        salts.append(second.install_salt())
    assert len(set(salts)) == 1 and len(salts[0]) == 32


def test_secret_box_round_trip_and_wrong_keys() -> None:
    box = SecretBox(PEPPER, "salt-one")
    token = box.encrypt("enctoken ÄBC/123==")
    assert token != "enctoken ÄBC/123==" and "enctoken" not in token
    assert box.decrypt(token) == "enctoken ÄBC/123=="
    assert SecretBox(PEPPER, b"salt-one").decrypt(token) == "enctoken ÄBC/123=="
    assert box.encrypt("x") != box.encrypt("x")  # random IV: equal secrets look different
    for wrong in (SecretBox(b"q" * 64, "salt-one"), SecretBox(PEPPER, "salt-two")):
        with pytest.raises(SecretError, match="pepper"):
            wrong.decrypt(token)
    with pytest.raises(SecretError):
        box.decrypt(token[:-4] + "AAAA")
    with pytest.raises(SecretError):
        box.decrypt("not a token")


def test_store_secret_box_uses_data_dir_pepper_and_db_salt(
    store: StateStore, tmp_path: Path
) -> None:
    token = store.secret_box(tmp_path).encrypt("access")
    assert store.secret_box(tmp_path).decrypt(token) == "access"
    with pytest.raises(SecretError):
        store.secret_box(tmp_path / "other").decrypt(token)


def test_pepper_file_is_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pepper = load_or_create_pepper(data_dir)
    path = data_dir / PEPPER_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(pepper) == 64
    assert load_or_create_pepper(data_dir) == pepper
    assert [p.name for p in data_dir.iterdir()] == [PEPPER_FILE]  # no temporary left behind


def test_pepper_creation_race_yields_one_pepper(tmp_path: Path) -> None:
    peppers: list[bytes] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        peppers.append(load_or_create_pepper(tmp_path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(peppers) == 8 and len(set(peppers)) == 1


def test_loose_pepper_permissions_are_tightened(tmp_path: Path) -> None:
    pepper = load_or_create_pepper(tmp_path)
    (tmp_path / PEPPER_FILE).chmod(0o644)
    assert load_or_create_pepper(tmp_path) == pepper
    assert stat.S_IMODE((tmp_path / PEPPER_FILE).stat().st_mode) == 0o600


def test_pepper_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PEPPER_ENV, "e" * 40)
    assert load_or_create_pepper(tmp_path) == b"e" * 40
    assert not (tmp_path / PEPPER_FILE).exists()
    monkeypatch.setenv(PEPPER_ENV, "short")
    with pytest.raises(SecretError, match="shorter than 32"):
        load_or_create_pepper(tmp_path)


def test_api_key_hashing_needs_key_and_pepper() -> None:
    key, key_id = new_api_key()
    assert len(key) == 64 and key_id == api_key_id(key) and key.startswith(key_id)
    hashed = hash_api_key(key, PEPPER, rounds=4)
    assert key not in hashed
    assert verify_api_key(key, hashed, PEPPER)
    assert not verify_api_key(key[:-1] + ("0" if key[-1] != "0" else "1"), hashed, PEPPER)
    assert not verify_api_key(key, hashed, b"x" * 64)
    assert not verify_api_key(key, "not-a-bcrypt-hash", PEPPER)
    # bcrypt alone would ignore everything past 72 bytes; the HMAC pre-hash must not.
    long_pepper = b"a" * 100
    assert not verify_api_key(key, hash_api_key(key, long_pepper, rounds=4), b"a" * 99 + b"b")
