"""Kite Connect v3 over HTTP: headers, the envelope, errors, rate limits and safe retries.

Every call goes through `KiteHttp`, which

* sends `X-Kite-Version: 3` and `Authorization: token <api_key>:<access_token>`, form fields
  for writes and query parameters for reads (Kite's conventions);
* unwraps `{"status": "success", "data": ...}` and turns `{"status": "error", "error_type":
  ...}` into our exception hierarchy: `TokenException` is `BrokerSessionExpired` (the daily
  login is gone; never a bad API key), input/order/holding/permission refusals are
  `KiteRefused` (an `OrderRejected`: nothing happened), `MarginException` is
  `InsufficientFunds`, Kite's OMS and gateway failures are `KiteUnavailable`;
* waits its turn under Kite's published limits (orders 10/s and 200/min, quotes 1/s,
  historical 3/s, everything else 10/s) in a FIFO queue per class, so a burst is spread out
  instead of being answered with HTTP 429;
* retries reads with exponential backoff on timeouts, 5xx, 429 and malformed answers. Writes
  are never retried: a write whose answer is lost raises `KiteUnavailable` with
  `outcome_unknown=True`, and the caller reconciles through the order book.

Nothing secret is logged: not the headers, not the form, not the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from openalgo_lab.domain.errors import (
    BrokerError,
    BrokerSessionExpired,
    InsufficientFunds,
    NotFoundError,
    OrderRejected,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.kite.trade"
KITE_VERSION = "3"
DEFAULT_TIMEOUT = 10.0
Params = Mapping[str, str] | Sequence[tuple[str, str]] | None
_Query = list[tuple[str, str | int | float | bool | None]]
SESSION_EXPIRED = "broker session expired"


class RateClass(StrEnum):
    """Kite's rate-limit buckets."""

    ORDER = "order"  # place, modify, cancel
    QUOTE = "quote"  # /quote, /quote/ohlc, /quote/ltp
    HISTORICAL = "historical"
    OTHER = "other"


# (calls, window in seconds) per class: Kite's published limits (reference §B.1).
KITE_LIMITS: dict[RateClass, tuple[tuple[int, float], ...]] = {
    RateClass.ORDER: ((10, 1.0), (200, 60.0)),
    RateClass.QUOTE: ((1, 1.0),),
    RateClass.HISTORICAL: ((3, 1.0),),
    RateClass.OTHER: ((10, 1.0),),
}


# -- errors ------------------------------------------------------------------------------------
class KiteRefused(OrderRejected):
    """Kite refused the request (bad input, order rules, permissions): nothing happened."""


