"""Widget updates inside a real IPython kernel run on the kernel's own loop thread.

Engine events arrive on another thread; in a kernel the panels hand them to the kernel's
IOLoop. This starts a real kernel (jupyter_client), builds an order book there on an embedded
engine, places an order, lets the kernel's loop turn, and checks the row showed up and every
widget update ran on the kernel's main thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel() -> Iterator[BlockingKernelClient]:
    manager: KernelManager
    manager, client = start_new_kernel(startup_timeout=60)
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run(client: BlockingKernelClient, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            out.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, output_hook=hook, timeout=60)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def test_updates_are_applied_on_the_kernel_thread(
    kernel: BlockingKernelClient, tmp_path: Path
) -> None:
    setup = f"""
import asyncio, json, threading
import openalgo_lab
from openalgo_lab.widgets import OrderBook
client = openalgo_lab.connect(embedded=True, data_dir={str(tmp_path)!r}, market_hours="always")
book = OrderBook(client)
threads = set()
book.table.html.observe(lambda change: threads.add(threading.current_thread().name), "value")
orderid = client.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1)["orderid"]
print(json.dumps({{"marshalled": book.ui.marshalled}}))
"""
    assert json.loads(run(kernel, setup)) == {"marshalled": True}
    check = """
for _ in range(100):  # the kernel's loop runs the queued updates while this cell awaits
    if orderid in book.table.html.value and book.row(orderid)["order_status"] == "complete":
        break
    await asyncio.sleep(0.05)
print(json.dumps({"shown": orderid in book.table.html.value, "threads": sorted(threads)}))
book.close()
client.close()
"""
    result = json.loads(run(kernel, check))
    assert result == {"shown": True, "threads": ["MainThread"]}
