"""Webhook routes for alert senders, and the Jupyter user's strategy and Action Center routes.

`/openalgo/strategy/webhook/<token>` and `/openalgo/chartink/webhook/<token>` are called by
TradingView, ChartInk and the official client's `Strategy` class, none of which can send a
Jupyter token or XSRF cookie; the long random token in the URL is the credential (as in
OpenAlgo), so these reuse `OpenAlgoHandler`'s relaxed checks. They answer after the engine
has journaled (and, in the sandbox, placed) the order: that is a few milliseconds, well
inside TradingView's 3-second limit, and it lets the sender see a refusal.

Webhooks are limited per token (OpenAlgo's `WEBHOOK_RATE_LIMIT`, 100 per minute by default;
set `OPENALGO_LAB_WEBHOOK_RATE_LIMIT`, e.g. "20 per minute" or "off").

`/openalgo/strategies` and `/openalgo/actioncenter` are the lab user's own: Jupyter auth.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from openalgo_lab.domain.errors import OpenAlgoError, ValidationError
from openalgo_lab.engine import action_center, strategies
from openalgo_lab.server_ext.handlers import OpenAlgoHandler, error, parse_object
from openalgo_lab.server_ext.ratelimit import RATE_LIMITED_MESSAGE, Limiter, parse_limit
from openalgo_lab.server_ext.user_handlers import UserHandler

JSON = dict[str, Any]
WEBHOOK_LIMIT_ENV = "OPENALGO_LAB_WEBHOOK_RATE_LIMIT"
DEFAULT_WEBHOOK_LIMIT = "100 per minute"

_limiter = Limiter()  # one server process owns the tokens, as with the API keys


def webhook_limit() -> str:
    return os.environ.get(WEBHOOK_LIMIT_ENV, "").strip() or DEFAULT_WEBHOOK_LIMIT


def parse_alert_body(raw: bytes, content_type: str) -> Mapping[str, Any] | str:
    """JSON object when the body is JSON (whatever the content type says: TradingView sends
    text/plain for text and application/json for valid JSON), else the text itself."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("body", "is not UTF-8 text") from None
    stripped = text.strip()
    if not stripped:
        raise ValidationError("body", "is empty")
    if stripped[0] in "{[" or content_type.startswith("application/json"):
        parsed = parse_object(raw)
        if isinstance(parsed, str):
            raise ValidationError("body", parsed)
        return parsed
    return stripped


class WebhookHandler(OpenAlgoHandler):
    """POST an alert to a strategy named by its webhook token."""

    chartink_only = False

    @allow_unauthenticated
    def get(self, token: str) -> None:
        self.send(405, error("Use POST with the alert as the body"))

    @allow_unauthenticated
    async def post(self, token: str) -> None:
        if len(self.request.body) > self.lab.max_body_bytes:
            limit = self.lab.max_body_bytes
            self.send(413, error(f"Request body is larger than the limit of {limit} bytes"))
            return
        services = self.services()
        if services is None:
            return
        if not self.admit_token(token):
            return
        state = services.engine.state
        assert state is not None
        strategy = await asyncio.to_thread(strategies.find_by_token, state, token)
        if strategy is None:
            self.send(404, error("Unknown webhook"))
            return
        try:
            body = parse_alert_body(self.request.body, self.request.headers.get("Content-Type", ""))
            if self.chartink_only and not (isinstance(body, Mapping) and "stocks" in body):
                raise ValidationError("stocks", "is required in a ChartInk alert")
            reply = await strategies.handle_alert(services.engine, strategy, body)
        except OpenAlgoError as err:
            self.send(err.http_status, err.to_envelope())
            return
        self.send(200, reply)

    def admit_token(self, token: str) -> bool:
        """Count the request against the token's limit; False after answering 429."""
        items = parse_limit(webhook_limit())
        if not items:
            return True
        verdict = _limiter.hit(items, "webhook", token)
        if verdict.allowed:
            return True
        self.set_header("Retry-After", str(verdict.retry_after))
        self.send(429, error(RATE_LIMITED_MESSAGE))
        return False


class ChartinkWebhookHandler(WebhookHandler):
    """ChartInk's scan alerts; the same strategies, but the body must be ChartInk's."""

    chartink_only = True


class LabHandler(UserHandler):
    """Base of the Jupyter user's strategy and Action Center routes."""

    def send(self, status: int, body: JSON) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def webhook_path(self, strategy: strategies.StrategyConfig) -> str:
        kind = "chartink" if strategy.platform == "chartink" else "strategy"
        base = self.settings.get("base_url", "/")
        return f"{base}openalgo/{kind}/webhook/{strategy.webhook_token}"

    def described(self, strategy: strategies.StrategyConfig) -> JSON:
        return strategy.to_json() | {"webhook_path": self.webhook_path(strategy)}


class StrategiesHandler(LabHandler):
    """GET lists (or one by id), POST creates and returns the webhook URL path."""

    @web.authenticated
    @authorized
    async def get(self, strategy_id: str = "") -> None:
        state = self.services().engine.state
        assert state is not None
        try:
            if strategy_id:
                one = await asyncio.to_thread(strategies.get_strategy, state, int(strategy_id))
                self.send(200, {"status": "success", "data": self.described(one)})
                return
            account = self.get_query_argument("account", None)
            found = await asyncio.to_thread(strategies.list_strategies, state, account)
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        self.send(200, {"status": "success", "data": [self.described(s) for s in found]})

    @web.authenticated
    @authorized
    async def post(self, strategy_id: str = "") -> None:
        services = self.services()
        body = self.body_object()
        account = self.account_of(services, body)
        state = services.engine.state
        assert state is not None
        try:
            created = await asyncio.to_thread(strategies.create_strategy, state, body, account)
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        described = self.described(created)
        self.send(201, {"status": "success", "data": described, **_urls(described)})


def _urls(described: JSON) -> JSON:
    return {"webhook_path": described["webhook_path"], "webhook_token": described["webhook_token"]}


class ActionCenterHandler(LabHandler):
    """GET the pending orders (`?status=all` for decided ones too); POST a decision."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        state = self.services().engine.state
        assert state is not None
        wanted = self.get_query_argument("status", action_center.PENDING)
        status = None if wanted == "all" else wanted
        orders = await asyncio.to_thread(action_center.list_orders, state, status)
        self.send(200, {"status": "success", "data": [o.to_json() for o in orders]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        engine = self.services().engine
        body = self.body_object()
        decision = str(body.get("decision", "")).lower()
        try:
            order_id = action_center.pending_id(body.get("id"))
            if decision == "approve":
                answer = await action_center.approve(engine, order_id)
                status = int(answer.pop("http_status"))
            elif decision == "reject":
                answer = await action_center.reject(engine, order_id, str(body.get("reason") or ""))
                status = 200
            else:
                raise web.HTTPError(400, "decision must be 'approve' or 'reject'")
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        self.send(status, answer)


def webhook_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes relative to the server's base_url (the ExtensionApp prefixes it)."""
    return [
        (r"/openalgo/strategy/webhook/([A-Za-z0-9_-]+)/?", WebhookHandler),
        (r"/openalgo/chartink/webhook/([A-Za-z0-9_-]+)/?", ChartinkWebhookHandler),
        (r"/openalgo/strategies/?", StrategiesHandler),
        (r"/openalgo/strategies/([0-9]+)/?", StrategiesHandler),
        (r"/openalgo/actioncenter/?", ActionCenterHandler),
    ]
