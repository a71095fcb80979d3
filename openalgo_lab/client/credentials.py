"""How a remote Client proves who it is: an OpenAlgo API key, or session tokens bought with
the Jupyter server's own token.

A kernel started by a Jupyter server already holds that server's token (its runtime file),
but it is a master key to the whole server, so it is used for one thing only: asking
`{base_url}openalgo/token` for a short-lived, trading-scoped session token. The API and the
feed then see only that token, renewed before it expires. An API key (scripts, any
OpenAlgo-compatible server) goes where OpenAlgo's own client puts it: in the JSON body.

No secret appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

JSON = dict[str, Any]
TOKEN_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_TOKEN_TTL = 900  # seconds; the server allows at most 3600
RENEW_REFUSALS = ("Token has expired", "Invalid token")  # the gate's messages for tokens

TOKEN_ROUTE = "openalgo/token"  # below the Jupyter base URL: session tokens for its user


class CredentialsError(RuntimeError):
    """The credential could not be obtained; `str()` says why. `status` is the HTTP status
    of the refusal (0 when the server did not answer) and `reason` the server's message."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Credentials(Protocol):
    def request_auth(self, method: str) -> tuple[dict[str, str], JSON]:
        """Headers, and fields for the JSON body of a POST (may renew a token)."""
        ...

    def feed_auth(self) -> JSON:
        """The feed's `authenticate` message (may renew a token)."""
        ...

    def renew_after(self, status: int, body: JSON) -> bool:
        """After a refusal: True when a fresh credential is ready and a retry can help."""
        ...

    def describe(self) -> str:
        """Who this is, without the secret (for reprs and error messages)."""
        ...


@dataclass(frozen=True)
class ApiKey:
    """An OpenAlgo API key: `apikey` in the body, `X-API-KEY` for GET routes (never a query
    parameter, which would land in the server's access log)."""

    key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key or not self.key.strip():
            raise ValueError("api_key must not be empty")

    def request_auth(self, method: str) -> tuple[dict[str, str], JSON]:
        if method == "GET":
            return {"X-API-KEY": self.key}, {}
        return {}, {"apikey": self.key}

    def feed_auth(self) -> JSON:
        return {"action": "authenticate", "api_key": self.key}

    def renew_after(self, status: int, body: JSON) -> bool:
        return False  # a refused key stays refused

    def describe(self) -> str:
        return "API key"


@dataclass
class SessionTokens:
    """Session tokens from `token_url` (`{base_url}openalgo/token`), paid for with the Jupyter
    server's token, each renewed `margin` seconds before it expires (thread-safe)."""

    token_url: str
    jupyter_token: str = field(repr=False)
    http: httpx.Client = field(repr=False)
    account: str | None = None
    scope: str = "trading"
    ttl: int = DEFAULT_TOKEN_TTL
    _token: str = field(default="", init=False, repr=False)
    _renew_at: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    granted_account: str = field(default="", init=False)

    @property
    def margin(self) -> float:
        return min(60.0, self.ttl / 5)

    @property
    def server_root(self) -> str:
        """The Jupyter server's base URL when `token_url` is its `{base_url}openalgo/token`
        (as `connect()` builds it), else ""."""
        url = self.token_url.rstrip("/")
        return url.removesuffix(TOKEN_ROUTE) if url.endswith("/" + TOKEN_ROUTE) else ""

    def token(self) -> str:
        """A token with at least `margin` seconds left, fetched now if needed."""
        with self._lock:
            if not self._token or time.monotonic() >= self._renew_at:
                self._fetch()
            return self._token

    def request_auth(self, method: str) -> tuple[dict[str, str], JSON]:
        return {"Authorization": f"Bearer {self.token()}"}, {}

    def feed_auth(self) -> JSON:
        return {"action": "authenticate", "token": self.token()}

    def renew_after(self, status: int, body: JSON) -> bool:
        message = str(body.get("message", ""))
        if status not in (401, 403) or not message.startswith(RENEW_REFUSALS):
            return False
        with self._lock:
            self._fetch()
        return True

    def describe(self) -> str:
        account = self.granted_account or self.account or "the default account"
        return f"session tokens ({self.scope}) for {account}"

    def _fetch(self) -> None:
        body: JSON = {"scope": self.scope, "ttl": self.ttl}
        if self.account:
            body["account"] = self.account
        headers = jupyter_auth(self.jupyter_token)
        asked = time.monotonic()
        try:
            response = self.http.post(
                self.token_url, json=body, headers=headers, timeout=TOKEN_TIMEOUT
            )
        except httpx.HTTPError as err:
            raise CredentialsError(
                f"Could not reach {self.token_url} for a session token: {describe_error(err)}"
            ) from None
        reply = json_object(response)
        token = reply.get("token") if reply is not None else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            reason = str((reply or {}).get("message") or "") or response.reason_phrase
            raise CredentialsError(
                f"The Jupyter server refused a session token (HTTP {response.status_code}): "
                f"{reason}",
                response.status_code,
                reason,
            )
        self._token = token
        self._renew_at = asked + self.ttl - self.margin
        self.granted_account = str(reply.get("account") or "") if reply else ""


def jupyter_auth(token: str) -> dict[str, str]:
    """Headers a Jupyter server accepts a POST from this process with: its token; or, on a
    server without one (authentication disabled), a matching XSRF cookie and header, which
    a script can always send (the check only stops other web pages in a browser)."""
    if token:
        return {"Authorization": f"token {token}"}
    xsrf = secrets.token_hex(16)
    return {"Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf}


def json_object(response: httpx.Response) -> JSON | None:
    """The body as a JSON object, or None when it is anything else."""
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def describe_error(err: Exception) -> str:
    """An httpx failure in words a notebook user can act on."""
    if isinstance(err, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(err, httpx.ConnectError):
        return f"cannot connect ({err or 'connection refused'})"
    if isinstance(err, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(err, httpx.RemoteProtocolError):
        return f"the connection was closed without an answer ({err})"
    return f"{type(err).__name__}: {err}"
