"""The extension's start-up configuration check: each mistake named, all at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from openalgo_lab.engine.settings import EngineSettings, SettingsError
from openalgo_lab.server_ext.app import OpenAlgoLabApp
from openalgo_lab.server_ext.config_check import ExtensionConfig, configuration_problems
from tests.test_server_ext import Fetch, jp_server_config  # noqa: F401

pytest_plugins = ["pytest_jupyter.jupyter_server"]

GOOD = ExtensionConfig(cors_origins=(), max_body_bytes=1 << 20, key_cache_ttl=30, key_cache_size=8)


def test_a_good_configuration_has_no_problems(tmp_path: Path) -> None:
    assert configuration_problems(EngineSettings(data_dir=tmp_path / "new" / "dir"), GOOD) == []


def test_every_problem_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENALGO_LAB_ORDER_RATE_LIMIT", "ten a second")
    monkeypatch.setenv("OPENALGO_LAB_WEBHOOK_RATE_LIMIT", "lots")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    settings = EngineSettings(data_dir=a_file / "data", database_url="nosuchdb+x://h/db")
    config = ExtensionConfig(
        cors_origins=("https://ok.example", "example.com", "*", "http://x/path"),
        max_body_bytes=10,
        key_cache_ttl=-1,
        key_cache_size=0,
    )
    problems = configuration_problems(settings, config)
    text = "\n".join(problems)
    assert len(problems) == 9, text
    assert "is not a folder" in text
    assert "driver that is not installed" in text
    assert "OPENALGO_LAB_ORDER_RATE_LIMIT: rate limit 'ten a second'" in text
    assert "OPENALGO_LAB_WEBHOOK_RATE_LIMIT" in text
    assert "'example.com' is not an origin" in text and "'http://x/path'" in text
    assert "max_body_bytes=10" in text and "key_cache_ttl=-1" in text
    assert "key_cache_size=0" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_data_dir(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        (problem,) = configuration_problems(EngineSettings(data_dir=tmp_path / "d"), GOOD)
    finally:
        tmp_path.chmod(0o700)
    assert "not writable" in problem


def test_malformed_url_and_settings_error() -> None:
    (problem,) = configuration_problems(EngineSettings(database_url="::nonsense::"), GOOD)
    assert "not a SQLAlchemy URL" in problem
    err = SettingsError("OPENALGO_LAB_SEED='x' is not a whole number")
    assert configuration_problems(err, GOOD) == [str(err)]


async def test_server_answers_503_naming_the_problems(
    jp_serverapp: Any, jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENALGO_LAB_API_RATE_LIMIT", "whenever")
    monkeypatch.setenv("OPENALGO_LAB_SEED", "abc")
    app: OpenAlgoLabApp = jp_serverapp.web_app.settings["openalgo_lab"]
    await jp_serverapp.extension_manager.start_all_extensions()
    assert app.services is None
    r = await jp_fetch("openalgo", "api", "v1", "ping", method="POST", body="{}", raise_error=False)
    assert r.code == 503
    message = json.loads(r.body)["message"]
    assert "configuration is wrong" in message
    assert "OPENALGO_LAB_API_RATE_LIMIT" in message and "OPENALGO_LAB_SEED" in message
    assert not (tmp_path / "lab-data" / "engine.lock").exists()  # no engine was started


def test_installed_driver_passes_missing_dbapi_is_named() -> None:
    ok = EngineSettings(database_url="postgresql+psycopg://u@localhost/db")
    assert configuration_problems(ok, GOOD) == []
    (problem,) = configuration_problems(EngineSettings(database_url="mysql+mysqldb://u@h/db"), GOOD)
    assert "cannot be imported" in problem
