"""The Client over HTTP: any OpenAlgo-compatible server, including our Jupyter extension.

`POST {url}/api/v1/<action>` with a JSON body, as the official client does (`url` is its
`host`, e.g. `http://127.0.0.1:8888/openalgo`); `instruments` and `ticker` are GET routes.
Every failure comes back as `(status, {"status": "error", "message": ...})` with an
`error_type` like the official client's; nothing raises into the notebook.

Orders are never sent twice by this module: an order action is never retried, and carries an
`Idempotency-Key` header (the caller's `idempotency_key` or `client_order_id` when given, a
fresh one otherwise) which the server's journal honours. When the outcome of an order is
unknown (timeout, dropped connection), the error says so and names the key: calling again
with `idempotency_key=<that key>` returns the first answer instead of placing a second order.
Reads are retried once after a transport failure, since repeating them changes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from openalgo_lab.client.approvals import (
    NEEDS_JUPYTER,
    ApprovalQueue,
    ServerQueue,
    UnavailableQueue,
)
from openalgo_lab.client.credentials import (
    Credentials,
    CredentialsError,
    SessionTokens,
    describe_error,
    json_object,
)
from openalgo_lab.client.ticks import TickStream

log = logging.getLogger(__name__)

JSON = dict[str, Any]
DEFAULT_TIMEOUT = 30.0  # seconds to wait for an answer (a live broker can be slow)
CONNECT_TIMEOUT = 5.0
READ_RETRY_DELAY = 0.2
MAX_KEY_LENGTH = 100  # the server's limit on idempotency keys
# Actions that change orders, positions or modes: never retried automatically.
ORDER_ACTIONS = frozenset(
    {
        "placeorder",
        "placesmartorder",
        "basketorder",
        "splitorder",
        "modifyorder",
        "cancelorder",
        "cancelallorder",
        "closeposition",
        "optionsorder",
        "optionsmultiorder",
        "placegttorder",
        "modifygttorder",
        "cancelgttorder",
        "analyzer/toggle",
        "killswitch",
    }
)
GET_ACTIONS = frozenset({"instruments", "ticker"})


def error_body(message: str, error_type: str, **extra: Any) -> JSON:
    return {"status": "error", "message": message, "error_type": error_type, **extra}


def normalise_url(url: str) -> str:
    """`http(s)://host[:port][/prefix]` without a trailing slash (the official client's
    `host`: a trailing slash would give `//api/v1`)."""
    text = url.strip().rstrip("/")
    parsed = httpx.URL(text) if "://" in text else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(
            f"url must look like http://127.0.0.1:8888/openalgo (scheme, host, prefix), got {url!r}"
        )
    return text


def normalise_ws_url(url: str) -> str:
    text = url.strip()
    if not text.startswith(("ws://", "wss://")) or len(text.split("://", 1)[1]) == 0:
        raise ValueError(f"ws_url must look like ws://127.0.0.1:8765, got {url!r}")
    return text


class RemoteTransport:
    """A `Transport` over HTTP (sync `httpx.Client`, keep-alive) plus the WebSocket feed."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
        ws_url: str | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.ws_url = normalise_ws_url(ws_url) if ws_url else None
        self.credentials = credentials
        self.timeout = timeout
        self._http = http or new_http_client(timeout)
        self._feed: Any = None  # the Feed, started on the first subscription
        self._closed = False

    def __repr__(self) -> str:
        return f"RemoteTransport({self.url!r}, {self.credentials.describe()})"

    def approvals(self) -> ApprovalQueue:
        """The server's Action Center when this Client pays for its session tokens with the
        Jupyter token (a kernel's Client): the same server, the same token."""
        credentials = self.credentials
        if isinstance(credentials, SessionTokens) and credentials.server_root:
            return ServerQueue(
                credentials.server_root, credentials.jupyter_token, timeout=self.timeout
            )
        return UnavailableQueue(NEEDS_JUPYTER)

    # -- REST ---------------------------------------------------------------------------------
    def call(self, action: str, payload: Mapping[str, Any]) -> tuple[int, JSON]:
        """Run one action on the server; never raises."""
        if self._closed:
            return 503, error_body("This client is closed", "client_closed")
        action = action.strip().strip("/")
        if not action:
            return 400, error_body("No action given", "client_error")
        body = dict(payload)
        headers: dict[str, str] = {}
        if action in ORDER_ACTIONS:
            key = order_key(body)
            if key is None:
                message = f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters"
                return 400, error_body(message, "client_error")
            headers["Idempotency-Key"] = key
        attempts = 1 if action in ORDER_ACTIONS else 2
        for attempt in range(attempts):
            status, reply = self._call_once(action, body, headers)
            if reply.get("error_type") != "connection_error" or attempt + 1 == attempts:
                return status, reply
            time.sleep(READ_RETRY_DELAY)
        raise AssertionError("unreachable")  # pragma: no cover

    def _call_once(self, action: str, body: JSON, headers: dict[str, str]) -> tuple[int, JSON]:
        try:
            status, reply = self._send(action, body, headers)
            if status in (401, 403) and self.credentials.renew_after(status, reply):
                status, reply = self._send(action, body, headers)  # refused before the engine
        except CredentialsError as err:
            return err.status or 503, error_body(str(err), "auth_error")
        except httpx.HTTPError as err:
            return self._transport_failure(action, err, headers.get("Idempotency-Key"))
        return status, reply

    def _send(self, action: str, body: JSON, extra: dict[str, str]) -> tuple[int, JSON]:
        method = "GET" if action in GET_ACTIONS else "POST"
        auth_headers, auth_fields = self.credentials.request_auth(method)
        headers = {**auth_headers, **extra}
        if method == "GET":
            path, query = get_route(action, body)
            response = self._http.get(f"{self.url}/api/v1/{path}", params=query, headers=headers)
        else:
            response = self._http.post(
                f"{self.url}/api/v1/{action}", json={**auth_fields, **body}, headers=headers
            )
        return answer(action, response)

    def _transport_failure(
        self, action: str, err: httpx.HTTPError, key: str | None
    ) -> tuple[int, JSON]:
        where = f"{self.url}/api/v1/{action}"
        if isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
            status, kind = 504, "timeout_error"
        elif isinstance(err, httpx.ConnectError | httpx.ConnectTimeout):
            status, kind = 503, "connection_error"
        elif isinstance(err, httpx.TransportError):
            status, kind = 502, "connection_error"
        else:
            status, kind = 502, "http_error"
        message = f"{action} failed: {describe_error(err)} ({where})"
        extra: JSON = {}
        sent = not isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
        if key is not None and sent:
            message += (
                f"; the request may have reached the server: call again with "
                f"idempotency_key={key!r} to get its answer without acting twice"
            )
            extra["idempotency_key"] = key
        elif key is not None:
            message += "; nothing was sent"
        return status, error_body(message, kind, **extra)

    # -- events and ticks over the feed -------------------------------------------------------
    def feed(self) -> Any:
        """The feed (one WebSocket), started on first use."""
        if self._feed is None:
            from openalgo_lab.client.feed import Feed

            self._feed = Feed(self)
        return self._feed

    def subscribe(
        self, callback: Callable[[str, Any], None], topics: set[str] | None
    ) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self.feed().subscribe_events(callback, topics)
        return unsubscribe

    def subscribe_ticks(
        self, callback: Callable[[str, Any], None], streams: Sequence[TickStream]
    ) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self.feed().subscribe_ticks(callback, streams)
        return unsubscribe

    @property
    def feed_url(self) -> str:
        """The feed: `ws_url` when given (OpenAlgo itself serves it on its own port), else
        `ws(s)://.../openalgo/ws` beside the API, as the extension does."""
        if self.ws_url:
            return self.ws_url
        if self.url.startswith("https://"):
            return "wss://" + self.url.removeprefix("https://") + "/ws"
        return "ws://" + self.url.removeprefix("http://") + "/ws"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._feed is not None:
            self._feed.close()
        self._http.close()


