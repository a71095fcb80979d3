"""Calls from a broker to this server: order postbacks, and the login redirect.

* `POST {base_url}openalgo/postback/<broker>/<account>`: the broker pushes an order update
  (Kite's postback: the order row as JSON, signed with sha256(order_id + order_timestamp +
  api_secret)). The account's live adapter checks the signature and feeds the update into
  its order updates, so the engine sees it at once instead of at the next poll; an update
  seen both ways is published once. The broker cannot send a Jupyter token, so the
  signature is the credential: a bad one is a 403 and changes nothing.
* `GET {base_url}openalgo/login/<broker>/<account>?request_token=...&status=success`: the
  redirect URL to register with the broker app. The user's browser lands here after the
  broker's login page, with the Jupyter login cookie, so this route uses Jupyter auth; it
  finishes the login and stores the day's token (encrypted).

The handlers are thin: parse, find the account's live adapter, hand over, answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError
from openalgo_lab.domain.models import OrderEvent
from openalgo_lab.server_ext.handlers import OpenAlgoHandler, error, parse_object
from openalgo_lab.server_ext.webhooks import LabHandler

if TYPE_CHECKING:
    from openalgo_lab.engine.accounts import LiveBroker
    from openalgo_lab.engine.engine import Engine

MAX_POSTBACK_BYTES = 64 * 1024  # a postback is one order row


@runtime_checkable
class PostbackReceiver(Protocol):
    """A live adapter that takes its broker's pushed order updates."""

    name: str

    async def accept_postback(self, payload: Mapping[str, Any]) -> list[OrderEvent]: ...


def _live_broker(engine: Engine, broker: str, account: str) -> LiveBroker:
    """The account's live adapter if it is `broker`'s; `NotFoundError` otherwise."""
    found = engine.accounts.get(account)
    if found is None or found.live is None or found.live.name != broker:
        raise NotFoundError(f"Account {account!r} has no {broker} broker")
    return found.live


class PostbackHandler(OpenAlgoHandler):
    """POST an order update from the broker (no API key: the broker signs the body)."""

    @allow_unauthenticated
    def get(self, broker: str, account: str) -> None:
        self.send(405, error("Brokers POST order updates here"))

    @allow_unauthenticated
    async def post(self, broker: str, account: str) -> None:
        if len(self.request.body) > MAX_POSTBACK_BYTES:
            self.send(413, error(f"A postback is at most {MAX_POSTBACK_BYTES} bytes"))
            return
        services = self.services()
        if services is None:
            return
        payload = parse_object(self.request.body)
        if isinstance(payload, str):
            self.send(400, error(payload))
            return
        try:
            live = _live_broker(services.engine, broker, account)
            if not isinstance(live, PostbackReceiver):
                raise NotFoundError(f"The {broker} adapter takes no postbacks")
            events = await live.accept_postback(payload)
        except OpenAlgoError as err:
            self.send(err.http_status, err.to_envelope())
            return
        self.send(200, {"status": "success", "events": len(events)})


class LoginRedirectHandler(LabHandler):
    """The broker app's redirect URL: finishes the day's login of one account."""

    @web.authenticated
    @authorized
    async def get(self, broker: str, account: str) -> None:
        engine = self.services().engine
        try:
            live = _live_broker(engine, broker, account)
            await live.complete_login(self.request.full_url())
        except OpenAlgoError as err:
            raise web.HTTPError(err.http_status, err.message) from None
        self.finish(
            json.dumps(
                {
                    "status": "success",
                    "message": f"Account {account!r} is logged in to {broker}",
                    "logged_in": live.logged_in,
                }
            )
        )


def postback_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """Routes relative to the server's base_url (the ExtensionApp prefixes it)."""
    return [
        (r"/openalgo/postback/([a-z0-9_]+)/([A-Za-z0-9_.\-]+)/?", PostbackHandler),
        (r"/openalgo/login/([a-z0-9_]+)/([A-Za-z0-9_.\-]+)/?", LoginRedirectHandler),
    ]
