"""The remote Client against a real `jupyter server` with the extension (tests/live_server.py),
side by side with the embedded Client: same calls, same shapes; events and ticks over the
real feed; discovery from a kernel's environment; idempotent orders; clean network errors.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import openalgo_lab
from openalgo_lab.client.api import Client
from openalgo_lab.client.credentials import SessionTokens
from openalgo_lab.client.discovery import find_parent_server
from openalgo_lab.client.feed import Feed
from openalgo_lab.client.remote import RemoteTransport
from tests.live_server import TOKEN, LiveServer, free_port, running_server

ORDER = {
    "strategy": "remote-test",
    "symbol": "SBIN",
    "exchange": "NSE",
    "action": "BUY",
    "price_type": "MARKET",
    "product": "MIS",
    "quantity": 1,
}
LIMITS = {
    "order_rate_limit": "1000 per second",
    "api_rate_limit": "1000 per second",
    "smart_order_rate_limit": "1000 per second",
}
WAIT = 10.0
Event = tuple[str, dict[str, Any]]


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-client")


@pytest.fixture(scope="module")
def server(server_root: Path) -> Iterator[LiveServer]:
    with running_server(server_root, LIMITS) as live:
        yield live


@pytest.fixture(scope="module")
def remote(server: LiveServer) -> Iterator[Client]:
    client = openalgo_lab.connect(server.url, server.key)
    yield client
    client.close()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data = tmp_path_factory.mktemp("embedded-data")
    client = openalgo_lab.connect(embedded=True, data_dir=data, market_hours="always")
    yield client
    client.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No parent server and no named server, whatever the environment running the tests."""
    for name in ("JPY_PARENT_PID", "OPENALGO_LAB_URL", "OPENALGO_LAB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and kinds, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def collector() -> tuple[list[Event], Callable[[str, Any], None]]:
    events: list[Event] = []
    lock = threading.Lock()

    def collect(topic: str, data: Any) -> None:
        with lock:
            events.append((topic, data))

    return events, collect


def of_order(events: list[Event], orderid: str, topic: str) -> list[dict[str, Any]]:
    return [data for t, data in list(events) if t == topic and data.get("orderid") == orderid]


def statuses(events: list[Event], orderid: str) -> list[str]:
    return [row["order_status"] for row in of_order(events, orderid, "order")]


# -- same calls, same shapes ---------------------------------------------------------------------
def test_order_and_books_have_the_embedded_shapes(remote: Client, embedded: Client) -> None:
    results = {}
    for name, client in (("remote", remote), ("embedded", embedded)):
        placed = client.placeorder(**ORDER)
        assert placed["status"] == "success", placed
        orderid = placed["orderid"]
        assert wait_for(
            lambda c=client, o=orderid: (
                c.orderstatus(order_id=o)["data"]["order_status"] == "complete"
            )
        )
        results[name] = {
            "placeorder": placed,
            "orderstatus": client.orderstatus(order_id=orderid, strategy="remote-test"),
            "orderbook": client.orderbook(),
            "tradebook": client.tradebook(),
            "positionbook": client.positionbook(),
            "holdings": client.holdings(),
            "funds": client.funds(),
            "openposition": client.openposition(
                strategy="remote-test", symbol="SBIN", exchange="NSE", product="MIS"
            ),
            "analyzer": client.analyzerstatus(),
        }
    for call, body in results["embedded"].items():
        assert shape(results["remote"][call]) == shape(body), call


def test_market_data_has_the_embedded_shapes(remote: Client, embedded: Client) -> None:
    def calls(client: Client) -> dict[str, Any]:
        return {
            "quotes": client.quotes(symbol="SBIN", exchange="NSE"),
            "multiquotes": client.multiquotes(
                symbols=[{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "X", "exchange": "NSE"}]
            ),
            "depth": client.depth(symbol="SBIN", exchange="NSE"),
            "symbol": client.symbol(symbol="SBIN", exchange="NSE"),
            "search": client.search(query="SBI"),
            "intervals": client.intervals(),
            "expiry": client.expiry(symbol="NIFTY", exchange="NFO", instrumenttype="options"),
            "holidays": client.holidays(year=2026),
        }

    remote_out, embedded_out = calls(remote), calls(embedded)
    for call, body in embedded_out.items():
        assert body["status"] == "success", (call, body)
        assert shape(remote_out[call]) == shape(body), call
    assert remote_out["intervals"] == embedded_out["intervals"]


def test_history_and_instruments_are_the_same_frames(remote: Client, embedded: Client) -> None:
    query = {"symbol": "SBIN", "exchange": "NSE", "interval": "5m"}
    dates = {"start_date": "2026-11-16", "end_date": "2026-11-20"}
    frames = [c.history(**query, **dates) for c in (remote, embedded)]
    assert all(isinstance(f, pd.DataFrame) and len(f) > 0 for f in frames), frames
    remote_frame, embedded_frame = frames
    assert isinstance(remote_frame, pd.DataFrame) and isinstance(embedded_frame, pd.DataFrame)
    assert list(remote_frame.columns) == list(embedded_frame.columns)
    assert str(remote_frame.index.tz) == str(embedded_frame.index.tz) == "Asia/Kolkata"
    assert remote_frame.dtypes.to_dict() == embedded_frame.dtypes.to_dict()

    remote_nse = remote.instruments(exchange="NSE")
    embedded_nse = embedded.instruments(exchange="NSE")
    assert isinstance(remote_nse, pd.DataFrame) and isinstance(embedded_nse, pd.DataFrame)
    assert list(remote_nse.columns) == list(embedded_nse.columns) and len(remote_nse) > 0


def test_errors_are_the_same_on_both(remote: Client, embedded: Client) -> None:
    cases: list[tuple[str, Callable[[Client], dict[str, Any]]]] = [
        ("unknown symbol", lambda c: c.quotes(symbol="NOSUCH", exchange="NSE")),
        ("bad symbol order", lambda c: c.placeorder(**{**ORDER, "symbol": "NOSUCH"})),
        ("bad quantity", lambda c: c.placeorder(**{**ORDER, "quantity": -1})),
        ("bad exchange", lambda c: c.quotes(symbol="SBIN", exchange="MOON")),
        ("unknown order", lambda c: c.orderstatus(order_id="999")),
    ]
    for name, call in cases:
        remote_body, embedded_body = call(remote), call(embedded)
        assert remote_body["status"] == "error", (name, remote_body)
        assert remote_body["code"] == embedded_body["code"], (name, remote_body, embedded_body)
        assert remote_body["message"] == embedded_body["message"], name
    bad = remote.placeorder(**{**ORDER, "symbol": "NOSUCH"})
    assert bad["code"] == 400 and "NOSUCH not found on NSE" in bad["message"]


def test_an_api_key_client_has_no_action_center(remote: Client) -> None:
    """Semi-auto orders wait for a human: the queue is the Jupyter user's, not an API key's."""
    queue = remote.approvals()
    with pytest.raises(RuntimeError, match="not to API keys"):
        queue.pending()
    with pytest.raises(RuntimeError, match="Jupyter token"):
        queue.approve(1)


def test_bad_api_key_is_the_servers_403(server: LiveServer) -> None:
    with openalgo_lab.connect(server.url, "0" * 64) as client:
        body = client.funds()
    assert body["status"] == "error" and body["code"] == 403
    assert body["message"] == "Invalid openalgo apikey"


# -- orders are never sent twice -----------------------------------------------------------------
def test_a_retry_with_the_same_key_places_one_order(remote: Client) -> None:
    key = uuid.uuid4().hex
    first = remote.placeorder(**ORDER, idempotency_key=key)
    again = remote.placeorder(**ORDER, idempotency_key=key)
    assert first["status"] == again["status"] == "success", (first, again)
    assert first["orderid"] == again["orderid"]
    orders = remote.orders_df()
    assert (orders["orderid"] == first["orderid"]).sum() == 1


def test_every_order_call_carries_a_fresh_key(remote: Client) -> None:
    """Without a caller's key, two calls are two orders (the transport never reuses a key),
    and an unusable key is refused before anything is sent."""
    first, second = remote.placeorder(**ORDER), remote.placeorder(**ORDER)
    assert first["orderid"] != second["orderid"]
    refused = remote.placeorder(**ORDER, idempotency_key="k" * 101)
    assert refused["status"] == "error" and refused["code"] == 400
    assert "idempotency_key" in refused["message"]


# -- network failures ----------------------------------------------------------------------------
def test_nothing_listening_is_a_connection_error_body() -> None:
    url = f"http://127.0.0.1:{free_port()}/openalgo"
    with openalgo_lab.connect(url, "k" * 64) as client:
        order = client.placeorder(**ORDER)
        quote = client.quotes(symbol="SBIN", exchange="NSE")
        frame = client.history(
            symbol="SBIN",
            exchange="NSE",
            interval="D",
            start_date="2026-11-02",
            end_date="2026-11-20",
        )
    assert order["status"] == "error" and order["code"] == 503
    assert order["error_type"] == "connection_error"
    assert "nothing was sent" in order["message"] and url in order["message"]
    assert quote["code"] == 503 and quote["error_type"] == "connection_error"
    assert isinstance(frame, dict) and frame["error_type"] == "connection_error"


class _Silent:
    """A TCP server that accepts and reads but never answers (a hung server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


def test_a_timed_out_order_names_the_key_to_retry_with() -> None:
    silent = _Silent()
    try:
        transport = RemoteTransport(
            f"http://127.0.0.1:{silent.port}/openalgo",
            openalgo_lab.client.credentials.ApiKey("k" * 64),
            timeout=0.5,
        )
        with Client(transport) as client:
            started = time.monotonic()
            body = client.placeorder(**ORDER, idempotency_key="order-1")
            elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert body["status"] == "error" and body["code"] == 504
    assert body["error_type"] == "timeout_error"
    assert body["idempotency_key"] == "order-1"
    assert "may have reached the server" in body["message"]
    assert elapsed < 2.0  # one attempt: an order is never retried automatically
    assert len(silent.connections) == 1


class _HtmlHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        page = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_non_json_answer_is_a_precise_error_body() -> None:
    httpd = HTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with openalgo_lab.connect(f"http://127.0.0.1:{httpd.server_port}/x", "k" * 64) as client:
            body = client.funds()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert body == {
        "status": "error",
        "message": "The server answered funds with HTTP 502 and a body that is not a JSON "
        "object (text/html): <html><body>502 Bad Gateway</body></html>",
        "error_type": "json_error",
        "code": 502,
    }


# -- events over the feed ------------------------------------------------------------------------
def test_order_and_trade_events_have_the_embedded_shapes(remote: Client, embedded: Client) -> None:
    got: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for name, client in (("remote", remote), ("embedded", embedded)):
        events, collect = collector()
        unsubscribe = client.subscribe(collect)
        try:
            orderid = client.placeorder(**ORDER)["orderid"]
            assert wait_for(
                lambda e=events, o=orderid: (
                    bool(of_order(e, o, "trade"))
                    and any(r["order_status"] == "complete" for r in of_order(e, o, "order"))
                )
            ), (name, events)
        finally:
            unsubscribe()
        order = next(r for r in of_order(events, orderid, "order") if r["filled_quantity"] == 1)
        got[name] = (order, of_order(events, orderid, "trade")[0])
    assert shape(got["remote"][0]) == shape(got["embedded"][0])
    assert shape(got["remote"][1]) == shape(got["embedded"][1])
    order, trade = got["remote"]
    assert order["account"] == trade["account"] == "default"
    assert trade["quantity"] == 1 and trade["orderid"] == order["orderid"]


def test_working_order_updates_arrive_and_topics_filter(remote: Client) -> None:
    orders, collect_orders = collector()
    trades, collect_trades = collector()
    stop_orders = remote.subscribe(collect_orders, {"order"})
    stop_trades = remote.subscribe(collect_trades, {"trade"})
    try:
        ltp = remote.quotes(symbol="SBIN", exchange="NSE")["data"]["ltp"]
        limit = round(ltp * 0.8, 1)
        placed = remote.placeorder(**{**ORDER, "price_type": "LIMIT", "price": limit})
        orderid = placed["orderid"]
        assert wait_for(
            lambda: any(r["order_status"] == "open" for r in of_order(orders, orderid, "order"))
        )
        assert remote.cancelorder(order_id=orderid)["status"] == "success"
        assert wait_for(
            lambda: any(
                r["order_status"] == "cancelled" for r in of_order(orders, orderid, "order")
            )
        )
    finally:
        stop_orders()
        stop_trades()
    assert all(topic == "order" for topic, _ in orders)
    assert all(topic == "trade" for topic, _ in trades)
    assert not of_order(trades, orderid, "trade")  # a cancelled order has no fills


def test_a_raising_callback_is_logged_and_the_feed_goes_on(
    remote: Client, caplog: pytest.LogCaptureFixture
) -> None:
    events, collect = collector()
    calls: list[str] = []

    def broken(topic: str, data: Any) -> None:
        calls.append(topic)
        raise ValueError("callback bug")

    stop_broken = remote.subscribe(broken, {"order"})
    stop_good = remote.subscribe(collect, {"order"})
    try:
        with caplog.at_level(logging.ERROR, logger="openalgo_lab.client.feed"):
            first = remote.placeorder(**ORDER)["orderid"]
            second = remote.placeorder(**ORDER)["orderid"]
            assert wait_for(lambda: bool(of_order(events, first, "order")))
            assert wait_for(lambda: bool(of_order(events, second, "order")))
    finally:
        stop_broken()
        stop_good()
    assert len(calls) >= 2
    assert any("callback raised" in r.message for r in caplog.records)


def test_a_callback_may_call_the_client(remote: Client, embedded: Client) -> None:
    """Refreshing a book from an event callback must not deadlock either transport."""
    for client in (remote, embedded):
        books: list[dict[str, Any]] = []

        def refresh(
            topic: str, data: Any, c: Client = client, b: list[dict[str, Any]] = books
        ) -> None:
            b.append(c.orderbook())

        unsubscribe = client.subscribe(refresh, {"trade"})
        try:
            orderid = client.placeorder(**ORDER)["orderid"]
            assert wait_for(lambda b=books, o=orderid: any(o in str(book) for book in b)), client
        finally:
            unsubscribe()
        assert all(book["status"] == "success" for book in books)


# -- ticks ---------------------------------------------------------------------------------------
def test_ticks_have_the_embedded_shapes(remote: Client, embedded: Client) -> None:
    symbols = [{"exchange": "NSE", "symbol": "SBIN"}]
    for mode in ("LTP", "Quote", "Depth"):
        got = []
        for client in (remote, embedded):
            ticks, collect = collector()
            unsubscribe = client.subscribe_ticks(symbols, mode, collect)
            try:
                assert wait_for(lambda t=ticks: bool(t)), (mode, client)
            finally:
                unsubscribe()
            topic, tick = ticks[0]
            assert topic == "tick" and tick["symbol"] == "SBIN" and tick["exchange"] == "NSE"
            assert tick["mode"] == mode and tick["ltp"] > 0
            got.append(tick)
        assert shape(got[0]) == shape(got[1]), mode
    assert len(got[0]["depth"]["buy"]) == 5


def test_unsubscribed_ticks_stop(remote: Client, embedded: Client) -> None:
    for client in (remote, embedded):
        ticks, collect = collector()
        unsubscribe = client.subscribe_ticks(
            [{"exchange": "NSE", "symbol": "INFY"}], "LTP", collect
        )
        assert wait_for(lambda t=ticks: bool(t))
        unsubscribe()
        time.sleep(0.3)  # anything already on its way
        count = len(ticks)
        time.sleep(1.2)  # the sandbox moves every second
        assert len(ticks) == count, client


def test_tick_requests_are_checked(remote: Client, embedded: Client) -> None:
    for client in (remote, embedded):
        with pytest.raises(ValueError, match="Symbol NOSUCH not found on NSE"):
            client.subscribe_ticks([{"exchange": "NSE", "symbol": "NOSUCH"}], "LTP", print)
        with pytest.raises(ValueError, match="mode must be"):
            client.subscribe_ticks([{"exchange": "NSE", "symbol": "SBIN"}], "Full", print)
        with pytest.raises(ValueError, match=r"symbols\[0\] needs both exchange and symbol"):
            client.subscribe_ticks([{"symbol": "SBIN"}], "LTP", print)
        with pytest.raises(TypeError, match="callback"):
            client.subscribe_ticks([{"exchange": "NSE", "symbol": "SBIN"}], "LTP")


def test_a_script_feed_runs_on_its_own_thread(remote: Client) -> None:
    threads: set[str] = set()
    unsubscribe = remote.subscribe(lambda topic, data: threads.add(threading.current_thread().name))
    try:
        feed = remote.transport.feed()  # type: ignore[attr-defined]
        assert isinstance(feed, Feed) and feed.on_private_loop
        assert wait_for(lambda: feed.status.connected)
        remote.placeorder(**ORDER)
        assert wait_for(lambda: bool(threads))
    finally:
        unsubscribe()
    assert threads == {"openalgo-lab-feed"}


# -- connect(): choosing the engine --------------------------------------------------------------
def test_connect_validates_its_arguments(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without an API key"):
        openalgo_lab.connect("http://127.0.0.1:1/openalgo")
    with pytest.raises(ValueError, match="without a url"):
        openalgo_lab.connect(api_key="k" * 64)
    with pytest.raises(ValueError, match="pass one or the other"):
        openalgo_lab.connect("http://127.0.0.1:1/openalgo", "k", embedded=True)
    with pytest.raises(ValueError, match="url must look like"):
        openalgo_lab.connect("127.0.0.1:8888", "k")
    with pytest.raises(ValueError, match="data_dir and market_hours configure the embedded"):
        openalgo_lab.connect("http://127.0.0.1:1/openalgo", "k", data_dir=tmp_path)
    with pytest.raises(
        RuntimeError, match=r"No OpenAlgo server to connect to\. Tried: not started"
    ):
        openalgo_lab.connect(embedded=False)


def test_connect_reads_the_environment(clean_env: pytest.MonkeyPatch, server: LiveServer) -> None:
    clean_env.setenv("OPENALGO_LAB_URL", server.url + "/")
    clean_env.setenv("OPENALGO_LAB_API_KEY", server.key)
    with openalgo_lab.connect() as client:
        assert isinstance(client.transport, RemoteTransport)
        assert client.transport.url == server.url
        assert client.funds()["status"] == "success"
    assert server.key not in repr(client)


def test_connect_without_a_server_runs_the_embedded_engine(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    clean_env.setenv("JPY_PARENT_PID", str(os.getpid()))  # a kernel of no server
    with openalgo_lab.connect(data_dir=tmp_path / "data", market_hours="always") as client:
        assert type(client.transport).__name__ == "EmbeddedTransport"
        assert client.funds()["status"] == "success"


# -- discovery from a kernel's environment -------------------------------------------------------
def server_info(root: Path, port: int) -> tuple[Path, int]:
    """The runtime file of the server on `port`, and the server's pid."""
    for path in (root / "runtime").glob("jpserver-*.json"):
        info = json.loads(path.read_text())
        if info.get("port") == port:
            return path, int(info["pid"])
    raise AssertionError(f"no runtime file for port {port} in {root / 'runtime'}")


def kernel_env(root: Path, server: LiveServer) -> dict[str, str]:
    """What a kernel launched by that server sees: its pid and the runtime directory."""
    _, pid = server_info(root, server.port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENALGO_LAB_", "JPY_"))}
    env.update(JPY_PARENT_PID=str(pid), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    return env


def test_discovery_finds_the_parent_server(server_root: Path, server: LiveServer) -> None:
    found = find_parent_server(kernel_env(server_root, server))
    assert found.server is not None, found.tried
    assert found.server.root == server.root
    assert found.server.openalgo_url == server.url
    assert found.server.token == TOKEN
    assert TOKEN not in repr(found.server)


DISCOVERY_SCRIPT = textwrap.dedent(
    """
    import json, time
    import openalgo_lab

    client = openalgo_lab.connect(embedded=False)
    events = []
    client.subscribe(lambda topic, data: events.append((topic, data)))
    placed = client.placeorder(strategy="kernel", symbol="SBIN", action="BUY",
                               exchange="NSE", price_type="MARKET", product="MIS", quantity=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(t == "trade" for t, _ in events):
        time.sleep(0.05)
    status = client.orderstatus(order_id=placed["orderid"], strategy="kernel")
    print(json.dumps({
        "repr": repr(client),
        "placed": placed,
        "status": status,
        "topics": [t for t, d in events if d.get("orderid") == placed["orderid"]],
    }))
    client.close()
    """
)


def test_connect_in_a_kernel_of_the_server_round_trips_an_order(
    server_root: Path, server: LiveServer
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DISCOVERY_SCRIPT],
        env=kernel_env(server_root, server),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "session tokens (trading) for default" in out["repr"]
    assert TOKEN not in out["repr"]
    assert out["placed"]["status"] == "success", out
    assert out["status"]["data"]["orderid"] == out["placed"]["orderid"]
    assert "order" in out["topics"] and "trade" in out["topics"], out


def test_session_tokens_are_renewed_before_they_expire(server: LiveServer) -> None:
    with httpx.Client() as http:
        tokens = SessionTokens(server.url + "/token", TOKEN, http, ttl=1)
        first = tokens.token()
        assert tokens.token() == first  # still fresh
        time.sleep(0.85)  # inside the renewal margin (a fifth of the life)
        second = tokens.token()
        assert second != first
        with Client(RemoteTransport(server.url, tokens, http=http)) as client:
            time.sleep(1.1)  # the first token is now expired at the server
            assert client.funds()["status"] == "success"
            assert tokens.renew_after(403, {"message": "Token has expired"})
            assert not tokens.renew_after(403, {"message": "Invalid openalgo apikey"})


def test_a_wrong_jupyter_token_is_a_clean_error(server: LiveServer) -> None:
    with httpx.Client() as http:
        tokens = SessionTokens(server.url + "/token", "wrong-token", http)
        with Client(RemoteTransport(server.url, tokens, http=http)) as client:
            body = client.funds()
    assert body["status"] == "error" and body["code"] == 403
    assert body["error_type"] == "auth_error"
    assert "refused a session token" in body["message"] and "wrong-token" not in body["message"]


@pytest.mark.slow  # a server of its own
def test_discovery_works_with_a_server_without_a_token(tmp_path: Path) -> None:
    """`--IdentityProvider.token=''` (authentication disabled): the token route still needs
    XSRF on a POST, which the client satisfies itself."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENALGO_LAB_", "JPY_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        OPENALGO_LAB_DATA_DIR=str(tmp_path / "data"),
        OPENALGO_LAB_MARKET_HOURS="always",
    )
    command = [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser"]
    command += [f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"]
    command += ["--IdentityProvider.token=", f"--ServerApp.root_dir={tmp_path}"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/openalgo"
        assert wait_for(lambda: _answers(url), timeout=60), (tmp_path / "server.log").read_text()
        env["JPY_PARENT_PID"] = str(process.pid)
        script = "import openalgo_lab; c = openalgo_lab.connect(embedded=False); print(c.funds())"
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "'status': 'success'" in done.stdout
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return httpx.post(f"{url}/api/v1/ping", json={}, timeout=2).status_code == 401
    except httpx.TransportError:
        return False


def test_the_feed_can_live_elsewhere(clean_env: pytest.MonkeyPatch, server: LiveServer) -> None:
    """OpenAlgo serves its feed on its own port: OPENALGO_LAB_WS_URL says where."""
    dead = f"ws://127.0.0.1:{free_port()}"
    clean_env.setenv("OPENALGO_LAB_URL", server.url)
    clean_env.setenv("OPENALGO_LAB_API_KEY", server.key)
    clean_env.setenv("OPENALGO_LAB_WS_URL", dead)
    with openalgo_lab.connect() as client:
        assert client.transport.feed_url == dead  # type: ignore[attr-defined]
        client.subscribe(lambda topic, data: None)
        feed = client.transport.feed()  # type: ignore[attr-defined]
        assert wait_for(lambda: dead in feed.status.last_error)
        assert not feed.status.connected
        assert client.funds()["status"] == "success"  # REST is unaffected
    clean_env.setenv("OPENALGO_LAB_WS_URL", "http://example.com/ws")
    with pytest.raises(ValueError, match="ws_url must look like"):
        openalgo_lab.connect()
