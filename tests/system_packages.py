"""Debian packages the system tests need (PostgreSQL, Chromium), installed when missing.

Each test set-up that needs a system program looks for it first and, only when it is absent,
installs its Debian package with apt-get. pytest-xdist workers take turns through a file lock,
so apt's own lock is never contended; a stale package list is refreshed once and the install
retried. What cannot be had becomes an exception whose message is the test's skip reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
APT_LOCK = Path(tempfile.gettempdir()) / "openalgo-lab-apt.lock"


class Unavailable(Exception):
    """A system program could not be had; the message says why."""


def run_checked(
    command: list[str],
    what: str,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    error: type[Unavailable] = Unavailable,
) -> None:
    """Run `command`; any failure becomes `error` naming `what` and its last line of output."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what} did not finish within {timeout:.0f} s") from None
    except OSError as err:
        raise error(f"{what} could not run: {err}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()
        last = output[-1] if output else "no output"
        raise error(f"{what} failed (exit {done.returncode}): {last}")


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (across processes) for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apt_install(
    package: str,
    find: Callable[[], T | None],
    *,
    error: type[Unavailable],
    timeout: float,
) -> T:
    """What `find` finds once Debian's `package` is installed (installing it if needed)."""
    if os.geteuid() != 0:
        raise error(f"{package} is not installed, and not root to apt-get install it")
    apt = shutil.which("apt-get")
    if apt is None:
        raise error(f"{package} is not installed, and there is no apt-get to install it")
    with exclusive(APT_LOCK):
        if (found := find()) is not None:
            return found
        install = [apt, "install", "-y", "-q", "--no-install-recommends", package]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        what = f"apt-get install {package}"
        try:
            run_checked(install, what, timeout=timeout, env=env, error=error)
        except Unavailable:  # a stale or absent package list is the usual cause
            run_checked(
                [apt, "update", "-q"], "apt-get update", timeout=timeout, env=env, error=error
            )
            run_checked(install, what, timeout=timeout, env=env, error=error)
    found = find()
    if found is None:
        raise error(f"apt-get installed {package} but its programs are still not found")
    return found
