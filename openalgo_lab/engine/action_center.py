"""The Action Center: orders a semi-auto strategy produced, waiting for a human to approve.

OpenAlgo keeps these in a `pending_orders` table. We keep each one as a row of the existing
`settings` table (key `actioncenter:order:<id>`, a JSON record) so the feature needs no
migration: the queue is small (a person approves it by hand), it must survive a restart of
the server, and the settings table is already transactional on every backend. Ids come from
a counter row updated in the same transaction as the insert. One server process owns a data
directory (the engine's lock file), so a process-wide lock is enough to serialise writers.

Approving places the stored order through `Engine.call` with the idempotency key
`actioncenter:<id>`, so approving twice (two browser tabs) orders once: the journal repeats
the first answer.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError, ValidationError
from openalgo_lab.store.state_models import Setting

if TYPE_CHECKING:
    from openalgo_lab.engine.engine import Engine
    from openalgo_lab.store.state import StateStore

JSON = dict[str, Any]
PREFIX = "actioncenter:order:"
SEQUENCE = "actioncenter:seq"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
QUEUEABLE = frozenset({"placeorder", "placesmartorder"})

_write_lock = threading.Lock()


class AlreadyDecided(OpenAlgoError):
    """Approving or rejecting an order that is no longer pending."""

    http_status = 409


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """One queued order and what became of it."""

    id: int
    account: str
    api_type: str
    order_data: JSON
    strategy: str
    status: str
    created_at: str
    decided_at: str | None = None
    reason: str = ""
    response: JSON | None = None
    dedupe_key: str = ""

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "dedupe_key": self.dedupe_key,
            "account": self.account,
            "api_type": self.api_type,
            "order_data": self.order_data,
            "strategy": self.strategy,
            "status": self.status,
            "created_at": self.created_at,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "response": self.response,
        }

    @classmethod
    def from_json(cls, value: JSON) -> PendingOrder:
        return cls(
            id=int(value["id"]),
            account=str(value["account"]),
            api_type=str(value["api_type"]),
            order_data=dict(value["order_data"]),
            strategy=str(value.get("strategy", "")),
            status=str(value["status"]),
            created_at=str(value["created_at"]),
            decided_at=value.get("decided_at"),
            reason=str(value.get("reason", "")),
            response=value.get("response"),
            dedupe_key=str(value.get("dedupe_key", "")),
        )


def pending_id(value: object) -> int:
    """A pending order's number as a caller gives it (an int, or digits as text): every way
    in (the route, an embedded Client) checks it here, with one message."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValidationError("id", f"must be the pending order's number, got {value!r}")


def _key(order_id: int) -> str:
    return f"{PREFIX}{pending_id(order_id):010d}"


def enqueue(
    state: StateStore,
    *,
    account: str,
    api_type: str,
    order_data: JSON,
    strategy: str,
    now: datetime,
    dedupe_key: str = "",
) -> PendingOrder:
    """Store a new pending order and return it with its id. An order with the same
    non-empty `dedupe_key` that is still pending is returned instead (a retried alert must
    not ask the user to approve the same order twice)."""
    if api_type not in QUEUEABLE:
        raise ValueError(f"{api_type} cannot be queued in the Action Center")
    with _write_lock, state.session() as session:
        if dedupe_key:
            query = select(Setting.value).where(Setting.key.startswith(PREFIX))
            for value in session.scalars(query):
                if value.get("dedupe_key") == dedupe_key and value.get("status") == PENDING:
                    return PendingOrder.from_json(value)
        seq = session.get(Setting, SEQUENCE)
        order_id = int(seq.value) + 1 if seq is not None else 1
        session.merge(Setting(key=SEQUENCE, value=order_id))
        order = PendingOrder(
            id=order_id,
            account=account,
            api_type=api_type,
            order_data=dict(order_data),
            strategy=strategy,
            status=PENDING,
            created_at=now.isoformat(),
            dedupe_key=dedupe_key,
        )
        session.add(Setting(key=_key(order_id), value=order.to_json()))
    return order


def list_orders(state: StateStore, status: str | None = PENDING) -> list[PendingOrder]:
    """Queued orders, oldest first; `status=None` lists decided ones too (the audit trail)."""
    query = select(Setting.value).where(Setting.key.startswith(PREFIX)).order_by(Setting.key)
    with state.session() as session:
        orders = [PendingOrder.from_json(value) for value in session.scalars(query)]
    return [o for o in orders if status is None or o.status == status]


def get_order(state: StateStore, order_id: int) -> PendingOrder:
    value = state.get_setting(_key(order_id))
    if value is None:
        raise NotFoundError(f"Pending order {order_id} not found")
    return PendingOrder.from_json(value)


def _decide(
    state: StateStore,
    order_id: int,
    status: str,
    now: datetime,
    *,
    reason: str = "",
    response: JSON | None = None,
    allow_from: tuple[str, ...] = (PENDING,),
) -> PendingOrder:
    with _write_lock, state.session() as session:
        row = session.get(Setting, _key(order_id))
        if row is None:
            raise NotFoundError(f"Pending order {order_id} not found")
        order = PendingOrder.from_json(row.value)
        if order.status not in allow_from:
            raise AlreadyDecided(f"Pending order {order_id} is already {order.status}")
        record = order.to_json() | {
            "status": status,
            "decided_at": now.isoformat(),
            "reason": reason,
            "response": response,
        }
        row.value = record
        return PendingOrder.from_json(record)


async def approve(engine: Engine, order_id: int) -> JSON:
    """Place a pending order and record the engine's answer; returns that answer's body
    (with its HTTP status under `http_status`). A failed placement stays visible as
    rejected with the engine's message, so the user sees why nothing was ordered."""
    state = _state(engine)
    order = await asyncio.to_thread(get_order, state, order_id)
    if order.status != PENDING:
        raise AlreadyDecided(f"Pending order {order_id} is already {order.status}")
    reply = await engine.call(
        order.api_type,
        order.order_data,
        account=order.account,
        idempotency_key=f"actioncenter:{order_id}",
    )
    status = APPROVED if reply.ok else REJECTED
    reason = "" if reply.ok else str(reply.body.get("message", ""))
    await asyncio.to_thread(
        _decide, state, order_id, status, engine.clock.now(), reason=reason, response=reply.body
    )
    return {**reply.body, "pending_order_id": order_id, "http_status": reply.status}


async def reject(engine: Engine, order_id: int, reason: str = "rejected by the user") -> JSON:
    """Drop a pending order without placing it."""
    state = _state(engine)
    order = await asyncio.to_thread(
        _decide, state, order_id, REJECTED, engine.clock.now(), reason=reason
    )
    return {"status": "success", "message": f"Order {order_id} rejected", "data": order.to_json()}


def _state(engine: Engine) -> StateStore:
    if engine.state is None:
        raise OpenAlgoError("The engine is not running")
    return engine.state