def new_http_client(timeout: float) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
        limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30.0),
        headers={"User-Agent": "openalgo-lab-client"},
    )


def order_key(body: JSON) -> str | None:
    """The idempotency key of an order request: the caller's, else a new one; None when the
    caller's is unusable (the server would refuse it)."""
    given = body.get("idempotency_key") or body.get("client_order_id")
    if given is None or given == "":
        return uuid.uuid4().hex
    key = str(given).strip()
    return key if 0 < len(key) <= MAX_KEY_LENGTH else None


def get_route(action: str, body: JSON) -> tuple[str, dict[str, str]]:
    """The path and query of a GET action (the API key never goes in the query)."""
    query = {k: str(v) for k, v in body.items() if v is not None and k != "apikey"}
    if action == "ticker":
        symbol = query.pop("symbol", "")
        return f"ticker/{quote(symbol, safe=':')}", query
    return action, query


def answer(action: str, response: httpx.Response) -> tuple[int, JSON]:
    """The server's status and JSON object; a non-JSON answer becomes a precise error."""
    body = json_object(response)
    status = response.status_code
    if body is not None:
        return status, body
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    text = " ".join(response.text.split())[:200]
    message = (
        f"The server answered {action} with HTTP {status} and a body that is not a JSON "
        f"object ({kind}): {text or '(empty)'}"
    )
    return (status if status >= 400 else 502), error_body(message, "json_error")
