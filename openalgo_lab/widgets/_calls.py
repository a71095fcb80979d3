"""Client calls made by widgets, as values: a widget shows an error, it never raises one.

Every Client method answers with OpenAlgo's envelope (`status`, `message`, ...) and a
transport may also raise (a dropped connection, a closed engine); `attempt` turns both into an
`Outcome` a panel can show where the user is looking.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openalgo_lab.client.api import Client

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One call's answer: whether it succeeded, and the body (an error envelope if not)."""

    ok: bool
    body: JSON

    @property
    def message(self) -> str:
        text = str(self.body.get("message") or "")
        if self.ok:
            return text
        code = self.body.get("code")
        return f"{text or 'request failed'}" + (f" (HTTP {code})" if code else "")

    @property
    def data(self) -> Any:
        return self.body.get("data")


def failure(message: str) -> Outcome:
    return Outcome(False, {"status": "error", "message": message})


def attempt(fn: Callable[[], Any]) -> Outcome:
    """Run one Client call; exceptions and odd answers become a failed Outcome."""
    try:
        body = fn()
    except Exception as err:
        return failure(str(err) or type(err).__name__)
    if not isinstance(body, Mapping):
        return failure(f"unexpected answer from the server: {type(body).__name__}")
    return Outcome(body.get("status") == "success", dict(body))


def call_action(client: Client, action: str, payload: Mapping[str, Any]) -> Outcome:
    """Run one of our own actions the official client has no method for (`killswitch`,
    `traffic`), through the Client's single request path, so it works on every transport."""
    return attempt(lambda: client.call(action, payload))
