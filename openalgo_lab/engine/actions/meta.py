"""Ping, analyzer mode and margin (reference §2.2, §2.6)."""

from __future__ import annotations

from decimal import Decimal

from openalgo_lab.brokers.sandbox.margin import margin_for_order
from openalgo_lab.domain.enums import Action, PriceType, Product
from openalgo_lab.domain.errors import ValidationError
from openalgo_lab.domain.validation import check_quantity_and_prices
from openalgo_lab.engine import views
from openalgo_lab.engine.actions.registry import JSON, ActionContext, Payload, action


@action("ping")
async def ping(ctx: ActionContext, p: Payload) -> JSON:
    """Check the key and the broker session."""
    return {"data": {"message": "pong", "broker": ctx.account.broker_name}}


def _analyzer_data(ctx: ActionContext) -> JSON:
    return {
        "analyze_mode": ctx.account.analyze,
        "mode": ctx.account.mode,
        "total_logs": ctx.engine.journal_count(ctx.account.name),
    }


@action("analyzer")
async def analyzer(ctx: ActionContext, p: Payload) -> JSON:
    """Whether the account trades on paper (analyze) or live."""
    return {"data": _analyzer_data(ctx)}


@action("analyzer/toggle", trading=True)
async def analyzer_toggle(ctx: ActionContext, p: Payload) -> JSON:
    """Switch the account between analyze (paper) and live."""
    ctx.engine.set_analyze(ctx.account.name, p.boolean("mode"))
    data = _analyzer_data(ctx)
    data["message"] = f"Analyzer mode switched to {ctx.account.mode}"
    return {"data": data, "mode": ctx.account.mode}


@action("margin")
async def margin(ctx: ActionContext, p: Payload) -> JSON:
    """Margin a basket of up to 50 positions would need (netted against open positions)."""
    legs = p.items("positions", maximum=50)
    positions = {
        (pos.exchange, pos.symbol, pos.product): pos.quantity
        for pos in await ctx.broker.positions()
    }
    total = Decimal(0)
    for i, leg in enumerate(legs):
        field = f"positions[{i}]"
        exchange = leg.exchange()
        symbol = leg.text("symbol").upper()
        inst = ctx.master.find(exchange, symbol)
        if inst is None:
            raise ValidationError(f"{field}.symbol", f"{symbol} not found on {exchange}")
        act = leg.enum(Action, "action")
        product = leg.enum(Product, "product")
        pricetype = leg.enum(PriceType, "pricetype", default=PriceType.MARKET)
        quantity = leg.quantity()
        price = leg.price("price")
        trigger = leg.price("trigger_price")
        check_quantity_and_prices(inst, product, quantity, pricetype, price, trigger)
        if price <= 0:
            quote = await ctx.data.quote(exchange, symbol)
            price = quote.ask if act is Action.BUY and quote.ask > 0 else quote.ltp
        underlying = None
        if inst.is_option and inst.underlying_exchange is not None:
            underlying = (await ctx.data.quote(inst.underlying_exchange, inst.underlying)).ltp
        key = (exchange, symbol, product)
        need = margin_for_order(
            inst,
            product,
            act,
            quantity,
            price,
            position_quantity=positions.get(key, 0),
            underlying_price=underlying,
        )
        positions[key] = positions.get(key, 0) + act.sign * quantity
        total += need
    return {
        "data": {
            "total_margin_required": views.money(total),
            "span_margin": views.money(total),
            "exposure_margin": 0.0,
        }
    }


@action("killswitch", trading=True)
async def killswitch(ctx: ActionContext, p: Payload) -> JSON:
    """Block (or unblock) new orders; optionally cancel all orders and close all positions."""
    data = await ctx.engine.kill(
        ctx.account.name,
        enabled=p.boolean("enabled", default=True),
        cancel_orders=p.boolean("cancel_orders", default=True),
        close_positions=p.boolean("close_positions", default=True),
    )
    return {"data": data}