class KiteUnavailable(BrokerError):
    """Kite could not be reached or failed. For a write, `outcome_unknown` says the request
    may have been carried out: reconcile, never re-send."""

    def __init__(self, message: str, *, outcome_unknown: bool = True) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class KiteRateLimited(BrokerError):
    """Kite answered 429: the request was not carried out."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_from_envelope(status: int, body: Mapping[str, Any]) -> Exception:
    """Our exception for a Kite error answer (HTTP status and its JSON body)."""
    kind = str(body.get("error_type") or "")
    message = str(body.get("message") or f"HTTP {status}")
    if kind == "TokenException":
        log.info("Kite refused the session (%s): %s", status, message)
        return BrokerSessionExpired(
            f"{SESSION_EXPIRED}: Kite refused the login (it ends every day at 06:00 IST); "
            "log in to Zerodha again"
        )
    if status == 429:
        return KiteRateLimited(f"Kite's rate limit was hit: {message}")
    if kind == "MarginException":
        return InsufficientFunds(f"Kite: {message}")
    if kind in ("InputException", "OrderException", "HoldingException", "UserException"):
        return KiteRefused(f"Kite: {message}")
    if kind == "PermissionException":
        return KiteRefused(f"Kite refused the request (no permission): {message}")
    if status == 404:
        return NotFoundError(f"Kite: {message}")
    if kind in ("NetworkException", "DataException", "GeneralException") or status >= 500:
        return KiteUnavailable(f"Kite failed ({kind or status}): {message}")
    if 400 <= status < 500:
        return KiteRefused(f"Kite: {message}")
    return KiteUnavailable(f"Kite answered HTTP {status}: {message}")


# -- rate limiting -----------------------------------------------------------------------------
class SlidingWindowLimiter:
    """At most `calls` requests in any `window` seconds, for every (calls, window) rule, as
    the server counts them.

    A request is counted from the moment it is sent until `window` seconds after its answer
    came back: the server saw it arrive somewhere in between, so spacing answers (not sends)
    by the window can never put more than `calls` arrivals in one of the server's windows,
    whatever the network's jitter. Callers queue in arrival order (an `asyncio.Lock` wakes
    waiters first in, first out), so a burst of 25 orders goes out as 10, 10 and 5 about a
    second apart instead of failing with HTTP 429."""

    def __init__(
        self,
        rules: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll: float = 0.005,
    ) -> None:
        if not rules or any(n < 1 or w <= 0 for n, w in rules):
            raise ValueError(f"rate rules must be positive (calls, seconds) pairs: {rules!r}")
        self.rules = tuple(rules)
        self._horizon = max(w for _, w in self.rules)
        self._clock = clock
        self._sleep = sleep
        self._poll = poll
        self._slots: deque[_Slot] = deque()
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds callers spent queued (for tests and diagnostics)

    def delay(self, now: float) -> float:
        """Seconds until one more request would respect every rule (a short poll while the
        request that blocks it is still waiting for its answer)."""
        while self._slots and self._slots[0].done is not None:
            if self._slots[0].done > now - self._horizon:
                break
            self._slots.popleft()
        wait = 0.0
        for calls, window in self.rules:
            counted = [s.done for s in self._slots if s.done is None or s.done > now - window]
            if len(counted) < calls:
                continue
            finished = sorted(t for t in counted if t is not None)
            must_expire = len(counted) - calls + 1
            if must_expire > len(finished):
                wait = max(wait, self._poll)
            else:
                wait = max(wait, finished[must_expire - 1] + window - now)
        return wait

    async def acquire(self) -> _Slot:
        """Wait for a slot and take it; `release` it when the answer is in."""
        async with self._lock:
            while (wait := self.delay(self._clock())) > 0:
                await self._sleep(wait)
                self.waited += wait
            slot = _Slot()
            self._slots.append(slot)
            return slot

    def release(self, slot: _Slot) -> None:
        slot.done = self._clock()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        taken = await self.acquire()
        try:
            yield
        finally:
            self.release(taken)


class _Slot:
    """One request: `done` is when its answer came back (None while in flight)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for reads: `attempts` tries in all, delays doubling from `base_delay`."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**attempt)))


