"""Short-lived signed tokens (JWT, HS256) for WebSocket and dashboard sessions.

A browser page must not hold a long-lived API key, so the logged-in Jupyter user asks
`POST {base_url}openalgo/token` for a token naming an account and a scope, valid for at
most an hour, and presents it where an API key would go (the feed's `authenticate`).

The signing secret is derived from the install pepper with HKDF and a fixed label, never
the pepper itself: tokens survive a restart of the server and are worthless on another
install. A token cannot be revoked; it only expires, which is why its life is short.
"""

from __future__ import annotations

import secrets
import time

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openalgo_lab.server_ext.auth import Principal

ALGORITHM = "HS256"
ISSUER = "openalgo-lab"
SECRET_LABEL = b"openalgo-lab session-token signing key v1"
SCOPES = ("read", "trading")
DEFAULT_TTL = 900
MAX_TTL = 3600
MAX_TOKEN_LENGTH = 4096
KEY_ID_PREFIX = "token:"  # a token principal's key_id: rate limits count per token


class TokenError(ValueError):
    """A token that is expired, malformed, wrongly signed or not ours; `str()` says which."""


def signing_secret(pepper: bytes) -> bytes:
    """The HS256 key of this install: HKDF-SHA256 of the pepper under a fixed label."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SECRET_LABEL)
    return hkdf.derive(pepper)


def issue_token(
    secret: bytes,
    *,
    account: str,
    scope: str,
    ttl_seconds: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """A signed token for `account` at `scope`, expiring `ttl_seconds` after `now`."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if not account:
        raise ValueError("account must not be empty")
    if not 0 < ttl_seconds <= MAX_TTL:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL}, got {ttl_seconds}")
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": ISSUER,
        "sub": account,
        "scope": scope,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_hex(16),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: bytes, token: str, *, leeway: float = 0) -> Principal:
    """The principal a valid token names; `TokenError` for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("Invalid token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "jti", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("Token has expired") from None
    except jwt.PyJWTError as err:
        raise TokenError(f"Invalid token: {err}") from None
    scope, account, jti = claims.get("scope"), claims.get("sub"), claims.get("jti")
    if scope not in SCOPES or not isinstance(account, str) or not isinstance(jti, str):
        raise TokenError("Invalid token: bad claims")
    return Principal(KEY_ID_PREFIX + jti, account, scope)


def expires_at(token: str) -> int:
    """The `exp` claim of a token this module just issued (not verified again)."""
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])
