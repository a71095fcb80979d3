"""Who is calling: an OpenAlgo API key checked against its peppered bcrypt hash, with a cache.

bcrypt costs a few hundred milliseconds by design, far above the order path's budget, so a
verified key is remembered under the SHA-256 of the key for a short time (bounded in size,
dropped at once when the key is revoked through this process). A key revoked by another
process (the CLI) stops working when its cache entry expires, so the TTL is kept short.
Neither the key nor its digest is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from openalgo_lab.engine.actions.registry import RateClass
from openalgo_lab.server_ext.ratelimit import RATE_LIMITED_MESSAGE, FailureThrottle, RateLimits
from openalgo_lab.store.apikeys import find_key, mark_used
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_crypto import verify_api_key

INVALID_KEY_MESSAGE = "Invalid openalgo apikey"
MISSING_KEY_MESSAGE = (
    "API key is missing: send it as 'apikey' in the JSON body, as the apikey query "
    "parameter, or in the X-API-KEY header"
)

# OpenAlgo keys are 64 hex characters; anything far longer is refused before hashing.
MAX_KEY_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: the key's public id, the account it trades, and its scope."""

    key_id: str
    account: str
    scope: str

    @property
    def can_trade(self) -> bool:
        return self.scope == "trading"


@dataclass(slots=True)
class _Entry:
    digest: bytes
    principal: Principal
    expires: float


class KeyVerifier:
    """Turns a presented key into a `Principal`, paying bcrypt once per key per TTL."""

    def __init__(
        self,
        state: StateStore,
        pepper: bytes,
        *,
        ttl: float = 30.0,
        size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._pepper = pepper
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()

    async def verify(self, key: str) -> Principal | None:
        """The principal for a valid, unrevoked key; None for anything else."""
        if not key or len(key) > MAX_KEY_LENGTH:
            return None
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        principal = await asyncio.to_thread(self._verify_stored, key)
        if principal is not None:
            self._remember(digest, principal)
        return principal

    def invalidate(self, key_id: str) -> None:
        """Forget every cached verification of `key_id` (after a revocation)."""
        for digest in [d for d, e in self._cache.items() if e.principal.key_id == key_id]:
            del self._cache[digest]

    def clear(self) -> None:
        self._cache.clear()

    def _cached(self, digest: bytes) -> Principal | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if entry.expires <= self._clock() or not hmac.compare_digest(entry.digest, digest):
            del self._cache[digest]
            return None
        self._cache.move_to_end(digest)
        return entry.principal

    def _remember(self, digest: bytes, principal: Principal) -> None:
        self._cache[digest] = _Entry(digest, principal, self._clock() + self._ttl)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def _verify_stored(self, key: str) -> Principal | None:
        """The slow path, on a worker thread: one row by prefix, one bcrypt check."""
        stored = find_key(self._state, key)
        if stored is None or stored.revoked:
            return None
        if not verify_api_key(key, stored.key_hash, self._pepper):
            return None
        mark_used(self._state, stored.key_id)
        return Principal(stored.key_id, stored.account, stored.scope)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is turned away before reaching the engine, as OpenAlgo's error."""

    status: int
    message: str
    retry_after: int = 0

    def body(self) -> dict[str, str]:
        return {"status": "error", "message": self.message}


class Gate:
    """Everything between a request and the engine: key, throttle of bad keys, scope, limits.

    The order matters: a throttled address is refused before any bcrypt work; limits are
    counted per verified key only, so a stranger cannot use up a real key's allowance.
    """

    def __init__(self, verifier: KeyVerifier, limits: RateLimits, throttle: FailureThrottle):
        self.verifier = verifier
        self.limits = limits
        self.throttle = throttle

    async def admit(
        self,
        key: str | None,
        address: str,
        *,
        action: str,
        rate: RateClass,
        trading: bool,
        token: tuple[str, Callable[[str], Principal]] | None = None,
    ) -> Principal | Refusal:
        """`token` (a bearer token and its verifier) stands in for a missing key."""
        principal: Principal | Refusal
        if token is not None and not key:
            principal = self.authenticate_token(token[0], address, token[1])
        else:
            principal = await self.authenticate(key, address)
        if isinstance(principal, Refusal):
            return principal
        if trading and not principal.can_trade:
            return Refusal(
                403, f"This API key is read-only: {action} needs a key with trading scope"
            )
        verdict = self.limits.hit(rate, principal.key_id)
        if not verdict.allowed:
            return Refusal(429, RATE_LIMITED_MESSAGE, verdict.retry_after)
        return principal

    async def authenticate(self, key: str | None, address: str) -> Principal | Refusal:
        if not key:
            return Refusal(401, MISSING_KEY_MESSAGE)
        throttled = self._throttled(address)
        if throttled is not None:
            return throttled
        principal = await self.verifier.verify(key)
        if principal is None:
            self.throttle.failed(address)
            return Refusal(403, INVALID_KEY_MESSAGE)
        return principal

    def authenticate_token(
        self, token: str, address: str, verify: Callable[[str], Principal]
    ) -> Principal | Refusal:
        """A signed session token instead of a key (see `tokens`), under the same throttle:
        `verify` returns the principal or raises `ValueError` saying what is wrong."""
        throttled = self._throttled(address)
        if throttled is not None:
            return throttled
        try:
            return verify(token)
        except ValueError as err:
            self.throttle.failed(address)
            return Refusal(403, str(err))

    def _throttled(self, address: str) -> Refusal | None:
        throttled = self.throttle.check(address)
        if throttled.allowed:
            return None
        return Refusal(
            429,
            f"Too many invalid API keys from this address; retry in {throttled.retry_after} s",
            throttled.retry_after,
        )
