"""The Binder demo (`binder/`), built the way repo2docker builds it, in a fresh environment.

repo2docker copies the repository, runs `pip install -r binder/requirements.txt` from its
root, then `binder/postBuild`; each launch runs `binder/start <command>`. This test does the
same on a copy of the checkout (HEAD, plus the working copies of `binder/` and `dashboards/`)
in a new virtual environment, then checks what a Binder user would meet: both server
extensions enabled, demo data seeded, and a JupyterLab started through `binder/start` whose
OpenAlgo API answers `ping` on the sandbox. Docker itself is not run (not available here);
what is not covered is repo2docker's own base image (the test stands in a plain venv).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live_server import TOKEN, _stop, _wait_until_serving, free_port

REPO = Path(__file__).resolve().parent.parent
WORKING_FOLDERS = ("binder", "dashboards")  # taken from the working tree, not HEAD
PIP_TIMEOUT = 600

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class BinderBuild:
    repo: Path  # the copy repo2docker would have at $REPO_DIR
    env: dict[str, str]  # PATH with the new environment first, a throwaway HOME

    def run(self, *command: str, timeout: float = 120, **extra: str) -> str:
        done = subprocess.run(
            list(command),
            cwd=self.repo,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output}"
        return output


def copy_checkout(target: Path) -> None:
    """HEAD as `git archive` gives it, with the working copies of WORKING_FOLDERS laid over."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    for folder in WORKING_FOLDERS:
        shutil.rmtree(target / folder, ignore_errors=True)
        shutil.copytree(
            REPO / folder,
            target / folder,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )


def build_environment(root: Path) -> dict[str, str]:
    """A new venv and the environment repo2docker's build steps run in: its bin first on
    PATH, a throwaway HOME (so Jupyter's user config and the default data directory are
    never the developer's), the developer's pip cache kept for speed."""
    venv = root / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    home = root / "home"
    home.mkdir()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OPENALGO_LAB_", "JUPYTER"))}
    keep.pop("VIRTUAL_ENV", None)
    keep.pop("PYTHONPATH", None)
    cache = Path(os.environ.get("PIP_CACHE_DIR") or Path.home() / ".cache" / "pip")
    return {
        **keep,
        "HOME": str(home),
        "PATH": f"{venv / 'bin'}{os.pathsep}{keep.get('PATH', '')}",
        "PIP_CACHE_DIR": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "VIRTUAL_ENV": str(venv),
    }


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BinderBuild]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the Binder build test copies the checkout with git: not a git checkout")
    root = tmp_path_factory.mktemp("binder")
    repo = root / "repo"
    copy_checkout(repo)
    build = BinderBuild(repo, build_environment(root))
    build.run("pip", "install", "-q", "-r", "binder/requirements.txt", timeout=PIP_TIMEOUT)
    build.run("binder/postBuild", timeout=300)
    yield build


def test_the_build_enables_both_server_extensions(binder: BinderBuild) -> None:
    listed = binder.run("jupyter", "server", "extension", "list")
    for extension in ("openalgo_lab.server_ext", "voila.server_extension"):
        plain = re.sub(r"\x1b\[[0-9;]*m", "", listed)  # jupyter colours its output
        assert re.search(rf"^\s*{re.escape(extension)} enabled$", plain, re.M), listed
        assert re.search(rf"^\s*{re.escape(extension)} .*OK$", plain, re.M), listed
    # installed from the copy, not linked to this checkout
    where = binder.run("python", "-I", "-c", "import openalgo_lab; print(openalgo_lab.__file__)")
    assert str(REPO) not in where and "site-packages" in where, where


def test_the_build_seeds_the_demo_data(binder: BinderBuild) -> None:
    data = binder.repo / "data"
    assert (data / "history.duckdb").is_file() and (data / "state.db").is_file()
    # a week of demo orders, each acknowledged in the journal
    listed = binder.run("openalgo-lab", "journal", "-n", "50", OPENALGO_LAB_DATA_DIR=str(data))
    assert listed.count("acknowledged") >= 20, listed


def test_start_sets_the_demo_environment_and_seeds_a_missing_data_dir(
    binder: BinderBuild, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh-home-volume"
    shown = binder.run("binder/start", "env", OPENALGO_LAB_DATA_DIR=str(fresh))
    variables = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    assert variables["OPENALGO_LAB_MARKET_HOURS"] == "always"
    assert variables["OPENALGO_LAB_DATA_DIR"] == str(fresh)
    assert (fresh / "history.duckdb").is_file(), shown
    # without the variable the demo lands in the repository's data/, seeded by postBuild
    env = {k: v for k, v in binder.env.items() if k != "OPENALGO_LAB_DATA_DIR"}
    shown = binder.run("binder/start", "printenv", "OPENALGO_LAB_DATA_DIR", **env)
    assert shown.strip() == str(binder.repo / "data")


def test_jupyterlab_started_through_start_answers_ping(binder: BinderBuild) -> None:
    port = free_port()
    command = [
        "binder/start",
        "jupyter",
        "lab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        "--no-browser",
        "--allow-root",
        f"--IdentityProvider.token={TOKEN}",
        "--ServerApp.base_url=/lab/",
    ]
    log = binder.repo.parent / "start.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=binder.repo, env=binder.env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}/lab/openalgo"
            _wait_until_serving(url, process)
            auth = {"Authorization": f"token {TOKEN}"}
            created = httpx.post(f"{url}/keys", json={"scope": "read"}, headers=auth, timeout=30)
            assert created.status_code == 201, created.text
            key = created.json()["apikey"]
            pong = httpx.post(f"{url}/api/v1/ping", json={"apikey": key}, timeout=30)
            assert pong.status_code == 200 and pong.json()["status"] == "success", pong.text
            # the sandbox trades at any hour: the demo's environment reached the engine
            quote = httpx.post(
                f"{url}/api/v1/quotes",
                json={"apikey": key, "symbol": "SBIN", "exchange": "NSE"},
                timeout=30,
            )
            assert quote.status_code == 200 and quote.json()["data"]["ltp"] > 0, quote.text
            # Voila is served by the same server, where the Binder dashboard badge points
            page = httpx.get(
                f"http://127.0.0.1:{port}/lab/voila/tree/dashboards", headers=auth, timeout=30
            )
            assert page.status_code == 200, page.text[:500]
        except BaseException:
            out.flush()
            print(log.read_text(errors="replace")[-6000:])
            raise
        finally:
            _stop(process)
