"""Real servers in subprocesses, for tests that must reach the product the way outside callers
do (official clients, fuzzing, the feed, browsers).

`running_server(root, app_config)` is a `jupyter server` with our extension; `running_lab` is
`jupyter lab` as `./dev start` runs it (Voila included); `running_voila` is a standalone Voila
dashboard. Each gets a free loopback port and its own config, runtime and data directories;
the first two wait until the extension's engine answers and create a trading API key through
the Jupyter-authenticated key route. All are stopped afterwards, their log's tail printed if
the test failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
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


def _server_env(root: Path, data_dir: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The environment `./dev start` gives the server, and so its kernels: the data directory
    and market hours by variable (a kernel that falls back to an embedded engine then lands on
    the server's own, locked, directory rather than the user's home), Jupyter's directories
    under `root` so a test never reads or writes the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENALGO_LAB_")}
    env.update(
        JUPYTER_CONFIG_DIR=str(root),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTER_DATA_DIR=str(root / "jupyter-data"),
        OPENALGO_LAB_DATA_DIR=str(data_dir),
        OPENALGO_LAB_MARKET_HOURS="always",
    )
    env.update(extra or {})
    return env


@contextmanager
def _logged_process(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` with its output in `log_path`; print the log's tail if the body fails."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        except BaseException:
            log.flush()
            print(f"--- {log_path} ---\n" + log_path.read_text(errors="replace")[-8000:])
            raise
        finally:
            _stop(process)


def _serving(process: subprocess.Popen[bytes], port: int) -> LiveServer:
    """Once the engine answers: the server, with a trading key made through the
    Jupyter-authenticated key route."""
    url = f"http://127.0.0.1:{port}{BASE_URL}openalgo"
    _wait_until_serving(url, process)
    created = httpx.post(
        f"{url}/keys",
        json={"scope": "trading", "label": "tests"},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return LiveServer(url, created.json()["apikey"], port)


@contextmanager
def running_server(root: Path, app_config: dict[str, Any] | None = None) -> Iterator[LiveServer]:
    """`jupyter server` with only our extension, configured by a file (so `app_config` can
    set any `OpenAlgoLabApp` trait), its data under `root / "data"`."""
    port = free_port()
    data = root / "data"
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
        "OpenAlgoLabApp": {"data_dir": str(data), "market_hours": "always", **(app_config or {})},
    }
    config_path = root / "jupyter_server_config.json"
    config_path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "jupyter_server", f"--config={config_path}"]
    env = _server_env(root, data, None)
    with _logged_process(command, env, root / "server.log") as process:
        yield _serving(process, port)


@contextmanager
def running_lab(
    root: Path,
    *,
    root_dir: Path,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[LiveServer]:
    """`jupyter lab` as `./dev start` should run it: the server's root is `root_dir` (the
    repository, holding `notebooks/` and `dashboards/`), our extension and Voila's are on,
    so `{base_url}voila/render/dashboards/<name>.ipynb` serves a dashboard whose kernel
    reaches this server's engine. Yields the server with a trading API key."""
    port = free_port()
    data = data_dir or root / "data"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root_dir}",
        f"--ServerApp.base_url={BASE_URL}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={TOKEN}",
        "--LabApp.default_url=/lab/tree/notebooks/01-quickstart.ipynb",
    ]
    with _logged_process(command, _server_env(root, data, env), root / "lab.log") as process:
        yield _serving(process, port)


@dataclass(frozen=True)
class VoilaServer:
    port: int
    log: Path

    @property
    def root(self) -> str:
        """The dashboard's page: standalone Voila serves its one notebook at `/`."""
        return f"http://127.0.0.1:{self.port}/"


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until the port accepts connections (a GET of `/` would already run the dashboard)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"voila did not listen within {START_TIMEOUT} s")


@contextmanager
def running_voila(
    root: Path,
    notebook: Path,
    *,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[VoilaServer]:
    """Standalone `voila <notebook>` (no Jupyter server, so no extension: its kernels run an
    embedded engine on `data_dir`), on a free loopback port without a token."""
    port = free_port()
    data = data_dir or root / "data"
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    log_path = root / "voila.log"
    with _logged_process(command, _server_env(root, data, env), log_path) as process:
        _wait_until_listening(port, process)
        yield VoilaServer(port, log_path)
