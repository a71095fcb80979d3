"""Routes for the logged-in Jupyter user (Jupyter's token or cookie + XSRF, as any Jupyter
API): API-key management and short-lived session tokens. Outside callers never reach these;
they use the API-key routes of `handlers`."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from openalgo_lab.domain.errors import OpenAlgoError
from openalgo_lab.server_ext.handlers import parse_object
from openalgo_lab.server_ext.tokens import (
    DEFAULT_TTL,
    MAX_TTL,
    SCOPES,
    expires_at,
    issue_token,
    signing_secret,
)
from openalgo_lab.store.apikeys import create_key, list_keys, revoke_key
from openalgo_lab.store.state_crypto import api_key_id

if TYPE_CHECKING:
    from openalgo_lab.server_ext.app import OpenAlgoLabApp, Services


class UserHandler(ExtensionHandlerMixin, APIHandler):
    """Base of the Jupyter-authenticated routes: the extension's services or a 503."""

    auth_resource = "openalgo_lab"

    @property
    def lab(self) -> OpenAlgoLabApp:
        return cast("OpenAlgoLabApp", self.extensionapp)

    def services(self) -> Services:
        services = self.lab.services
        if services is None:
            raise web.HTTPError(503, f"OpenAlgo Lab is not available: {self.lab.startup_error}")
        return services

    def body_object(self) -> dict[str, Any]:
        body = parse_object(self.request.body or b"{}")
        if isinstance(body, str):
            raise web.HTTPError(400, body)
        return body

    def account_of(self, services: Services, body: dict[str, Any]) -> str:
        """The account the body names, or the engine's first."""
        account = str(body.get("account") or next(iter(services.engine.accounts)))
        if account not in services.engine.accounts:
            raise web.HTTPError(404, f"Account {account!r} not found")
        return account


class KeysHandler(UserHandler):
    """API keys: GET lists, POST creates (the plain key is in this one answer only),
    DELETE revokes."""

    @web.authenticated
    @authorized
    async def get(self, key_id: str = "") -> None:
        services = self.services()
        account = self.get_query_argument("account", None)
        assert services.engine.state is not None
        keys = await asyncio.to_thread(list_keys, services.engine.state, account)
        self.finish(json.dumps({"status": "success", "data": [k.to_json() for k in keys]}))

    @web.authenticated
    @authorized
    async def post(self, key_id: str = "") -> None:
        services = self.services()
        body = self.body_object()
        account = self.account_of(services, body)
        scope = str(body.get("scope") or "trading")
        label = str(body.get("label") or "")
        state = services.engine.state
        assert state is not None
        try:
            key = await asyncio.to_thread(
                create_key, state, account, scope, label, pepper=services.pepper
            )
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        self.set_status(201)
        self.finish(
            json.dumps(
                {
                    "status": "success",
                    "apikey": key,
                    "key_id": api_key_id(key),
                    "account": account,
                    "scope": scope,
                    "label": label,
                }
            )
        )

    @web.authenticated
    @authorized
    async def delete(self, key_id: str = "") -> None:
        services = self.services()
        key_id = key_id or self.get_query_argument("key_id", "")
        if not key_id:
            raise web.HTTPError(400, "Name the key to revoke: DELETE /openalgo/keys/<key_id>")
        state = services.engine.state
        assert state is not None
        try:
            info = await asyncio.to_thread(revoke_key, state, key_id)
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        services.gate.verifier.invalidate(key_id)
        self.finish(json.dumps({"status": "success", "data": info.to_json()}))


class TokenHandler(UserHandler):
    """`POST {base_url}openalgo/token` for the logged-in Jupyter user (token or cookie +
    XSRF): body `{"account"?, "scope"?: "read"|"trading", "ttl"?: seconds <= 3600}`."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        services = self.services()
        body = self.body_object()
        account = self.account_of(services, body)
        scope = body.get("scope") or "read"
        if scope not in SCOPES:
            raise web.HTTPError(400, f"scope must be 'read' or 'trading', got {scope!r}")
        ttl = requested_ttl(body.get("ttl"))
        token = issue_token(
            signing_secret(services.pepper), account=account, scope=scope, ttl_seconds=ttl
        )
        self.finish(
            json.dumps(
                {
                    "status": "success",
                    "token": token,
                    "expires_at": expires_at(token),
                    "account": account,
                    "scope": scope,
                }
            )
        )


def requested_ttl(value: Any) -> int:
    if value is None:
        return DEFAULT_TTL
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TTL:
        raise web.HTTPError(400, f"ttl must be whole seconds between 1 and {MAX_TTL}")
    return value


def user_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    return [
        (r"/openalgo/keys/?", KeysHandler),
        (r"/openalgo/keys/([A-Za-z0-9]+)/?", KeysHandler),
        (r"/openalgo/+token/?", TokenHandler),
    ]
