"""The Action Center's queue of semi-auto orders, as a Client reaches it (`client.approvals()`).

The queue is not an OpenAlgo API action: a webhook or strategy in semi-auto mode queues its
orders for a human, so an API key must not be able to approve them. The server serves the
queue to the logged-in Jupyter user at `{base_url}openalgo/actioncenter` (Jupyter auth), and an
embedded engine keeps it in its own state store. Each transport knows which way in it has:

* `EmbeddedQueue`: the engine in this process, called on the engine's own loop (as the server
  route does);
* `ServerQueue`: the server route, with the Jupyter server's token (a kernel's Client pays for
  its session tokens with that token, so it has one; otherwise pass the URL and token);
* `UnavailableQueue`: a Client holding only an API key, which says how to get in.

Approving goes through the engine with the idempotency key `actioncenter:<id>`, so approving
twice (two tabs, a double click) orders once. A refused decision (an unknown id, one already
decided) is an error body, `{"status": "error", "message": ...}`, as the route answers it;
a queue that cannot be reached raises `RuntimeError` with a readable message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from openalgo_lab.client.credentials import jupyter_auth
from openalgo_lab.domain.errors import OpenAlgoError

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Engine

JSON = dict[str, Any]
ROUTE = "openalgo/actioncenter"
DEFAULT_REJECT_REASON = "rejected by the user"


class ApprovalQueue(Protocol):
    def pending(self) -> list[JSON]:
        """The orders waiting for a decision, oldest first."""
        ...

    def approve(self, order_id: int) -> JSON:
        """Place the queued order; the answer is the order call's."""
        ...

    def reject(self, order_id: int, reason: str) -> JSON: ...


class EmbeddedQueue:
    """The Action Center of an engine running in this process."""

    def __init__(self, engine: Engine, run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
        self._engine = engine
        self._run = run  # runs a coroutine on the engine's loop and returns its result

    def pending(self) -> list[JSON]:
        from openalgo_lab.engine import action_center

        state = self._engine.state
        if state is None:
            raise RuntimeError("The embedded engine is not running")
        orders = self._run(asyncio.to_thread(action_center.list_orders, state))
        return [o.to_json() for o in orders]

    def approve(self, order_id: int) -> JSON:
        from openalgo_lab.engine import action_center

        return self._decide(action_center.approve(self._engine, order_id))

    def reject(self, order_id: int, reason: str) -> JSON:
        from openalgo_lab.engine import action_center

        reason = reason or DEFAULT_REJECT_REASON
        return self._decide(action_center.reject(self._engine, order_id, reason))

    def _decide(self, decision: Coroutine[Any, Any, JSON]) -> JSON:
        """The answer the server route gives: the order call's body, or an error body for
        a refused decision (unknown id, already decided)."""
        try:
            answer: JSON = self._run(decision)
        except OpenAlgoError as err:
            return {"status": "error", "message": err.message}
        answer.pop("http_status", None)
        return answer


class ServerQueue:
    """The Action Center route of a Jupyter server with the extension (`server` is its base
    URL, e.g. `http://127.0.0.1:8888/`; `token` its Jupyter token, "" when it has none)."""

    def __init__(self, server: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = server.rstrip("/") + "/" + ROUTE
        self._headers = jupyter_auth(token)
        self._timeout = timeout

    def __repr__(self) -> str:  # never the token
        return f"ServerQueue({self.url!r})"

    def _request(self, method: str, body: JSON | None = None) -> JSON:
        try:
            response = httpx.request(
                method, self.url, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as err:
            raise RuntimeError(f"the Action Center is unreachable: {err}") from None
        try:
            answer = response.json()
        except ValueError:
            raise RuntimeError(
                f"the Action Center answered HTTP {response.status_code} without JSON"
            ) from None
        if not isinstance(answer, dict):
            raise RuntimeError("the Action Center's answer is not an object")
        if response.status_code >= 400 and answer.get("status") != "error":
            message = answer.get("message") or answer.get("reason") or response.reason_phrase
            raise RuntimeError(f"HTTP {response.status_code}: {message}")
        return answer

    def pending(self) -> list[JSON]:
        data = self._request("GET").get("data")
        return [o for o in data if isinstance(o, dict)] if isinstance(data, list) else []

    def approve(self, order_id: int) -> JSON:
        return self._request("POST", {"id": order_id, "decision": "approve"})

    def reject(self, order_id: int, reason: str) -> JSON:
        body = {"id": order_id, "decision": "reject", "reason": reason or DEFAULT_REJECT_REASON}
        return self._request("POST", body)


class UnavailableQueue:
    """For a Client that cannot reach the queue: every call explains why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def pending(self) -> list[JSON]:
        raise RuntimeError(self.reason)

    def approve(self, order_id: int) -> JSON:
        raise RuntimeError(self.reason)

    def reject(self, order_id: int, reason: str) -> JSON:
        raise RuntimeError(self.reason)


NEEDS_JUPYTER = (
    "The Action Center is served to the Jupyter user at {base_url}openalgo/actioncenter, not "
    "to API keys: use a kernel's connect() (it holds the Jupyter token), or "
    "ServerQueue(<Jupyter base URL>, <Jupyter token>) (Approvals(client, server=..., token=...))"
)
