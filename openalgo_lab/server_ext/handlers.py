"""REST routes: OpenAlgo's `/api/v1/*` for outside callers, and `/keys` for the Jupyter user.

The OpenAlgo routes are reached by scripts, TradingView and the official `openalgo` client,
none of which can send a Jupyter token or XSRF cookie. They therefore skip both (and the
origin check, since no ambient credential is involved) and require an OpenAlgo API key
instead. Every answer on them is OpenAlgo's JSON envelope, errors included: the official
client flattens whatever body comes back into its error message, so an HTML page or a
traceback would reach the user's screen.

The handlers only parse, ask the `Gate`, call `Engine.call` and write the reply.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.client import responses
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from openalgo_lab.domain.errors import OpenAlgoError
from openalgo_lab.engine.actions.market import ticker_text
from openalgo_lab.engine.actions.registry import ACTIONS
from openalgo_lab.server_ext.auth import Principal, Refusal
from openalgo_lab.server_ext.tokens import signing_secret, verify_token
from openalgo_lab.store.history_rows import RequestRow

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Reply
    from openalgo_lab.server_ext.app import OpenAlgoLabApp, Services

JSON = dict[str, Any]
log = logging.getLogger(__name__)
API_PREFIX = r"/openalgo/+api/v1/+"
MAX_IDEMPOTENCY_KEY = 100  # the journal allows 128, and basket legs append ":<n>"
DRAIN_FACTOR = 16  # an oversize body is read (and dropped) up to this many times the limit
ALLOWED_HEADERS = "Content-Type, X-API-KEY, Idempotency-Key"


def error(message: str) -> JSON:
    return {"status": "error", "message": message}


class OpenAlgoHandler(ExtensionHandlerMixin, APIHandler):
    """Base of the routes outside callers use: API-key auth only, JSON errors only.

    Every request to a route (`_route` set) goes to the traffic log once answered: route,
    status, timings, the key's public id and the client's address; never the key or body."""

    _route = ""  # the action name for the traffic log; "" logs nothing
    _key_id = ""  # the verified caller's key id
    _parse_seconds = 0.0
    _reply: Reply | None = None

    def check_xsrf_cookie(self) -> None:
        """No cookie authenticates these routes, so there is no cross-site request to forge."""
        return None

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        return True

    def set_cors_headers(self) -> None:
        origin = self.request.headers.get("Origin", "")
        allowed = self.lab.cors_origins
        if origin and ("*" in allowed or origin in allowed):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

    @allow_unauthenticated
    def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight for the configured origins."""
        self.set_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """OpenAlgo's envelope for every failure Tornado or Jupyter raises here; never a
        traceback (unexpected errors are logged by Tornado, not sent)."""
        message = responses.get(status_code, "Error")
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], web.HTTPError):
            message = exc_info[1].log_message or exc_info[1].reason or message
        elif exc_info is not None:
            message = "Internal server error; see the server log"
        self.finish(json.dumps(error(message)))

    @property
    def lab(self) -> OpenAlgoLabApp:
        return cast("OpenAlgoLabApp", self.extensionapp)

    def on_finish(self) -> None:
        super().on_finish()
        services = self.lab.services
        if not self._route or services is None:
            return
        timings = self._reply.timings if self._reply is not None else {}
        try:
            row = RequestRow(
                ts=datetime.now(UTC),
                method=self.request.method or "",
                route=self._route,
                status=self.get_status(),
                duration_ms=self.request.request_time() * 1000,
                parse_ms=self._parse_seconds * 1000,
                engine_ms=timings.get("engine", 0.0) * 1000,
                risk_ms=timings.get("risk", 0.0) * 1000,
                journal_ms=timings.get("journal", 0.0) * 1000,
                broker_ms=timings.get("broker", 0.0) * 1000,
                key_id=self._key_id,
                client=self.request.remote_ip or "",
            )
        except OpenAlgoError:
            log.exception("request to %s not logged", self._route)
            return
        services.engine.record_request(row)

    def services(self) -> Services | None:
        """The running engine's services, or None after answering 503."""
        services = self.lab.services
        if services is None:
            self.send(503, error(f"OpenAlgo Lab is not available: {self.lab.startup_error}"))
        return services

    def send(self, status: int, body: JSON) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def refuse(self, refusal: Refusal) -> None:
        if refusal.retry_after:
            self.set_header("Retry-After", str(refusal.retry_after))
        self.send(refusal.status, refusal.body())

    def key_from_request(self, body: Mapping[str, Any] | None = None) -> str | None:
        """The API key from the body, the query string or the X-API-KEY header, in that order."""
        if body is not None and body.get("apikey") not in (None, ""):
            return str(body["apikey"])
        return self.get_query_argument("apikey", None) or self.request.headers.get("X-API-KEY")

    def bearer_token(self, services: Services) -> tuple[str, Callable[[str], Principal]] | None:
        """A session token from `Authorization: Bearer ...` (see `tokens`) with its verifier:
        what a dashboard page holds instead of an API key."""
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        secret = signing_secret(services.pepper)
        return token.strip(), lambda t: verify_token(secret, t)

    async def admit(self, services: Services, key: str | None, action: str) -> Principal | None:
        """The caller, or None after answering the refusal."""
        spec = ACTIONS[action]
        outcome = await services.gate.admit(
            key,
            self.request.remote_ip or "",
            action=action,
            rate=spec.rate,
            trading=spec.trading,
            token=self.bearer_token(services),
        )
        if isinstance(outcome, Refusal):
            self.refuse(outcome)
            return None
        self._key_id = outcome.key_id
        return outcome


