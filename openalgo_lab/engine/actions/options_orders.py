"""Option orders by moneyness: optionsorder and optionsmultiorder (reference §2.1).

The contract is picked by `options.resolve_option` (ATM/ITMn/OTMn from the master's listed
strikes), then the order takes the normal path through the router, split into children when
`splitsize` asks for it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from openalgo_lab.domain.enums import Action, OptionType, Product
from openalgo_lab.domain.errors import OpenAlgoError, ValidationError
from openalgo_lab.domain.validation import parse_order_request
from openalgo_lab.engine.actions.options import ResolvedOption, resolve_option
from openalgo_lab.engine.actions.orders import MAX_SPLIT_ORDERS, place_children
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, RateClass, action

MAX_LEGS = 20


def _strike_int(p: Payload) -> Decimal | None:
    return p.decimal("strike_int") if p.has("strike_int") else None


def _leg_request(resolved: ResolvedOption, leg: Payload, strategy: str) -> Any:
    product = leg.enum(Product, "product", default=Product.MIS)
    if product is Product.CNC:
        raise ValidationError("product", "options orders take MIS or NRML, not CNC")
    data: dict[str, Any] = dict(leg.data)
    data.update(
        symbol=resolved.symbol,
        exchange=resolved.exchange.value,
        strategy=strategy,
        product=product.value,
    )
    return parse_order_request(data)


@action("optionsorder", rate=RateClass.ORDER, trading=True)
async def optionsorder(ctx: ActionContext, p: Payload) -> JSON:
    """Buy or sell the option `offset` strikes from the money."""
    strategy = p.text("strategy", default="")
    resolved = await resolve_option(
        ctx,
        p.text("underlying").upper(),
        p.exchange(),
        p.text("expiry_date", default="") or None,
        p.text("offset"),
        p.text("option_type"),
        _strike_int(p),
    )
    request = _leg_request(resolved, p, strategy)
    body: JSON = {
        "symbol": resolved.symbol,
        "exchange": resolved.exchange.value,
        "underlying": resolved.underlying,
        "underlying_ltp": float(resolved.underlying_ltp),
        "offset": resolved.offset,
        "option_type": resolved.option_type.value,
    }
    splitsize = p.integer("splitsize", default=0, minimum=0)
    if splitsize:
        if -(-request.quantity // splitsize) > MAX_SPLIT_ORDERS:
            raise ValidationError("splitsize", f"at most {MAX_SPLIT_ORDERS} orders allowed")
        results = await place_children(ctx, request, splitsize, action="optionsorder")
        body.update(total_quantity=request.quantity, split_size=splitsize, results=results)
        return body
    placed = await ctx.engine.router.place(
        ctx.account, request, action="optionsorder", idempotency_key=ctx.idempotency_key
    )
    return {"orderid": placed.orderid, **body}


@action("optionsmultiorder", rate=RateClass.ORDER, trading=True)
async def optionsmultiorder(ctx: ActionContext, p: Payload) -> JSON:
    """Several option legs on one underlying (spreads, straddles); BUY legs first."""
    strategy = p.text("strategy", default="")
    underlying = p.text("underlying").upper()
    exchange = p.exchange()
    default_expiry = p.text("expiry_date", default="") or None
    strike_int = _strike_int(p)
    legs = p.items("legs", maximum=MAX_LEGS)
    for i, leg in enumerate(legs):  # validate every leg before any order goes out
        for field in ("offset", "option_type", "action", "quantity"):
            if not leg.has(field):
                raise ValidationError(f"legs[{i}].{field}", "is required")
        leg.enum(OptionType, "option_type")
        leg.enum(Action, "action")
    first = await resolve_option(
        ctx,
        underlying,
        exchange,
        default_expiry,
        legs[0].text("offset"),
        legs[0].text("option_type"),
        strike_int,
    )
    ltp = first.underlying_ltp
    order = sorted(
        range(len(legs)), key=lambda i: 0 if legs[i].enum(Action, "action") is Action.BUY else 1
    )
    results: list[JSON | None] = [None] * len(legs)
    for i in order:
        leg = legs[i]
        row: JSON = {
            "leg": i + 1,
            "action": leg.enum(Action, "action").value,
            "offset": leg.text("offset"),
            "option_type": leg.enum(OptionType, "option_type").value,
        }
        try:
            resolved = await resolve_option(
                ctx,
                underlying,
                exchange,
                leg.text("expiry_date", default="") or default_expiry,
                leg.text("offset"),
                leg.text("option_type"),
                strike_int,
                underlying_ltp=ltp,
            )
            row["symbol"] = resolved.symbol
            request = _leg_request(resolved, leg, strategy)
            placed = await ctx.engine.router.place(
                ctx.account,
                request,
                action="optionsmultiorder",
                idempotency_key=f"{ctx.idempotency_key}:{i}" if ctx.idempotency_key else "",
            )
            row.update(status="success", orderid=placed.orderid)
        except OpenAlgoError as err:
            row.update(status="error", message=err.message)
        results[i] = row
    return {"underlying": first.underlying, "underlying_ltp": float(ltp), "results": results}
