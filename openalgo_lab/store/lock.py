"""One Engine per data directory, enforced by the operating system.

Two engines on one directory would both write the DuckDB history (single-writer) and both
reconcile the same in-flight orders with the broker. An advisory lock held on an open file
cannot outlive its process, so a crash never leaves a stale lock behind, unlike a PID file
alone. The holder's PID is written into the file only so the second engine can say who holds
it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from openalgo_lab.domain.errors import OpenAlgoError

LOCK_FILE = "engine.lock"

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        # Lock one byte past any PID text, so others can still read who holds it.
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class EngineLockedError(OpenAlgoError):
    """Another engine (in this process or another one) already owns the data directory."""

    http_status = 503

    def __init__(self, directory: Path, holder: int | None) -> None:
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(
            f"The data directory {directory} is in use by another OpenAlgo Lab engine "
            f"({who}). Only one engine may run per data directory: stop that one, connect to "
            "it with openalgo_lab.connect(), or choose another directory with "
            "OPENALGO_LAB_DATA_DIR."
        )
        self.directory = directory
        self.holder = holder


class DataDirLock:
    """An exclusive, non-blocking lock on a data directory.

    `path` is the lock file (`EngineSettings.lock_path`) or the data directory itself. flock
    locks belong to an open file, not to a process, so a second `DataDirLock` in the same
    process is refused just like one in another process.
    """

    def __init__(self, path: Path | str) -> None:
        given = Path(path)
        self.path = given / LOCK_FILE if given.is_dir() else given
        self.directory = self.path.parent
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DataDirLock:
        if self._fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise EngineLockedError(self.directory, _wait_for_holder(self.path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear the PID before unlocking: after the unlock the next holder owns the file.
            os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        # An engine dropped without stopping must not keep its directory locked.
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self.release()


def _wait_for_holder(path: Path, attempts: int = 5) -> int | None:
    """The holder may have the lock but not yet its PID written: give it a few milliseconds."""
    for _ in range(attempts):
        holder = read_holder(path)
        if holder is not None:
            return holder
        time.sleep(0.01)
    return None


def read_holder(path: Path) -> int | None:
    """The PID recorded in a lock file, or None while it is being written or unreadable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
