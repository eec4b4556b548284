"""Stream test helpers: polling, a worker subprocess, publishing and reading topics, small SQL reads."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def wait_for(cond: Callable[[], Any], timeout: float, what: str | Callable[[], str], every: float = 0.2,
             worker: WorkerProcess | None = None) -> Any:
    """Poll ``cond`` until truthy; fail with ``what`` after ``timeout`` seconds (or at once if ``worker`` died)."""
    deadline = time.monotonic() + timeout
    while True:
        if worker is not None and not worker.alive():
            pytest.fail(f"the worker exited while waiting for {what() if callable(what) else what}\n{worker.tail()}")
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(every)


def settings_from(env: dict[str, str]) -> Any:
    """A ``Settings`` built from a test's environment (nothing from the process env or .env)."""
    from moodstream.config import Settings

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings(_env_file=None)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class WorkerProcess:
    """``moodstream worker`` in a subprocess (its own session, so SIGKILL takes the whole worker)."""

    def __init__(self, env: dict[str, str], model: str, log: Path) -> None:
        self.env = env
        self.model = model
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}  # --model may use testkit
        f = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "worker", "--model", self.model],
                                     cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        f.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def metric(self, name: str) -> float:
        """A counter from the worker's ``/metrics`` (summed over labels)."""
        import httpx

        port = self.env["MOODSTREAM_WORKER_WEB_PORT"]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2, trust_env=False).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))


class ServeWorker(WorkerProcess):
    """``moodstream worker --classifier serve``: the models are a Ray Serve app reached through a handle (the env
    names the cluster: ``MOODSTREAM_RAY_ADDRESS``, ``MOODSTREAM_SERVE_APP_NAME``)."""

    def start(self) -> ServeWorker:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "worker", "--classifier", "serve"],
                                         cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self


def publish(env: dict[str, str], items: list[Any], rate: float = 0.0) -> int:
    """Publish post dicts / raw bytes / (key, value) to the test's posts topic."""
    from moodstream.kafka import aiokafka_config
    from ops.producers.publisher import publish as run

    s = settings_from(env)
    return asyncio.run(run(items, aiokafka_config(s), s.topic_posts, rate=rate, progress=False))


def read_topic(bootstrap: str, topic: str, n: int, timeout: float = 20.0) -> list[Any]:
    """Read ``n`` messages from the start of ``topic`` (fewer when the time runs out)."""
    from aiokafka import AIOKafkaConsumer

    async def go() -> list[Any]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
        await c.start()
        out: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            while len(out) < n and time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    out.extend(msgs)
        finally:
            await c.stop()
        return out

    return asyncio.run(go())


def scalar(engine: Any, sql: str) -> Any:
    from sqlalchemy import text

    try:
        with engine.connect() as c:
            return c.execute(text(sql)).scalar()
    except Exception:  # table not created yet (the worker migrates on start)
        return None


def rows(engine: Any, sql: str) -> list[Any]:
    """All rows of a query (connection closed after)."""
    from sqlalchemy import text

    with engine.connect() as c:
        return list(c.execute(text(sql)).all())
