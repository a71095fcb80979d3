"""Short-lived session tokens: issue/verify, the Jupyter-authenticated route, the feed."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from openalgo_lab.server_ext import websocket as feed
from openalgo_lab.server_ext.tokens import (
    MAX_TTL,
    TokenError,
    issue_token,
    signing_secret,
    verify_token,
)
from tests.test_websocket import (  # noqa: F401  (the server configuration fixture)
    Feed,
    Fetch,
    WsFetch,
    jp_server_config,
    receive,
    send,
)

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PEPPER = b"p" * 64
SECRET = signing_secret(PEPPER)


@pytest.fixture
def lab_feed(
    jp_serverapp: Any, jp_fetch: Fetch, jp_ws_fetch: WsFetch, jp_asyncio_loop: Any
) -> Feed:
    # as tests.test_websocket's `lab`: the fixtures never start extensions themselves
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return Feed(jp_serverapp.web_app.settings["openalgo_lab"], jp_fetch, jp_ws_fetch)


# -- issue and verify ----------------------------------------------------------------------------
def test_round_trip_carries_account_scope_and_claims() -> None:
    token = issue_token(SECRET, account="default", scope="read")
    principal = verify_token(SECRET, token)
    assert (principal.account, principal.scope, principal.can_trade) == ("default", "read", False)
    assert principal.key_id.startswith("token:")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="openalgo-lab")
    assert claims["sub"] == "default" and claims["exp"] - claims["iat"] == 900
    assert verify_token(SECRET, issue_token(SECRET, account="a", scope="trading")).can_trade
    # every token is distinct, so per-token rate limits do not collide
    other = verify_token(SECRET, issue_token(SECRET, account="default", scope="read"))
    assert other.key_id != principal.key_id


def test_secret_is_derived_not_the_pepper_and_is_stable() -> None:
    assert SECRET != PEPPER and len(SECRET) == 32
    assert signing_secret(PEPPER) == SECRET  # tokens survive a restart


def test_expired_token_is_refused() -> None:
    token = issue_token(
        SECRET, account="default", scope="read", ttl_seconds=1, now=time.time() - 60
    )
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token)


def test_tampered_token_is_refused() -> None:
    token = issue_token(SECRET, account="default", scope="read")
    header, payload, signature = token.split(".")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "scope": "trading"},
        b"x" * 32,
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(TokenError, match="Invalid token"):
        verify_token(SECRET, f"{header}.{forged}.{signature}")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(TokenError):
        verify_token(SECRET, f"{header}.{payload}.{flipped}")
    unsigned = jwt.encode({"sub": "default", "scope": "trading"}, "", algorithm="none")
    with pytest.raises(TokenError):
        verify_token(SECRET, unsigned)
    with pytest.raises(TokenError):
        verify_token(SECRET, "not a token")


def test_token_from_another_install_is_refused() -> None:
    token = issue_token(signing_secret(b"q" * 64), account="default", scope="trading")
    with pytest.raises(TokenError, match="Invalid token"):
        verify_token(SECRET, token)


def test_issue_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        issue_token(SECRET, account="default", scope="admin")
    with pytest.raises(ValueError):
        issue_token(SECRET, account="default", scope="read", ttl_seconds=MAX_TTL + 1)


# -- the route -----------------------------------------------------------------------------------
async def test_route_issues_a_token_for_the_jupyter_user(lab_feed: Feed) -> None:
    before = int(time.time())
    r = await lab_feed.fetch(
        "openalgo", "token", method="POST", body=json.dumps({"scope": "trading", "ttl": 60})
    )
    body = json.loads(r.body)
    assert body["status"] == "success" and body["account"] == "default"
    assert before + 60 <= body["expires_at"] <= int(time.time()) + 60
    principal = verify_token(signing_secret(lab_feed.services.pepper), body["token"])
    assert principal.account == "default" and principal.can_trade
    # the default is read scope
    r = await lab_feed.fetch("openalgo", "token", method="POST", body="{}")
    assert verify_token(
        signing_secret(lab_feed.services.pepper), json.loads(r.body)["token"]
    ).scope == ("read")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"ttl": MAX_TTL + 1}, 400),
        ({"ttl": "60"}, 400),
        ({"scope": "admin"}, 400),
        ({"account": "nobody"}, 404),
        ([], 400),
    ],
)
async def test_route_validation(lab_feed: Feed, body: object, code: int) -> None:
    r = await lab_feed.fetch(
        "openalgo", "token", method="POST", body=json.dumps(body), raise_error=False
    )
    assert r.code == code


async def test_route_requires_jupyter_auth(lab_feed: Feed) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "", "X-API-KEY": lab_feed.key}):
        r = await lab_feed.fetch(
            "openalgo", "token", method="POST", body="{}", headers=headers, raise_error=False
        )
        assert r.code in (401, 403)
        assert b'"token":' not in r.body


# -- the feed ------------------------------------------------------------------------------------
async def test_feed_authenticates_with_a_token(lab_feed: Feed) -> None:
    token = issue_token(signing_secret(lab_feed.services.pepper), account="default", scope="read")
    ws = await lab_feed.connect()
    await send(ws, {"action": "authenticate", "token": token})
    reply = await receive(ws)
    assert reply["type"] == "auth" and reply["status"] == "success", reply
    assert reply["user_id"] == "default"
    await send(ws, {"action": "ping"})
    assert (await receive(ws))["type"] == "pong"
    ws.close()


@pytest.mark.parametrize("kind", ["expired", "foreign", "garbage"])
async def test_feed_refuses_bad_tokens_like_bad_keys(lab_feed: Feed, kind: str) -> None:
    secret = signing_secret(lab_feed.services.pepper)
    token = {
        "expired": issue_token(
            secret, account="default", scope="read", ttl_seconds=1, now=time.time() - 60
        ),
        "foreign": issue_token(signing_secret(b"q" * 64), account="default", scope="read"),
        "garbage": "a.b.c",
    }[kind]
    ws = await lab_feed.connect()
    await send(ws, {"action": "authenticate", "token": token})
    reply = await receive(ws)
    assert reply["status"] == "error" and reply["code"] == "AUTHENTICATION_ERROR", reply
    assert await receive(ws) is None
    assert ws.close_code == feed.AUTH_CLOSE_CODE
    ws.close()


# -- the REST API --------------------------------------------------------------------------------
async def _rest(lab_feed: Feed, action: str, body: dict[str, Any], bearer: str) -> Any:
    r = await lab_feed.fetch(
        "openalgo",
        "api",
        "v1",
        action,
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {bearer}"},
        raise_error=False,
    )
    return r.code, json.loads(r.body)


async def test_rest_accepts_a_bearer_token_within_its_scope(lab_feed: Feed) -> None:
    secret = signing_secret(lab_feed.services.pepper)
    read = issue_token(secret, account="default", scope="read")
    code, body = await _rest(lab_feed, "funds", {}, read)
    assert code == 200 and body["status"] == "success", body
    order = {
        "strategy": "t",
        "symbol": "SBIN",
        "exchange": "NSE",
        "action": "BUY",
        "pricetype": "MARKET",
        "product": "MIS",
        "quantity": "1",
    }
    code, body = await _rest(lab_feed, "placeorder", order, read)
    assert code == 403 and "trading scope" in body["message"], body
    trading = issue_token(secret, account="default", scope="trading")
    code, body = await _rest(lab_feed, "placeorder", order, trading)
    assert code == 200 and body["status"] == "success", body


async def test_rest_refuses_bad_bearer_tokens(lab_feed: Feed) -> None:
    expired = issue_token(
        signing_secret(lab_feed.services.pepper),
        account="default",
        scope="read",
        ttl_seconds=1,
        now=time.time() - 60,
    )
    code, body = await _rest(lab_feed, "funds", {}, expired)
    assert code == 403 and body == {"status": "error", "message": "Token has expired"}
    code, body = await _rest(lab_feed, "funds", {}, "garbage")
    assert code == 403 and body["message"].startswith("Invalid token")
    # an API key in the body still wins over a header
    code, body = await _rest(lab_feed, "funds", {"apikey": lab_feed.key}, "garbage")
    assert code == 200, body
