"""The extension's start-up check: every configuration mistake, said precisely, at once.

A wrong value found later (the first webhook meets a bad rate limit, the first write meets a
read-only data directory) fails one request with a puzzling message; found at start, it is one
log line per mistake and a 503 on every route that names them all, so the fix is one restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from openalgo_lab.engine.settings import EngineSettings, SettingsError
from openalgo_lab.server_ext.ratelimit import LIMIT_ENV, parse_limit
from openalgo_lab.server_ext.webhooks import WEBHOOK_LIMIT_ENV


@dataclass(frozen=True, slots=True)
class ExtensionConfig:
    """The trait values the check needs (the app's, or a test's)."""

    cors_origins: tuple[str, ...]
    max_body_bytes: int
    key_cache_ttl: float
    key_cache_size: int


def configuration_problems(
    settings: EngineSettings | SettingsError, config: ExtensionConfig
) -> list[str]:
    """Every problem found, each naming the setting, its value and what is wrong."""
    if isinstance(settings, SettingsError):
        problems = [str(settings)]
    else:
        problems = [*data_dir_problems(settings.data_dir), *database_problems(settings)]
    problems += rate_limit_env_problems()
    problems += cors_problems(config.cors_origins)
    if config.max_body_bytes < 1024:
        problems.append(f"max_body_bytes={config.max_body_bytes} must be at least 1024")
    if config.key_cache_ttl < 0:
        problems.append(f"key_cache_ttl={config.key_cache_ttl} must not be negative")
    if config.key_cache_size < 1:
        problems.append(f"key_cache_size={config.key_cache_size} must be at least 1")
    return problems


def data_dir_problems(data_dir: Path) -> list[str]:
    existing = next((p for p in (data_dir, *data_dir.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return [f"data directory {str(data_dir)!r} cannot be created: {existing} is not a folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == data_dir:
            return [f"data directory {str(data_dir)!r} is not writable by this user"]
        return [
            f"data directory {str(data_dir)!r} cannot be created: {str(existing)!r} is not "
            "writable by this user"
        ]
    return []


def database_problems(settings: EngineSettings) -> list[str]:
    if not settings.database_url:
        return []
    try:
        make_url(settings.database_url).get_dialect().import_dbapi()
    except NoSuchModuleError as err:
        return [f"database URL names a driver that is not installed: {err}"]
    except ArgumentError:
        return ["database URL is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)"]
    except ImportError as err:  # the dialect exists, its DBAPI module does not
        return [f"database URL's driver cannot be imported: {err}"]
    return []


def rate_limit_env_problems() -> list[str]:
    problems = []
    for name in (*LIMIT_ENV.values(), WEBHOOK_LIMIT_ENV):
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        try:
            parse_limit(text)
        except ValueError as err:
            problems.append(f"{name}: {err}")
    return problems


def cors_problems(origins: Iterable[str]) -> list[str]:
    problems = []
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("",):
            problems.append(
                f"cors_origins entry {origin!r} is not an origin: write scheme://host[:port], "
                "e.g. 'https://example.com', or '*'"
            )
    return problems
