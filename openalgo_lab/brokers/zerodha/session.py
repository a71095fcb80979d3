"""The Kite login: the login URL, the request-token exchange, and the daily expiry.

Kite's flow (reference §B.1): the user opens `https://kite.zerodha.com/connect/login?v=3&
api_key=...`, logs in, and Zerodha redirects the browser to the app's redirect URL with
`?request_token=...&status=success`. The app then posts `api_key`, `request_token` and
`checksum = sha256(api_key + request_token + api_secret)` to `/session/token` and receives the
`access_token` that every later call carries. Access tokens die around 06:00 IST the next
morning; we compute that instant at login and stop using the token then, so an expired
login is reported as "broker session expired" before Kite is even asked.

`KiteSession` holds the current login for one adapter. Storing it (encrypted, in the state
database) is the caller's business, through the `on_login` callback and the `reload`
callable, so a login done elsewhere (the CLI, a notebook) reaches a running server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from html import escape
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from openalgo_lab.brokers.zerodha.http import SESSION_EXPIRED, KiteHttp, KiteRefused, RateClass
from openalgo_lab.domain.calendar import IST
from openalgo_lab.domain.clock import Clock, SystemClock
from openalgo_lab.domain.errors import BrokerError, BrokerSessionExpired, ValidationError

log = logging.getLogger(__name__)

DEFAULT_LOGIN_URL = "https://kite.zerodha.com/connect/login"
SESSION_RESET = time(6, 0)  # Kite invalidates access tokens around 06:00 IST
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KiteLogin:
    """One successful login: the access token and until when it is good."""

    access_token: str
    user_id: str
    login_time: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def checksum(api_key: str, secret_part: str, api_secret: str) -> str:
    """Kite's checksum: hex SHA-256 of the three strings run together."""
    return hashlib.sha256(f"{api_key}{secret_part}{api_secret}".encode()).hexdigest()


def login_url(api_key: str, *, base: str = DEFAULT_LOGIN_URL, redirect_params: str = "") -> str:
    """The page the user opens to log in to Kite for this app."""
    query = {"v": "3", "api_key": api_key}
    if redirect_params:
        query["redirect_params"] = redirect_params
    return f"{base}?{urlencode(query)}"


def request_token_from(text: str) -> str:
    """The request token from what the user pastes: the token itself, or the whole URL Kite
    redirected the browser to (`...?request_token=...&action=login&status=success`)."""
    value = text.strip()
    if not value:
        raise ValidationError("request_token", "is empty; paste the token or the redirect URL")
    if "?" in value or "://" in value:
        query = parse_qs(urlsplit(value).query)
        status = (query.get("status") or [""])[0]
        if status and status != "success":
            raise ValidationError("request_token", f"the Kite login did not succeed ({status})")
        tokens = query.get("request_token") or []
        if not tokens:
            raise ValidationError("request_token", "the URL has no request_token parameter")
        value = tokens[0]
    if not set(value) <= _TOKEN_CHARS or len(value) > 128:
        raise ValidationError("request_token", "must be letters and digits as Kite issues it")
    return value


def session_expiry(login_time: datetime) -> datetime:
    """The 06:00 IST that ends a login made at `login_time` (the next one after it)."""
    local = login_time.astimezone(IST)
    reset = datetime.combine(local.date(), SESSION_RESET, IST)
    if local >= reset:
        reset += timedelta(days=1)
    return reset


def _login_time(value: object, now: datetime) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return now


