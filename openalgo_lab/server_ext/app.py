"""The Jupyter server extension: one Engine for the server's lifetime, OpenAlgo's REST API on it.

The engine lives here rather than in a kernel so webhooks and outside scripts keep working
when no notebook is open (DESIGN.md, "one owner of trading state"). A failure to start it
(another process holds the data directory, say) is logged and answered with a 503 on the
OpenAlgo routes instead of taking the whole Jupyter server down with it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int, List, TraitError, Unicode, default, validate

from openalgo_lab.domain.calendar import MarketHours
from openalgo_lab.engine.actions.registry import RateClass
from openalgo_lab.engine.engine import Engine
from openalgo_lab.engine.quote_feed import QuoteHub, tick_frame
from openalgo_lab.engine.settings import EngineSettings, SettingsError
from openalgo_lab.server_ext.auth import Gate, KeyVerifier
from openalgo_lab.server_ext.config_check import ExtensionConfig, configuration_problems
from openalgo_lab.server_ext.handlers import handlers
from openalgo_lab.server_ext.openapi import openapi_handlers
from openalgo_lab.server_ext.postback import postback_handlers
from openalgo_lab.server_ext.ratelimit import (
    FailureThrottle,
    RateLimits,
    limit_from_env,
    parse_limit,
)
from openalgo_lab.server_ext.user_handlers import user_handlers
from openalgo_lab.server_ext.webhooks import webhook_handlers
from openalgo_lab.server_ext.websocket import websocket_handlers
from openalgo_lab.store.state_crypto import load_or_create_pepper

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Services:
    """What the handlers need once the engine runs; absent while it does not."""

    engine: Engine
    gate: Gate
    pepper: bytes
    feed: QuoteHub


class OpenAlgoLabApp(ExtensionApp):
    """OpenAlgo Lab inside Jupyter: `{base_url}openalgo/api/v1/*` and `{base_url}openalgo/keys`."""

    name = "openalgo_lab"
    load_other_extensions = True

    data_dir = Unicode(
        "",
        config=True,
        help="Data directory of the engine; empty: $OPENALGO_LAB_DATA_DIR, else ~/.openalgo-lab.",
    )
    database_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the state database; empty: SQLite in the data directory.",
    )
    market_hours = Unicode(
        "",
        config=True,
        help="'exchange' (real sessions) or 'always' (open all day, for demos); "
        "empty: $OPENALGO_LAB_MARKET_HOURS, else 'exchange'.",
    )
    order_rate_limit = Unicode(
        config=True, help="Per-key limit of order actions, e.g. '10 per second', or 'off'."
    )
    smart_order_rate_limit = Unicode(
        config=True, help="Per-key limit of placesmartorder, e.g. '10 per second', or 'off'."
    )
    api_rate_limit = Unicode(
        config=True, help="Per-key limit of every other action, e.g. '50 per second', or 'off'."
    )
    bad_key_limit = Unicode(
        "10 per minute",
        config=True,
        help="Failed API-key checks allowed per client address before it gets 429s, or 'off'.",
    )
    key_cache_ttl = Float(
        30.0,
        config=True,
        help="Seconds a verified API key is trusted without bcrypt; also how long a key "
        "revoked from another process (the CLI) may keep working here.",
    )
    key_cache_size = Int(1024, config=True, help="Verified API keys remembered at most.")
    max_body_bytes = Int(MIB, config=True, help="Largest request body accepted (413 above).")
    cors_origins = List(
        Unicode(),
        config=True,
        help="Browser origins allowed to call the OpenAlgo API cross-origin ('*' for any).",
    )

    services: Services | None = None
    startup_error: str = "the engine has not been started yet"

    @default("order_rate_limit")
    def _default_order_rate_limit(self) -> str:
        return limit_from_env(RateClass.ORDER)

    @default("smart_order_rate_limit")
    def _default_smart_order_rate_limit(self) -> str:
        return limit_from_env(RateClass.SMART_ORDER)

    @default("api_rate_limit")
    def _default_api_rate_limit(self) -> str:
        return limit_from_env(RateClass.API)

    @validate("order_rate_limit", "smart_order_rate_limit", "api_rate_limit", "bad_key_limit")
    def _valid_limit(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"])
        try:
            parse_limit(text)
        except ValueError as err:
            raise TraitError(f"{proposal['trait'].name}: {err}") from None
        return text

    @validate("market_hours")
    def _valid_market_hours(self, proposal: dict[str, Any]) -> str:
        text = str(proposal["value"]).strip().lower()
        if text and text not in {m.value for m in MarketHours}:
            raise TraitError(f"market_hours must be 'exchange' or 'always', got {text!r}")
        return text

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())
        self.handlers.extend(webhook_handlers())
        self.handlers.extend(websocket_handlers())
        self.handlers.extend(openapi_handlers())
        self.handlers.extend(user_handlers())
        self.handlers.extend(postback_handlers())

    def engine_settings(self) -> EngineSettings:
        """The environment's settings with every trait that was set laid over them."""
        overrides: dict[str, object] = {}
        if self.data_dir:
            overrides["data_dir"] = Path(self.data_dir).expanduser()
        if self.database_url:
            overrides["database_url"] = self.database_url
        if self.market_hours:
            overrides["market_hours"] = MarketHours(self.market_hours)
        return EngineSettings.from_env(**overrides)

    def rate_limits(self) -> RateLimits:
        return RateLimits(
            {
                RateClass.ORDER: self.order_rate_limit,
                RateClass.SMART_ORDER: self.smart_order_rate_limit,
                RateClass.API: self.api_rate_limit,
            }
        )

    def config_values(self) -> ExtensionConfig:
        return ExtensionConfig(
            tuple(self.cors_origins), self.max_body_bytes, self.key_cache_ttl, self.key_cache_size
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await self.start_engine()

    async def start_engine(self) -> None:
        """Start the engine and the gate in front of it; idempotent."""
        if self.services is not None:
            return
        try:
            settings: EngineSettings | SettingsError = self.engine_settings()
        except SettingsError as err:
            settings = err
        problems = configuration_problems(settings, self.config_values())
        if problems:
            self.startup_error = "the configuration is wrong: " + "; ".join(problems)
            for problem in problems:
                self.log.error("OpenAlgo Lab configuration: %s", problem)
            return
        assert isinstance(settings, EngineSettings)
        try:
            engine = Engine(settings)
            await engine.start()
        except Exception as err:
            self.startup_error = f"the engine failed to start: {err}"
            self.log.error("OpenAlgo Lab: %s", self.startup_error)
            return
        try:
            assert engine.state is not None
            pepper = await asyncio.to_thread(load_or_create_pepper, settings.data_dir)
            verifier = KeyVerifier(
                engine.state, pepper, ttl=self.key_cache_ttl, size=self.key_cache_size
            )
            gate = Gate(verifier, self.rate_limits(), FailureThrottle(self.bad_key_limit))
        except Exception as err:
            await engine.stop()
            self.startup_error = f"the API-key store failed to open: {err}"
            self.log.error("OpenAlgo Lab: %s", self.startup_error)
            return
        feed = QuoteHub(lambda account: engine.account(account).data_broker, tick_frame)
        self.services = Services(engine, gate, pepper, feed)
        self.log.info("OpenAlgo Lab engine started on %s", settings.data_dir)

    async def stop_extension(self) -> None:
        services, self.services = self.services, None
        self.startup_error = "the engine has stopped"
        if services is not None:
            await services.feed.close()
            await services.engine.stop()
            self.log.info("OpenAlgo Lab engine stopped")
