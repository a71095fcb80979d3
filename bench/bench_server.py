"""The served product end to end: a real `jupyter server` with the extension, loaded over loopback.

bench_engine measures the engine alone; this measures what a caller gets through HTTP and
WebSocket, so the figures include Tornado, Jupyter's handler stack, the API-key gate and
JSON on the wire. To tell the product's cost from the server's, the same server also runs a
bare Tornado JSON handler (bench/server_floor.py) and placeorder is reported as a share of it.
The load comes from this separate process, bounded in count and time; rate limits are off
(they would measure the limiter, not the path). Client and server share the machine's CPUs,
so the figures are a lower bound on what the server alone can do.

    python -m bench.bench_server [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tornado.websocket import WebSocketClientConnection, websocket_connect

BENCH_DIR = Path(__file__).resolve().parent
TOKEN = "bench-server-token"
BASE_URL = "/lab/"
START_TIMEOUT = 90.0
PHASE_TIMEOUT = 180.0  # no phase may run longer than this, whatever the counts
SYMBOLS = ("SBIN", "INFY", "RELIANCE", "ITC", "TCS", "LT", "HDFCBANK", "ICICIBANK")
RATE_LIMITS_OFF = {
    "OPENALGO_LAB_ORDER_RATE_LIMIT": "off",
    "OPENALGO_LAB_SMART_ORDER_RATE_LIMIT": "off",
    "OPENALGO_LAB_API_RATE_LIMIT": "off",
    "OPENALGO_LAB_WEBHOOK_RATE_LIMIT": "off",
}


@dataclass(frozen=True)
class Counts:
    orders: int  # placeorder requests per concurrency level
    floor: int  # floor requests per concurrency level
    alerts: int
    ws_clients: int
    ws_symbols: int
    ws_window: float  # seconds of fan-out measured, after the first ticks arrived


FULL = Counts(orders=3_000, floor=6_000, alerts=5_000, ws_clients=100, ws_symbols=50, ws_window=10)
QUICK = Counts(orders=200, floor=400, alerts=300, ws_clients=10, ws_symbols=10, ws_window=3)


@dataclass(frozen=True)
class Server:
    root: str  # http://127.0.0.1:PORT/lab/
    ws: str  # ws://127.0.0.1:PORT/lab/openalgo/ws
    key: str


@dataclass
class Run:
    """One closed-loop load run: every worker sends its next request when the last returns."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))] * 1000


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """Jupyter with the extension and the floor, a temp data dir, market always open."""
    config = {
        "ServerApp": {
            "jpserver_extensions": {"openalgo_lab.server_ext": True, "server_floor": True},
            "base_url": BASE_URL,
            "port": port,
            "port_retries": 0,
            "ip": "127.0.0.1",
            "open_browser": False,
            "root_dir": str(tmp),
            "allow_root": True,
            "log_level": "WARN",
        },
        "IdentityProvider": {"token": TOKEN},
        "OpenAlgoLabApp": {"data_dir": str(tmp / "data"), "market_hours": "always"},
    }
    (tmp / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENALGO_LAB_")}
    env.update(RATE_LIMITS_OFF)
    env.update(
        OPENALGO_LAB_MARKET_HOURS="always",
        PYTHONPATH=os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH", "")) if p),
        JUPYTER_CONFIG_DIR=str(tmp),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
    )
    log = (tmp / "server.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--config={tmp / 'config.json'}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_and_key(root: str, process: subprocess.Popen[bytes]) -> str:
    """Wait until the engine answers (401 to a keyless ping), then create a trading key."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the OpenAlgo API did not come up within {START_TIMEOUT:.0f} s")
        try:
            if httpx.post(f"{root}openalgo/api/v1/ping", json={}, timeout=2).status_code == 401:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    created = httpx.post(
        f"{root}openalgo/keys",
        json={"scope": "trading", "label": "bench"},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=30,
    )
    if created.status_code != 201:
        raise RuntimeError(f"could not create an API key: {created.status_code} {created.text}")
    return str(created.json()["apikey"])


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- HTTP load ---------------------------------------------------------------------------------
async def closed_loop(
    client: httpx.AsyncClient,
    n: int,
    concurrency: int,
    request: Callable[[int], Awaitable[httpx.Response]],
    ok: Callable[[httpx.Response], bool],
) -> Run:
    """n requests from `concurrency` workers over keep-alive connections, bounded in time."""
    run = Run()
    counter = iter(range(n))
    deadline = time.monotonic() + PHASE_TIMEOUT

    async def worker() -> None:
        for i in counter:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            try:
                response = await request(i)
                good = ok(response)
                detail = "" if good else f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as err:
                good, detail = False, repr(err)
            run.latencies.append(time.perf_counter() - t0)
            if not good:
                run.failures += 1
                run.first_failure = run.first_failure or detail

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    return run


def http_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=30)


def success(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("status") == "success"


async def placeorder_vs_floor(server: Server, counts: Counts) -> dict[int, tuple[Run, Run]]:
    api = f"{server.root}openalgo/api/v1/placeorder"
    floor = f"{server.root}bench/floor"
    results: dict[int, tuple[Run, Run]] = {}
    for concurrency in (1, 16):
        async with http_client(concurrency) as client:

            def order(i: int, c: int = concurrency, cl: httpx.AsyncClient = client) -> Any:
                body = {
                    "apikey": server.key,
                    "strategy": "bench",
                    "symbol": SYMBOLS[i % len(SYMBOLS)],
                    "exchange": "NSE",
                    "action": "BUY" if i % 2 else "SELL",
                    "quantity": "1",
                    "pricetype": "MARKET",
                    "product": "MIS",
                }
                return cl.post(api, json=body, headers={"Idempotency-Key": f"c{c}-{i}"})

            def bare(i: int, cl: httpx.AsyncClient = client) -> Any:
                return cl.post(floor, json={"apikey": server.key, "symbol": "SBIN", "n": i})

            await closed_loop(client, 50, concurrency, bare, success)  # warm the connections
            floor_run = await closed_loop(client, counts.floor, concurrency, bare, success)
            order_run = await closed_loop(client, counts.orders, concurrency, order, success)
            results[concurrency] = (order_run, floor_run)
    return results


# -- webhooks ----------------------------------------------------------------------------------
async def webhook_burst(server: Server, counts: Counts) -> tuple[Run, int, int]:
    """Alerts to one strategy (LONG mode, so every BUY alert is one placeorder), then the
    orderbook is counted for that strategy: returns the run, orders found, orders expected."""
    name = "bench-webhooks"
    created = httpx.post(
        f"{server.root}openalgo/strategies",
        json={
            "name": name,
            "mode": "LONG",
            "symbols": {
                s: {"symbol": s, "exchange": "NSE", "quantity": 1, "product": "MIS"}
                for s in SYMBOLS
            },
        },
        headers={"Authorization": f"token {TOKEN}"},
        timeout=30,
    )
    if created.status_code != 201:
        raise RuntimeError(f"could not create a strategy: {created.status_code} {created.text}")
    path = created.json()["webhook_path"]  # starts with the base_url
    url = f"{server.root.split(BASE_URL)[0]}{path}"
    async with http_client(16) as client:

        def alert(i: int) -> Any:
            # `alert_id` only makes the alerts distinct: identical bodies within the strategy's
            # dedupe window are, by design, one order.
            body = {"symbol": SYMBOLS[i % len(SYMBOLS)], "action": "BUY", "position_size": 1}
            return client.post(url, json=body | {"alert_id": i})

        run = await closed_loop(client, counts.alerts, 16, alert, success)
        book = await client.post(
            f"{server.root}openalgo/api/v1/orderbook", json={"apikey": server.key}
        )
    orders = book.json()["data"]["orders"]
    found = sum(1 for o in orders if o.get("strategy") == name)
    return run, found, len(run.latencies) - run.failures


# -- WebSocket fan-out -------------------------------------------------------------------------
async def feed_symbols(server: Server, n: int) -> list[tuple[str, str]]:
    """n (symbol, exchange) equities the sandbox knows, NSE first then BSE, so every
    subscription is a live stream."""
    found: dict[tuple[str, str], None] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for exchange in ("NSE", "BSE"):
            reply = await client.get(
                f"{server.root}openalgo/api/v1/instruments",
                params={"apikey": server.key, "exchange": exchange, "format": "json"},
            )
            for row in reply.json().get("data", []):
                if row.get("symbol"):
                    found[(str(row["symbol"]), exchange)] = None
            if len(found) >= n:
                break
    if len(found) < n:
        raise RuntimeError(f"only {len(found)} NSE/BSE symbols available, {n} wanted")
    return list(found)[:n]


@dataclass
class Feed:
    messages: int = 0
    lags: list[float] = field(default_factory=list)
    counting: bool = False
    errors: list[str] = field(default_factory=list)


async def feed_client(
    server: Server,
    symbols: list[tuple[str, str]],
    feed: Feed,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Authenticate, subscribe in mode 1 (LTP), then read until told to stop."""
    conn: WebSocketClientConnection = await websocket_connect(server.ws)
    try:
        conn.write_message(json.dumps({"action": "authenticate", "api_key": server.key}))
        subscribe = {
            "action": "subscribe",
            "symbols": [{"symbol": s, "exchange": e} for s, e in symbols],
            "mode": 1,
        }
        conn.write_message(json.dumps(subscribe))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(conn.read_message(), 1.0)
            except TimeoutError:
                continue
            if raw is None:
                feed.errors.append("closed by the server")
                return
            message = json.loads(raw)
            if message.get("type") != "market_data":
                if message.get("status") == "error":
                    feed.errors.append(str(message.get("message")))
                continue
            ready.set()
            if feed.counting:
                feed.messages += 1
                stamp = message.get("data", {}).get("timestamp")
                if isinstance(stamp, int | float):
                    feed.lags.append(time.time() * 1000 - stamp)
    finally:
        conn.close()


async def fan_out(server: Server, counts: Counts) -> tuple[Feed, float]:
    symbols = await feed_symbols(server, counts.ws_symbols)
    feed, ready, stop = Feed(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(feed_client(server, symbols, feed, ready, stop))
        for _ in range(counts.ws_clients)
    ]
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(1.0)  # let every client get past its first snapshot
        feed.counting = True
        started = time.perf_counter()
        await asyncio.sleep(counts.ws_window)
        feed.counting = False
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    return feed, elapsed


# -- report ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


async def measure(server: Server, counts: Counts) -> None:
    print("1. placeorder (paper) vs the floor (bare Tornado JSON handler, same server)")
    print(f"   {'':24}{'req':>7}{'fail':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    http = await placeorder_vs_floor(server, counts)
    for concurrency, (order, floor) in http.items():
        for label, run in (("placeorder", order), ("floor", floor)):
            print(
                f"   {label + f' @ c={concurrency}':24}{len(run.latencies):>7}{run.failures:>6}"
                f"{run.rate:>9,.0f}{run.pct(0.5):>9.2f}{run.pct(0.99):>9.2f}"
            )
            if run.first_failure:
                print(f"     first failure: {run.first_failure}")
        print(f"   placeorder/floor throughput @ c={concurrency}: {order.rate / floor.rate:.1%}")
    order16, floor16 = http[16]
    share, p99 = order16.rate / floor16.rate, order16.pct(0.99)
    print(f"   target @ c=16: >= 50% of floor ({share:.1%}) {verdict(share >= 0.5)}; ", end="")
    print(f"p99 <= 5 ms ({p99:.2f} ms) {verdict(p99 <= 5)}")

    print(f"2. webhook burst: {counts.alerts:,} distinct alerts, concurrency 16")
    run, found, accepted = await webhook_burst(server, counts)
    print(
        f"   accepted {accepted:,} of {len(run.latencies):,} ({run.failures} failed); "
        f"{run.rate:,.0f} alerts/s; p50 {run.pct(0.5):.2f} ms, p99 {run.pct(0.99):.2f} ms"
    )
    if run.first_failure:
        print(f"   first failure: {run.first_failure}")
    lost = accepted - found
    print(f"   orderbook holds {found:,} orders of the strategy for {accepted:,} accepted alerts")
    none_lost = lost == 0 and run.failures == 0 and len(run.latencies) == counts.alerts
    print(f"   target: >= 1,000 alerts/s ({run.rate:,.0f}) {verdict(run.rate >= 1000)}; ", end="")
    print(f"none lost ({lost} lost, {run.failures} failed) {verdict(none_lost)}")

    n = counts.ws_clients * counts.ws_symbols
    print(
        f"3. WebSocket fan-out: {counts.ws_clients} clients x {counts.ws_symbols} symbols "
        f"(LTP), {counts.ws_window:.0f} s window"
    )
    feed, elapsed = await fan_out(server, counts)
    rate = feed.messages / elapsed
    print(f"   {feed.messages:,} ticks in {elapsed:.1f} s: {rate:,.0f} messages/s", end="")
    print(f" ({rate / n:.2f} per stream per second over {n:,} streams)")
    if feed.errors:
        print(f"   client errors: {len(feed.errors)}, first: {feed.errors[0]}")
    target_lag = ""
    if feed.lags:
        lags = Run(latencies=[x / 1000 for x in feed.lags])
        lag99 = lags.pct(0.99)
        print(
            f"   lag (receive time - tick timestamp): p50 {lags.pct(0.5):.1f} ms, "
            f"p99 {lag99:.1f} ms"
        )
        target_lag = f"p99 lag <= 50 ms ({lag99:.1f} ms) {verdict(lag99 <= 50)}"
    else:
        target_lag = "p99 lag <= 50 ms: NOT MEASURED (no timestamp in the ticks)"
    print(f"   target: >= 50,000 messages/s ({rate:,.0f}) {verdict(rate >= 50_000)}; {target_lag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    args = parser.parse_args()
    counts = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        process = start_server(tmp, port)
        try:
            root = f"http://127.0.0.1:{port}{BASE_URL}"
            key = wait_and_key(root, process)
            server = Server(root, f"ws://127.0.0.1:{port}{BASE_URL}openalgo/ws", key)
            print(f"jupyter server pid {process.pid} on 127.0.0.1:{port}, {os.cpu_count()} CPUs")
            asyncio.run(measure(server, counts))
        except BaseException:
            log = (tmp / "server.log").read_text(errors="replace")
            print(f"--- server log (tail) ---\n{log[-3000:]}", file=sys.stderr)
            raise
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
