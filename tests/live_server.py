"""A real `jupyter server` with the extension, in a subprocess, for tests that must reach the
OpenAlgo routes the way outside callers do (official clients, fuzzing, the feed).

`running_server(root, app_config)` starts one on a free loopback port with its own config,
runtime and data directories, waits until the extension's engine answers, creates a trading
API key through the Jupyter-authenticated key route, and stops the server afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TOKEN = "openalgo-lab-test-token"
BASE_URL = "/lab/"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class LiveServer:
    url: str  # the `host` an OpenAlgo client is given: http://127.0.0.1:PORT/lab/openalgo
    key: str
    port: int

    @property
    def root(self) -> str:
        """The server's base URL: http://127.0.0.1:PORT/lab/"""
        return f"http://127.0.0.1:{self.port}{BASE_URL}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the extension's engine answers (503 means the server is up, the engine not)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter server exited with {process.returncode}")
        try:
            if httpx.post(f"{url}/api/v1/ping", json={}, timeout=2).status_code == 401:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the OpenAlgo API did not come up within {START_TIMEOUT} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(root: Path, app_config: dict[str, Any] | None = None) -> Iterator[LiveServer]:
    port = free_port()
    config = {
        "ServerApp": {
            "jpserver_extensions": {"openalgo_lab.server_ext": True},
            "base_url": BASE_URL,
            "port": port,
            "port_retries": 0,
            "ip": "127.0.0.1",
            "open_browser": False,
            "root_dir": str(root),
            "allow_root": True,
        },
        "IdentityProvider": {"token": TOKEN},
        "OpenAlgoLabApp": {
            "data_dir": str(root / "data"),
            "market_hours": "always",
            **(app_config or {}),
        },
    }
    (root / "jupyter_server_config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENALGO_LAB_")}
    env.update(
        JUPYTER_CONFIG_DIR=str(root),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTER_DATA_DIR=str(root / "jupyter-data"),
    )
    log_path = root / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--config={root / 'jupyter_server_config.json'}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}{BASE_URL}openalgo"
        try:
            _wait_until_serving(url, process)
            created = httpx.post(
                f"{url}/keys",
                json={"scope": "trading", "label": "tests"},
                headers={"Authorization": f"token {TOKEN}"},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            yield LiveServer(url, created.json()["apikey"], port)
        except Exception:
            log.flush()
            print(log_path.read_text(errors="replace")[-5000:])
            raise
        finally:
            _stop(process)
