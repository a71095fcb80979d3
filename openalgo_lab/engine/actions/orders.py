"""Order actions: place, smart, modify, cancel, cancel all, close, basket, split.

Each parses its fields (errors name the field), then goes through the engine's `OrderRouter`,
which journals, checks risk and routes. Shapes follow OpenAlgo (reference §2.1).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from openalgo_lab.domain.enums import Action
from openalgo_lab.domain.errors import OpenAlgoError, ValidationError
from openalgo_lab.domain.models import OrderRequest
from openalgo_lab.domain.validation import parse_order_modification, parse_order_request
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, RateClass, action

MAX_SPLIT_ORDERS = 100
MAX_BASKET_ORDERS = 100


def _request(p: Payload) -> OrderRequest:
    return parse_order_request(p.data)


def _child_key(ctx: ActionContext, n: int) -> str:
    return f"{ctx.idempotency_key}:{n}" if ctx.idempotency_key else ""


@action("placeorder", rate=RateClass.ORDER, trading=True)
async def placeorder(ctx: ActionContext, p: Payload) -> JSON:
    """Place an order."""
    request = _request(p)
    placed = await ctx.engine.router.place(
        ctx.account, request, action="placeorder", idempotency_key=ctx.idempotency_key
    )
    return {"orderid": placed.orderid}


@action("placesmartorder", rate=RateClass.SMART_ORDER, trading=True)
async def placesmartorder(ctx: ActionContext, p: Payload) -> JSON:
    """Place an order that brings the net position to `position_size`."""
    data: dict[str, Any] = dict(p.data)
    if data.get("quantity") in (None, ""):
        raise ValidationError("quantity", "is required")
    target = p.integer("position_size")
    quantity = p.quantity("quantity", allow_zero=True)
    data["quantity"] = max(quantity, 1)  # parsed for its other fields; the size comes below
    base = parse_order_request(data)
    router = ctx.engine.router
    async with router.symbol_lock(ctx.account.name, base):
        current = 0
        for pos in await ctx.broker.positions():
            if (pos.symbol, pos.exchange, pos.product) == (
                base.symbol,
                base.exchange,
                base.product,
            ):
                current = pos.quantity
        if target == 0 and current == 0:
            if quantity == 0:
                return {"message": "No open position and quantity is 0. No action needed."}
            request = replace(base, quantity=quantity)
        else:
            delta = target - current
            if delta == 0:
                return {"message": "Positions Already Matched. No Action needed."}
            request = replace(
                base, action=Action.BUY if delta > 0 else Action.SELL, quantity=abs(delta)
            )
        placed = await router.place(
            ctx.account, request, action="placesmartorder", idempotency_key=ctx.idempotency_key
        )
    return {"orderid": placed.orderid}


@action("modifyorder", rate=RateClass.ORDER, trading=True)
async def modifyorder(ctx: ActionContext, p: Payload) -> JSON:
    """Modify a working order's quantity, price, trigger or price type."""
    orderid = p.text("orderid", max_length=64)
    change = parse_order_modification(p.data)
    order = await ctx.broker.modify_order(orderid, change)
    return {"orderid": order.orderid}


@action("cancelorder", rate=RateClass.ORDER, trading=True)
async def cancelorder(ctx: ActionContext, p: Payload) -> JSON:
    """Cancel a working order."""
    orderid = p.text("orderid", max_length=64)
    order = await ctx.broker.cancel_order(orderid)
    return {"orderid": order.orderid}


@action("cancelallorder", trading=True)
async def cancelallorder(ctx: ActionContext, p: Payload) -> JSON:
    """Cancel every working order of the account."""
    cancelled, failed = await ctx.broker.cancel_all_orders()
    return {
        "message": f"Canceled {len(cancelled)} orders. Failed to cancel {len(failed)} orders.",
        "canceled_orders": cancelled,
        "failed_cancellations": failed,
    }


@action("closeposition", trading=True)
async def closeposition(ctx: ActionContext, p: Payload) -> JSON:
    """Square off every open position at market, each in its own product."""
    positions = [pos for pos in await ctx.broker.positions() if pos.quantity]
    if not positions:
        return {"message": "No Open Positions Found"}
    await ctx.broker.close_all_positions()
    return {"message": "All Open Positions Squared Off"}


@action("basketorder", trading=True)
async def basketorder(ctx: ActionContext, p: Payload) -> JSON:
    """Place several orders; BUY legs go first (margin benefit on hedges)."""
    strategy = p.text("strategy", default="")
    legs = p.items("orders", maximum=MAX_BASKET_ORDERS)
    parsed: list[tuple[int, OrderRequest | OpenAlgoError]] = []
    for i, leg in enumerate(legs):
        data = dict(leg.data)
        data.setdefault("strategy", strategy)
        try:
            parsed.append((i, parse_order_request(data)))
        except ValidationError as err:
            parsed.append((i, ValidationError(f"orders[{i}].{err.field}", err.reason)))
    ordered = sorted(
        parsed,
        key=lambda item: (
            0 if isinstance(item[1], OrderRequest) and item[1].action is Action.BUY else 1
        ),
    )
    results: list[JSON | None] = [None] * len(parsed)
    for i, req in ordered:
        symbol = legs[i].data.get("symbol")
        if isinstance(req, OpenAlgoError):
            results[i] = {"symbol": symbol, "status": "error", "message": req.message}
            continue
        try:
            placed = await ctx.engine.router.place(
                ctx.account, req, action="basketorder", idempotency_key=_child_key(ctx, i)
            )
            results[i] = {"symbol": req.symbol, "status": "success", "orderid": placed.orderid}
        except OpenAlgoError as err:
            results[i] = {"symbol": req.symbol, "status": "error", "message": err.message}
    return {"results": results}


@action("splitorder", trading=True)
async def splitorder(ctx: ActionContext, p: Payload) -> JSON:
    """Split a large order into children of `splitsize` (the last carries the remainder)."""
    request = _request(p)
    size = p.integer("splitsize", minimum=1)
    count = -(-request.quantity // size)
    if count > MAX_SPLIT_ORDERS:
        raise ValidationError(
            "splitsize",
            f"{request.quantity} / {size} needs {count} orders; at most {MAX_SPLIT_ORDERS} allowed",
        )
    results = await place_children(ctx, request, size, action="splitorder")
    return {"split_size": size, "total_quantity": request.quantity, "results": results}


async def place_children(
    ctx: ActionContext, request: OrderRequest, size: int, *, action: str
) -> list[JSON]:
    """Place `request` as children of `size` units, in order; a failed child does not stop
    the rest. Shared by splitorder and optionsorder's split."""
    results: list[JSON] = []
    remaining, n = request.quantity, 0
    while remaining:
        n += 1
        qty = min(size, remaining)
        remaining -= qty
        try:
            placed = await ctx.engine.router.place(
                ctx.account,
                replace(request, quantity=qty),
                action=action,
                idempotency_key=_child_key(ctx, n),
            )
            results.append(
                {"order_num": n, "orderid": placed.orderid, "quantity": qty, "status": "success"}
            )
        except OpenAlgoError as err:
            results.append(
                {"order_num": n, "quantity": qty, "status": "error", "message": err.message}
            )
        await asyncio.sleep(0)  # let ticks and other requests run between children
    return results
