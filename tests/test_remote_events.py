"""How the remote feed turns order updates and books into `order` and `trade` events
(`client.order_events.OrderTracker`): nothing before the baseline, nothing twice, nothing
older than what was already delivered."""

from __future__ import annotations

from typing import Any

from openalgo_lab.client.order_events import OrderTracker, order_row_of

JSON = dict[str, Any]


def row(orderid: str, status: str = "open", filled: int = 0, quantity: int = 10) -> JSON:
    return {
        "orderid": orderid,
        "symbol": "SBIN",
        "exchange": "NSE",
        "quantity": quantity,
        "order_status": status,
        "filled_quantity": filled,
        "pending_quantity": quantity - filled,
    }


def frame(orderid: str, status: str = "open", filled: int = 0) -> JSON:
    return {
        "type": "order_update",
        "user_id": "acct",
        "mode": "analyze",
        "broker": "sandbox",
        **row(orderid, status, filled),
    }


def trade(tradeid: str, orderid: str = "1", quantity: int = 5) -> JSON:
    return {"tradeid": tradeid, "orderid": orderid, "quantity": quantity, "average_price": 10.0}


def tracker(orders: list[JSON] | None = None, trades: list[JSON] | None = None) -> OrderTracker:
    tracked = OrderTracker(account="acct")
    tracked.baseline(orders or [], trades or [])
    return tracked


def test_a_frame_is_the_order_row_with_its_account() -> None:
    events, fills = tracker().on_frame(frame("1", "open", 0))
    assert events == [("order", {**row("1"), "account": "acct"})]
    assert not fills
    assert order_row_of(frame("1")) == row("1")


def test_a_rise_in_filled_quantity_asks_for_the_trade_book() -> None:
    tracked = tracker()
    assert tracked.on_frame(frame("1", "open", 0))[1] is False
    assert tracked.on_frame(frame("1", "open", 4))[1] is True
    assert tracked.on_frame(frame("1", "complete", 10))[1] is True
    assert tracked.on_frame(frame("1", "complete", 10))[1] is False
    assert tracker().on_frame(frame("2", "complete", 10))[1] is True  # first seen filled


def test_frames_are_delivered_as_they_come_when_no_book_row_intervened() -> None:
    tracked = tracker()
    first, _ = tracked.on_frame(frame("1", "open", 0))
    again, _ = tracked.on_frame(frame("1", "open", 0))  # e.g. a modification elsewhere
    assert len(first) == len(again) == 1


def test_frames_older_than_a_book_row_are_dropped() -> None:
    tracked = tracker([row("1", "open", 0)])
    caught_up, fills = tracked.on_order_book([row("1", "complete", 10)])
    assert [e["order_status"] for _, e in caught_up] == ["complete"] and fills
    stale, stale_fills = tracked.on_frame(frame("1", "open", 4))
    same, _ = tracked.on_frame(frame("1", "complete", 10))
    assert stale == [] and same == [] and not stale_fills


def test_the_book_after_a_reconnect_delivers_only_what_changed() -> None:
    tracked = tracker([row("1", "open", 0), row("2", "complete", 10)])
    events, fills = tracked.on_order_book(
        [row("1", "cancelled", 0), row("2", "complete", 10), row("3", "open", 0)]
    )
    assert [(e["orderid"], e["order_status"]) for _, e in events] == [
        ("1", "cancelled"),
        ("3", "open"),
    ]
    assert not fills
    assert all(e["account"] == "acct" for _, e in events)
    assert tracked.on_order_book([row("1", "cancelled", 0)]) == ([], False)


def test_a_book_older_than_the_frames_changes_nothing() -> None:
    tracked = tracker()
    tracked.on_frame(frame("1", "complete", 10))
    assert tracked.on_order_book([row("1", "open", 4)]) == ([], False)


def test_trades_are_delivered_once_and_never_from_the_baseline() -> None:
    tracked = tracker(trades=[trade("t1")])
    first = tracked.on_trade_book([trade("t1"), trade("t2"), trade("t3")])
    assert [e["tradeid"] for _, e in first] == ["t2", "t3"]
    assert all(topic == "trade" and e["account"] == "acct" for topic, e in first)
    assert tracked.on_trade_book([trade("t1"), trade("t2"), trade("t3")]) == []


def test_trades_without_an_id_are_told_apart_by_their_fields() -> None:
    tracked = tracker()
    a = {"orderid": "1", "quantity": 5, "average_price": 10.0, "timestamp": "09:15:01"}
    b = {**a, "timestamp": "09:15:02"}
    assert len(tracked.on_trade_book([a, b])) == 2
    assert tracked.on_trade_book([a, b]) == []


def test_reset_forgets_everything() -> None:
    tracked = tracker([row("1")], [trade("t1")])
    tracked.reset()
    assert not tracked.ready and not tracked.rows and not tracked.trades_seen


def test_completion_means_fills_where_rows_carry_no_fill_counts() -> None:
    """OpenAlgo's own order-book rows have no `filled_quantity`."""
    tracked = tracker()
    bare = {"type": "order_update", "orderid": "9", "order_status": "open"}
    assert tracked.on_frame(bare)[1] is False
    assert tracked.on_frame({**bare, "order_status": "complete"})[1] is True
    assert tracked.on_frame({**bare, "order_status": "complete"})[1] is False
