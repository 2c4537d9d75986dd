"""`make run` end to end: web, workers and beat come up; Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from config.localservices import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def _descendants(root: int) -> dict[int, str]:
    """Every live process below `root` (honcho puts its children in sessions of their own)."""
    listing = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True)
    children: dict[int, list[tuple[int, str]]] = {}
    for line in listing.stdout.splitlines():
        pid_text, ppid_text, command = line.split(None, 2)
        children.setdefault(int(ppid_text), []).append((int(pid_text), command))
    found: dict[int, str] = {}
    pending = [root]
    while pending:
        for child, command in children.get(pending.pop(), []):
            found[child] = command
            pending.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.add(pid)
    return alive


def _wait_for_ready(url: str, process: subprocess.Popen[str], timeout: float) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"make run exited early with {process.returncode}:\n{output[-4000:]}")
        try:
            response = requests.get(f"{url}/readyz", timeout=2)
            if response.status_code == 200:
                return response
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    raise AssertionError("the system did not become ready in time")


def test_local_run_serves_and_stops_cleanly(tmp_path: Path) -> None:
    # given the embedded defaults: SQLite and an embedded Redis, on free ports
    web_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env |= {
        "WEB_PORT": str(web_port),
        "LOCAL_REDIS_PORT": str(free_port()),
        "LOCAL_RUN_DIR": str(tmp_path / "run"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "config.devstack"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{web_port}"
    tree: dict[int, str] = {}
    try:
        # when it is up
        ready = _wait_for_ready(url, process, timeout=90)
        # then
        assert ready.json()["checks"]["redis"] == "ok"
        assert ready.json()["checks"]["chain_rpc"] == "ok"
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{url}/api/v1/", timeout=5).status_code == 401
        login = requests.get(f"{url}/admin/login/", timeout=5)
        assert login.status_code == 200
        assert "id_password" in login.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tree = _descendants(process.pid)
            names = " ".join(tree.values())
            if names.count("celery -A config worker") >= 2 and "celery -A config beat" in names:
                break
            time.sleep(0.25)
        assert "celery -A config beat" in names
        assert "-Q chain" in names
        assert "-Q default,events,webhooks" in names
        assert "redis-server" in names
        assert "anvil" in names
    finally:
        # when Ctrl-C reaches the whole foreground group
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    # then nothing it started is left
    deadline = time.monotonic() + 20
    while _alive(set(tree)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {pid: tree[pid] for pid in _alive(set(tree))} == {}
    assert "password:" in output
    assert "Authorization: Token " in output
    assert (tmp_path / "run" / "chain.json").exists()
