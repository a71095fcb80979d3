"""The `openalgo-lab` command: demo seeding through the engine, search, accounts, journal."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from openalgo_lab.cli import main


def test_demo_seeds_history_through_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path), "demo", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert "fills over 2 trading days" in out
    with duckdb.connect(str(tmp_path / "history.duckdb"), read_only=True) as db:
        rows = db.sql("select strategy, count(*) from trades group by 1 order by 1").fetchall()
    strategies = {name for name, _ in rows}
    assert {"orb", "straddle", "swing"} <= strategies  # square-offs keep their strategy
    assert main(["--data-dir", str(tmp_path), "journal", "-n", "5"]) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "journal", "--in-flight"]) == 0
    assert "no in-flight orders" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "accounts"]) == 0
    assert "default" in capsys.readouterr().out


def test_instrument_search(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["instruments", "search", "reliance", "-e", "nse", "-n", "3"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "RELIANCE" in first and "NSE" in first


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--days", "0"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_api_keys_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "apikey", "create", "--label", "ci"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key.splitlines()) == 1 and len(key) >= 32  # only the key on stdout
    assert main(["--data-dir", str(tmp_path), "apikey", "list"]) == 0
    listed = capsys.readouterr().out
    assert "active" in listed and "ci" in listed and key not in listed
    key_id = listed.split()[0]
    assert main(["--data-dir", str(tmp_path), "apikey", "revoke", key_id]) == 0
    assert main(["--data-dir", str(tmp_path), "apikey", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["--data-dir", str(tmp_path), "apikey", "revoke", "nope"]) == 2
    assert "not found" in capsys.readouterr().err


def test_run_demo_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A notebook cell runs inside the kernel's event loop, where asyncio.run() is refused."""
    import asyncio
    from datetime import date

    from openalgo_lab.demo import run_demo

    async def cell() -> int:
        report = run_demo(tmp_path, days=1, today=date(2026, 11, 21), progress=False)
        return report.trades

    assert asyncio.run(cell()) > 0
    with duckdb.connect(str(tmp_path / "history.duckdb"), read_only=True) as db:
        days = db.sql("select distinct day from trades").fetchall()
    assert days == [(date(2026, 11, 20),)]


def test_run_demo_refuses_a_bad_day_count(tmp_path: Path) -> None:
    from openalgo_lab.demo import run_demo

    with pytest.raises(ValueError, match="days must be between 1 and 30, got 0"):
        run_demo(tmp_path, days=0)
    assert not (tmp_path / "history.duckdb").exists()