# -- the client --------------------------------------------------------------------------------
class KiteHttp:
    """One Kite app (api_key) and login (access_token) over one pooled `httpx.AsyncClient`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        access_token: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        limits: Mapping[RateClass, Sequence[tuple[int, float]]] | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a Kite api_key is required")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self._access_token = access_token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        rules = {**KITE_LIMITS, **(limits or {})}
        self.limiters = {rc: SlidingWindowLimiter(rules[rc]) for rc in RateClass}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.requests = 0  # calls sent (retries included)

    # -- session ---------------------------------------------------------------------------
    @property
    def has_session(self) -> bool:
        return bool(self._access_token)

    def set_access_token(self, token: str) -> None:
        self._access_token = token

    def _headers(self, *, auth: bool) -> dict[str, str]:
        headers = {"X-Kite-Version": KITE_VERSION, "User-Agent": "openalgo-lab"}
        if auth:
            if not self._access_token:
                raise BrokerSessionExpired(
                    f"{SESSION_EXPIRED}: not logged in to Zerodha (Kite) yet; log in first"
                )
            headers["Authorization"] = f"token {self.api_key}:{self._access_token}"
        return headers

    def _http(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (a pool cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, transport=self._transport
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

    # -- calls -----------------------------------------------------------------------------
    async def get(
        self,
        path: str,
        params: Params = None,
        *,
        rate: RateClass = RateClass.OTHER,
        auth: bool = True,
    ) -> Any:
        """A read: the envelope's `data`, retried with backoff where a retry is safe."""
        return await self._with_retries("GET", path, params, rate, auth, parse=_json_data)

    async def get_text(self, path: str, *, rate: RateClass = RateClass.OTHER) -> str:
        """A read of a CSV (the instrument dump, which Kite serves without a login too),
        gzip or not."""
        auth = self.has_session
        result: str = await self._with_retries("GET", path, None, rate, auth, parse=_csv_text)
        return result

    async def send(
        self,
        method: str,
        path: str,
        form: Mapping[str, str],
        *,
        rate: RateClass = RateClass.ORDER,
        auth: bool = True,
    ) -> Any:
        """A write (POST/PUT/DELETE with form fields): sent once, never retried."""
        async with self.limiters[rate].slot():
            response = await self._request(method, path, None, form, auth, write=True)
        return _json_data(response)

    async def _with_retries(
        self,
        method: str,
        path: str,
        params: Params,
        rate: RateClass,
        auth: bool,
        *,
        parse: Callable[[httpx.Response], Any],
    ) -> Any:
        attempt = 0
        while True:
            try:
                async with self.limiters[rate].slot():
                    response = await self._request(method, path, params, None, auth, write=False)
                return parse(response)
            except (KiteUnavailable, KiteRateLimited) as err:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt - 1)
                if isinstance(err, KiteRateLimited):
                    delay = max(delay, err.retry_after)
                log.warning(
                    "Kite %s %s failed (%s); retry %d in %.2f s",
                    method,
                    path,
                    err.message,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _request(
        self,
        method: str,
        path: str,
        params: Params,
        form: Mapping[str, str] | None,
        auth: bool,
        *,
        write: bool,
    ) -> httpx.Response:
        headers = self._headers(auth=auth)
        pairs = params.items() if isinstance(params, Mapping) else params or ()
        query: _Query = [(k, v) for k, v in pairs]
        self.requests += 1
        try:
            response = await self._http().request(
                method,
                path,
                params=query or None,
                data=form,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.ConnectError as err:
            # The connection was never made: nothing reached Kite.
            raise KiteUnavailable(
                f"cannot connect to Kite at {self.base_url}: {err}", outcome_unknown=False
            ) from None
        except httpx.TimeoutException:
            raise KiteUnavailable(
                f"Kite did not answer {method} {path} within {self.timeout:g} s",
                outcome_unknown=write,
            ) from None
        except httpx.TransportError as err:
            raise KiteUnavailable(
                f"the connection to Kite was lost during {method} {path}: {type(err).__name__}",
                outcome_unknown=write,
            ) from None
        if response.status_code == 429:
            raise KiteRateLimited(
                "Kite's rate limit was hit (HTTP 429); the request was not carried out",
                retry_after=_retry_after(response),
            )
        return response


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _json_data(response: httpx.Response) -> Any:
    """The `data` of Kite's success envelope, or the matching exception."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        if response.status_code >= 400 and response.status_code != 429:
            raise error_from_envelope(response.status_code, {})
        raise KiteUnavailable(
            f"Kite sent a malformed answer (HTTP {response.status_code}, "
            f"{response.headers.get('content-type', 'no content type')})"
        )
    if body["status"] == "error" or response.status_code >= 400:
        raise error_from_envelope(response.status_code, body)
    if "data" not in body:
        raise KiteUnavailable("Kite's answer has no data")
    return body["data"]


def _csv_text(response: httpx.Response) -> str:
    """The instrument dump: CSV, possibly gzipped without a Content-Encoding header."""
    if response.status_code >= 400:
        _json_data(response)  # raises the mapped error
    content = response.content
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError):
            raise KiteUnavailable("Kite sent a broken gzip instrument dump") from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise KiteUnavailable("Kite's instrument dump is not UTF-8 text") from None
    if not text.startswith("instrument_token"):
        raise KiteUnavailable("Kite's instrument dump does not start with its CSV header")
    return text
