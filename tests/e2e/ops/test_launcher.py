"""`moodstream up` runs the whole stack: predictions reach the database, the dashboard answers, and SIGTERM
stops every child process (no orphans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, text

from ops.localhost import free_port

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(text("SELECT count(*) FROM predictions")).scalar() or 0)
    except Exception:
        return 0
    finally:
        engine.dispose()


def test_up_fills_the_database_and_stops_cleanly(tmp_path: Path, pg_url: str) -> None:
    dash_port, serve_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")},
        "MOODSTREAM_DATABASE_URL": pg_url,
        "MOODSTREAM_SERVE_PORT": str(serve_port),
        "MOODSTREAM_DASHBOARD_PORT": str(dash_port),
        "MOODSTREAM_WORKER_WEB_PORT": str(free_port()),
        "MOODSTREAM_KAFKA_PARTITIONS": "2",
        "COLUMNS": "200",
    }
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "up", "--rate", "10", "--run-dir", str(tmp_path / "run")],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 420
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= _descendants(proc.pid)
            stored = _count(pg_url)
            if stored >= 5:
                break
            time.sleep(2)
        assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        assert stored >= 5, "no predictions arrived; " + (tmp_path / "up.log").read_text()[-3000:]
        assert httpx.get(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{serve_port}/healthz", timeout=5).status_code == 200
        seen |= _descendants(proc.pid)
        assert len(seen) >= 4  # serve, worker, dashboard, publisher at least
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    out = (tmp_path / "up.log").read_text()
    assert proc.returncode == 0, out[-3000:]
    assert "stopped" in out
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in seen):
        time.sleep(0.5)
    orphans = [p for p in seen if _alive(p)]
    assert not orphans, f"processes left behind: {orphans}"
    assert _count(pg_url) >= stored