@web.stream_request_body
class ActionHandler(OpenAlgoHandler):
    """POST `/api/v1/<action>` for every registered action, with a bounded body."""

    _chunks: list[bytes]
    _size: int

    async def prepare(self) -> None:  # type: ignore[override]
        self._chunks, self._size = [], 0
        connection = self.request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(self.lab.max_body_bytes * DRAIN_FACTOR)
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        """Keep the body only while it is within the limit; drain the rest unread."""
        self._size += len(chunk)
        if self._size <= self.lab.max_body_bytes:
            self._chunks.append(chunk)

    @allow_unauthenticated
    def get(self, action: str) -> None:
        self._route = _route_name(action.rstrip("/"))
        self.send(405, error(f"Use POST with a JSON body for /api/v1/{action}"))

    @allow_unauthenticated
    async def post(self, action: str) -> None:
        action = action.rstrip("/")
        self._route = _route_name(action)
        if action not in ACTIONS:
            self.send(404, error(f"Unknown API endpoint /api/v1/{action}"))
            return
        if self._size > self.lab.max_body_bytes:
            limit = self.lab.max_body_bytes
            self.send(413, error(f"Request body is larger than the limit of {limit} bytes"))
            return
        started = time.perf_counter()
        payload = parse_object(b"".join(self._chunks))
        if isinstance(payload, str):
            self.send(400, error(payload))
            return
        idempotency_key = self.idempotency_key(payload)
        self._parse_seconds = time.perf_counter() - started
        if idempotency_key is None:
            message = f"Idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            self.send(400, error(message))
            return
        services = self.services()
        if services is None:
            return
        principal = await self.admit(services, self.key_from_request(payload), action)
        if principal is None:
            return
        payload.pop("apikey", None)  # never reaches the engine, hence never the journal
        reply = self._reply = await services.engine.call(
            action, payload, account=principal.account, idempotency_key=idempotency_key
        )
        self.send(reply.status, reply.body)

    def idempotency_key(self, payload: Mapping[str, Any]) -> str | None:
        """The caller's key for safe retries ("" when none was given), None when malformed."""
        raw = (
            self.request.headers.get("Idempotency-Key")
            or payload.get("idempotency_key")
            or payload.get("client_order_id")
            or ""
        )
        key = str(raw).strip()
        return key if len(key) <= MAX_IDEMPOTENCY_KEY else None


class InstrumentsHandler(OpenAlgoHandler):
    """GET `/api/v1/instruments?apikey=..&exchange=..&format=json|csv`."""

    @allow_unauthenticated
    async def get(self) -> None:
        self._route = "instruments"
        fmt = self.get_query_argument("format", "json").lower()
        if fmt not in ("json", "csv"):
            self.send(400, error(f"format must be json or csv, got {fmt!r}"))
            return
        services = self.services()
        if services is None:
            return
        principal = await self.admit(services, self.key_from_request(), "instruments")
        if principal is None:
            return
        exchange = self.get_query_argument("exchange", "")
        payload = {"exchange": exchange} if exchange else {}
        reply = self._reply = await services.engine.call(
            "instruments", payload, account=principal.account
        )
        if fmt == "json" or not reply.ok:
            self.send(reply.status, reply.body)
            return
        name = f"instruments_{exchange.upper() or 'all'}.csv"
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(rows_csv(reply.body["data"]), set_content_type="text/csv; charset=utf-8")


class TickerHandler(OpenAlgoHandler):
    """GET `/api/v1/ticker/<EXCH:SYMBOL>?apikey=..&interval=..&from=..&to=..&format=json|txt`."""

    @allow_unauthenticated
    async def get(self, key: str) -> None:
        self._route = "ticker"
        query = {name: self.get_query_argument(name) for name in self.request.query_arguments}
        query.pop("apikey", None)
        fmt = query.pop("format", "json").lower()
        if fmt not in ("json", "txt"):
            self.send(400, error(f"format must be json or txt, got {fmt!r}"))
            return
        services = self.services()
        if services is None:
            return
        principal = await self.admit(services, self.key_from_request(), "ticker")
        if principal is None:
            return
        payload = {**query, "symbol": key}
        reply = self._reply = await services.engine.call(
            "ticker", payload, account=principal.account
        )
        if fmt == "json" or not reply.ok:
            self.send(reply.status, reply.body)
            return
        exchange, _, symbol = key.upper().partition(":")
        text = ticker_text(reply.body["data"], exchange, symbol, query.get("interval", "D"))
        self.finish(text, set_content_type="text/plain; charset=utf-8")


def _route_name(action: str) -> str:
    """The route as logged: a registered action's name; any other path (which the caller
    chose, and might hold anything) only as "(unknown)"."""
    return action if action in ACTIONS else "(unknown)"


def parse_object(raw: bytes) -> JSON | str:
    """The body as a JSON object, or the message saying why it is not one."""
    try:
        value = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except UnicodeDecodeError:
        return "Request body is not UTF-8 text"
    except ValueError as err:
        return f"Request body is not valid JSON: {err}"
    if not isinstance(value, dict):
        return f"Request body must be a JSON object, got {type(value).__name__}"
    return value


def rows_csv(rows: list[JSON]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes relative to the server's base_url (the ExtensionApp prefixes it)."""
    return [
        (API_PREFIX + r"instruments/?", InstrumentsHandler),
        (API_PREFIX + r"ticker/([^/]+)/?", TickerHandler),
        (API_PREFIX + r"(.+?)/*", ActionHandler),
    ]
