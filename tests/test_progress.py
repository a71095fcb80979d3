"""Progress bars (openalgo_lab.progress): demo seeding, master-contract and history-file loads.

Bars go to stderr in a terminal and render as widgets in a notebook; stdout stays clean for
scripts. `progress=None` decides by itself: shown on a terminal (checked here with a real
pseudo-terminal) or in a notebook kernel (checked with a real kernel), hidden on a pipe.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from openalgo_lab.brokers.sandbox.replay import ReplayMarket
from openalgo_lab.cli import main
from openalgo_lab.domain.enums import Exchange
from openalgo_lab.instruments.master import load_csv, save_csv
from openalgo_lab.instruments.sample import sample_master
from openalgo_lab.progress import track

DAY = date(2026, 11, 21)
SUMMARY = "fills over 1 trading days"
REPO = Path(__file__).resolve().parents[1]


def _demo_args(data_dir: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data_dir), "demo", "--days", "1", *extra]


def test_cli_demo_with_progress_draws_on_stderr_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_demo_args(tmp_path, "--progress")) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and SUMMARY in out  # one summary line, nothing else
    assert "seeding paper trades" in err and "1/1" in err and "day=" in err


def test_cli_demo_without_a_terminal_stays_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # pytest's captured stderr is not a terminal: the default hides the bar
    assert main(_demo_args(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert SUMMARY in out and err == ""


def test_cli_progress_flags() -> None:
    from openalgo_lab.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["demo"]).progress is None
    assert parser.parse_args(["demo", "--progress"]).progress is True
    assert parser.parse_args(["demo", "--no-progress"]).progress is False


def test_cli_demo_on_a_terminal_shows_the_bar_by_default(tmp_path: Path) -> None:
    """A real child process whose stderr is a pseudo-terminal and whose stdout is a pipe."""
    leader, follower = pty.openpty()
    # a terminal 120 columns wide (a fresh pty has 0 columns, which tqdm draws as nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-m", "openalgo_lab.cli", *_demo_args(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=REPO,
    )
    os.close(follower)
    chunks: list[bytes] = []

    def drain() -> None:  # read the terminal while the child writes, until it closes
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = child.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    assert child.returncode == 0
    terminal = b"".join(chunks).decode(errors="replace")
    assert "seeding paper trades" in terminal and "1/1" in terminal
    assert out.decode().count("\n") == 1 and SUMMARY in out.decode()


def test_master_load_counts_rows_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = sample_master(DAY)
    path = tmp_path / "master.csv"
    save_csv(master, path)
    loaded = load_csv(path, progress=True)
    assert len(loaded) == len(master)
    err = capsys.readouterr().err
    assert "loading master.csv" in err and f"{len(master)} rows" in err
    assert len(load_csv(path, progress=False)) == len(master)
    assert capsys.readouterr().err == ""


def test_replay_history_load_counts_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {}
    for n, symbol in enumerate(("SBIN", "INFY")):
        path = tmp_path / f"{symbol}.csv"
        path.write_text(
            "timestamp,open,high,low,close,volume\n"
            f"2026-11-20T09:15:00,{100 + n},{101 + n},{99 + n},{100.5 + n},1000\n"
            f"2026-11-20T09:16:00,{100.5 + n},{102 + n},{100 + n},{101 + n},1200\n"
        )
        files[(Exchange.NSE, symbol)] = path
    market = ReplayMarket.from_csv(files, progress=True)
    assert market.interval_of(Exchange.NSE, "INFY").value == "1m"
    err = capsys.readouterr().err
    assert "loading history" in err and "2/2" in err


def test_a_bar_closes_when_the_consumer_stops_early(capsys: pytest.CaptureFixture[str]) -> None:
    from tqdm.std import tqdm

    items = track(range(10), desc="partial", unit="it", enabled=True)
    assert next(items) == 0 and next(items) == 1
    assert len(tqdm._instances) == 1  # type: ignore[attr-defined]
    items.close()  # what a `break` out of a for loop does
    assert len(tqdm._instances) == 0  # type: ignore[attr-defined]
    assert "partial" in capsys.readouterr().err


def test_in_a_notebook_kernel_the_bar_is_a_widget(tmp_path: Path) -> None:
    """`progress=None` in a real kernel: tqdm.auto draws an ipywidgets bar, not text."""
    path = tmp_path / "master.csv"
    save_csv(sample_master(DAY), path)
    source = (
        "from openalgo_lab.instruments.master import load_csv\n"
        f"master = load_csv({str(path)!r})\n"
        "len(master)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={}).execute()
    outputs = notebook.cells[0].outputs
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets, outputs
    assert "loading master.csv" in widgets[0]["data"]["text/plain"]
    assert outputs[-1]["data"]["text/plain"] == str(len(sample_master(DAY)))