class KiteSession:
    """The login state of one adapter: whether a token is usable, and how to get one."""

    def __init__(
        self,
        http: KiteHttp,
        api_secret: str,
        *,
        account: str = "",
        login_base: str = DEFAULT_LOGIN_URL,
        clock: Clock | None = None,
        on_login: Callable[[KiteLogin], None] | None = None,
        reload: Callable[[], KiteLogin | None] | None = None,
    ) -> None:
        if not api_secret:
            raise ValueError("a Kite api_secret is required")
        self.http = http
        self._api_secret = api_secret
        self.account = account
        self.login_base = login_base
        self.clock = clock or SystemClock()
        self._on_login = on_login
        self._reload = reload
        self.login: KiteLogin | None = None

    def __repr__(self) -> str:  # never show the secret or the token
        state = "logged in" if self.login is not None else "logged out"
        return f"KiteSession(account={self.account!r}, api_key={self.http.api_key!r}, {state})"

    @property
    def expired_message(self) -> str:
        who = f" of account {self.account!r}" if self.account else ""
        hint = f": openalgo-lab accounts login {self.account}" if self.account else ""
        return (
            f"{SESSION_EXPIRED}: the Zerodha (Kite) login{who} is missing or over "
            f"(Kite logins end at 06:00 IST every day); log in again{hint}"
        )

    def login_url(self) -> str:
        return login_url(self.http.api_key, base=self.login_base)

    def restore(self, login: KiteLogin | None) -> bool:
        """Use a stored login if it is still good; True when it was taken."""
        if login is None or login.expired(self.clock.now()):
            return False
        self.login = login
        self.http.set_access_token(login.access_token)
        return True

    def ensure(self) -> None:
        """Raise `BrokerSessionExpired` unless a usable login is in hand; looks for a newer
        one in the store first (the user may have logged in from the CLI meanwhile)."""
        now = self.clock.now()
        if self.login is not None and not self.login.expired(now):
            return
        if self._reload is not None:
            stored = self._reload()
            if stored is not None and self.restore(stored):
                log.info("using the Kite login of account %r stored at %s", self.account, now)
                return
        self.forget()
        raise BrokerSessionExpired(self.expired_message)

    def forget(self) -> None:
        """Kite refused the token (or it expired): stop sending it."""
        self.login = None
        self.http.set_access_token("")

    def session_expired(self) -> BrokerSessionExpired:
        """Kite said TokenException: drop the login and explain what to do."""
        self.forget()
        return BrokerSessionExpired(self.expired_message)

    async def complete_login(self, request_token_or_url: str) -> KiteLogin:
        """Exchange a request token (or the redirect URL holding it) for an access token."""
        token = request_token_from(request_token_or_url)
        form = {
            "api_key": self.http.api_key,
            "request_token": token,
            "checksum": checksum(self.http.api_key, token, self._api_secret),
        }
        try:
            data = await self.http.send(
                "POST", "/session/token", form, auth=False, rate=RateClass.OTHER
            )
        except BrokerSessionExpired:
            raise BrokerSessionExpired(
                "Kite refused the login: the request token is invalid, expired or already "
                "used (each works once, for a few minutes), or the api_secret is not this "
                "app's; log in again for a fresh token"
            ) from None
        except KiteRefused as err:
            raise KiteRefused(
                f"Kite refused the login ({err.message}); check the Kite app's api_key and "
                "api_secret stored for the account (openalgo-lab accounts set-broker)"
            ) from None
        if not isinstance(data, dict) or not data.get("access_token"):
            raise BrokerError("Kite's login answer has no access_token")
        now = self.clock.now()
        logged_in = _login_time(data.get("login_time"), now)
        login = KiteLogin(
            access_token=str(data["access_token"]),
            user_id=str(data.get("user_id") or ""),
            login_time=logged_in,
            expires_at=session_expiry(logged_in),
        )
        self.login = login
        self.http.set_access_token(login.access_token)
        if self._on_login is not None:
            self._on_login(login)
        log.info("logged in to Kite as %s (account %r)", login.user_id, self.account)
        return login


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also inside a notebook (whose
    own event loop is already running in this thread): then on a helper thread's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as err:  # handed back to the caller below
            box["error"] = err

    thread = threading.Thread(target=work, name="kite-login")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: T = box["value"]
    return result


class LoginHelper:
    """The notebook face of a login: shows the Kite login link, then takes the redirect URL.

    helper = LoginHelper(session)   # displays a link in a notebook
    helper.complete("https://your.redirect/?request_token=...&status=success")
    """

    def __init__(
        self,
        session: KiteSession,
        complete: Callable[[str], Awaitable[KiteLogin]] | None = None,
    ) -> None:
        self.session = session
        self._complete = complete or session.complete_login

    @property
    def url(self) -> str:
        return self.session.login_url()

    def complete(self, request_token_or_url: str) -> KiteLogin:
        async def go() -> KiteLogin:
            return await self._complete(request_token_or_url)

        return run_sync(go)

    def _repr_html_(self) -> str:
        url = escape(self.url, quote=True)
        return (
            f'<p>1. <a href="{url}" target="_blank" rel="noopener">Log in to Kite</a> '
            f"(account {escape(self.session.account)!s}).</p>"
            "<p>2. Copy the address Kite sends your browser to (it holds "
            "<code>request_token=...</code>) and run <code>helper.complete(url)</code>.</p>"
        )

    def __repr__(self) -> str:
        return f"Log in to Kite at {self.url} then call .complete(<redirect URL or token>)"
