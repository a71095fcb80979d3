"""One engine per data directory: the lock refuses a second holder, here or in another process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from openalgo_lab.domain.errors import OpenAlgoError
from openalgo_lab.store.lock import LOCK_FILE, DataDirLock, EngineLockedError, read_holder

HOLD = """
import sys
from openalgo_lab.store.lock import DataDirLock
lock = DataDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.readline()
"""

TRY = """
import sys
from openalgo_lab.store.lock import DataDirLock, EngineLockedError
try:
    DataDirLock(sys.argv[1]).acquire()
except EngineLockedError as err:
    print(err.message)
    sys.exit(3)
print("acquired")
"""


def holder_process(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def try_in_subprocess(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TRY, str(path)], capture_output=True, text=True, timeout=60
    )


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    lock_path = tmp_path / LOCK_FILE
    with DataDirLock(lock_path) as first:
        assert first.held and read_holder(lock_path) == os.getpid()
        with pytest.raises(EngineLockedError) as refused:
            DataDirLock(lock_path).acquire()
        error = refused.value
        assert error.holder == os.getpid() and error.directory == tmp_path
        assert str(tmp_path) in error.message and f"process {os.getpid()}" in error.message
        assert isinstance(error, OpenAlgoError)
        assert first.acquire() is first  # re-entrant for the holder itself
    assert not first.held and read_holder(lock_path) is None
    with DataDirLock(lock_path):  # released on exit
        pass


def test_directory_path_means_its_lock_file(tmp_path: Path) -> None:
    with DataDirLock(tmp_path) as lock:
        assert lock.path == tmp_path / LOCK_FILE
        with pytest.raises(EngineLockedError):
            DataDirLock(tmp_path / LOCK_FILE).acquire()


def test_missing_data_directory_is_created(tmp_path: Path) -> None:
    with DataDirLock(tmp_path / "new" / LOCK_FILE) as lock:
        assert lock.path.exists()


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / LOCK_FILE
    child = holder_process(lock_path)
    try:
        with pytest.raises(EngineLockedError, match=f"process {child.pid}") as refused:
            DataDirLock(lock_path).acquire()
        assert str(tmp_path) in refused.value.message
    finally:
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.close()
        child.wait(timeout=30)
    with DataDirLock(lock_path):  # the child's exit released it
        pass


def test_another_process_is_refused_while_we_hold_it(tmp_path: Path) -> None:
    with DataDirLock(tmp_path):
        refused = try_in_subprocess(tmp_path)
        assert refused.returncode == 3, refused.stderr
        assert f"process {os.getpid()}" in refused.stdout and str(tmp_path) in refused.stdout
    assert try_in_subprocess(tmp_path).stdout.strip() == "acquired"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    child = holder_process(tmp_path / LOCK_FILE)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert read_holder(tmp_path / LOCK_FILE) == child.pid  # the stale PID is only a note
    with DataDirLock(tmp_path) as lock:
        assert read_holder(lock.path) == os.getpid()
