"""Which Jupyter server started this kernel, and how to reach it.

A running Jupyter server writes `jpserver-<pid>.json` (its URL parts, base_url and token) in
the Jupyter runtime directory, and the kernels it launches get its pid in `JPY_PARENT_PID`.
Matching the two finds *our* server even when several run on the machine, without guessing
by port. The runtime files are only read here, never cleaned up (`list_running_servers`
deletes files it thinks stale, which is not a client's business).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "localhost"})


@dataclass(frozen=True)
class JupyterServer:
    """A Jupyter server as its runtime file describes it."""

    root: str  # http://127.0.0.1:8888/base/ (ends with a slash)
    token: str = field(repr=False)
    pid: int
    info_file: Path

    @property
    def openalgo_url(self) -> str:
        """Where the extension serves OpenAlgo's API (the official client's `host`)."""
        return self.root + "openalgo"


@dataclass
class Discovery:
    """The parent server if found, and what was looked at (for error messages)."""

    server: JupyterServer | None = None
    tried: list[str] = field(default_factory=list)


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """Jupyter's runtime directory (honours `JUPYTER_RUNTIME_DIR`)."""
    env = os.environ if env is None else env
    given = env.get("JUPYTER_RUNTIME_DIR")
    if given:
        return Path(given)
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def find_parent_server(env: Mapping[str, str] | None = None) -> Discovery:
    """The Jupyter server whose pid is this kernel's `JPY_PARENT_PID`."""
    env = os.environ if env is None else env
    found = Discovery()
    raw_pid = env.get("JPY_PARENT_PID", "").strip()
    if not raw_pid:
        found.tried.append("not started by a Jupyter server (no JPY_PARENT_PID)")
        return found
    if not raw_pid.isdigit():
        found.tried.append(f"JPY_PARENT_PID is not a process id: {raw_pid!r}")
        return found
    pid = int(raw_pid)
    directory = runtime_dir(env)
    files = sorted(directory.glob("jpserver-*.json")) if directory.is_dir() else []
    for path in files:
        info = read_info(path)
        if info is not None and info.get("pid") == pid:
            server = server_from_info(info, path)
            if isinstance(server, str):
                found.tried.append(server)
            else:
                found.server = server
            return found
    found.tried.append(f"no jpserver-*.json with pid {pid} in {directory}")
    return found


def read_info(path: Path) -> dict[str, object] | None:
    """A runtime file's content; None while it is being written or when unreadable."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def server_from_info(info: Mapping[str, object], path: Path) -> JupyterServer | str:
    """The server a runtime file describes, or why it cannot be reached from here."""
    if info.get("sock"):
        return f"the Jupyter server in {path.name} listens on a Unix socket, not supported"
    port = info.get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        return f"{path.name} has no usable port: {port!r}"
    host = str(info.get("hostname") or "")
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if info.get("secure") else "http"
    base_url = "/" + str(info.get("base_url") or "/").strip("/")
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    token = info.get("token")
    pid = info.get("pid")
    return JupyterServer(
        root=f"{scheme}://{host}:{port}{base_url}",
        token=token if isinstance(token, str) else "",
        pid=pid if isinstance(pid, int) else 0,
        info_file=path,
    )
