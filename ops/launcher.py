"""`moodstream up`: the whole system on one machine, started in order with readiness checks.

Broker (embedded Tansu unless ``MOODSTREAM_KAFKA_BROKERS`` is set) → database (migrated) → Redis (if set) →
Ray Serve → Faust worker → dashboard → publisher. Every child runs in its own process group and dies with
this process (``PR_SET_PDEATHSIG``); Ctrl-C or SIGTERM stops them in reverse order: the publisher first, then
the worker (which finishes and commits its batch), then the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moodstream.config import Settings
from ops.broker import EmbeddedBroker
from ops.localhost import die_with_parent, free_port, port_open
from serving.auth import InsecureBindError, check_bind
from streams.topics import create_topics

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A component did not become ready; the message says which and where its log is."""


@dataclass
class Child:
    """A supervised child process with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        logf = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, preexec_fn=_child_setup)
        logf.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group (e.g. Ray workers)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _child_setup() -> None:  # pragma: no cover - runs in the child
    os.setsid()
    die_with_parent()


@dataclass
class Stack:
    """The local stack's components and how to reach them."""

    settings: Settings
    run_dir: Path
    replay: Path | None = None
    synthetic: bool = False  # the synthetic feed instead of the demo feed (when there is no replay)
    rate: float = 5.0
    with_dashboard: bool = True
    with_publisher: bool = True
    broker: EmbeddedBroker | None = None
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    # ---- start ---------------------------------------------------------------------------------------

    def start(self, on_step: Callable[[str], None] = lambda _m: None) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        s = self.settings
        if not s.serve_url:  # refuse at once, before the broker and the models, rather than when serve exits
            try:
                check_bind(s.serve_host, s.api_token)
            except InsecureBindError as e:
                raise StartupError(str(e)) from None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        on_step("broker")
        if s.kafka_brokers:
            bootstrap = s.kafka_brokers
        else:
            port = 9092 if not port_open("127.0.0.1", 9092) else free_port()
            self.broker = EmbeddedBroker(port=port, log_path=self.run_dir / "broker.log").start()
            bootstrap = self.broker.bootstrap
        create_topics(bootstrap, s.topics.values(), s.kafka_partitions)
        self.env["MOODSTREAM_KAFKA_BROKERS"] = bootstrap

        on_step("database")
        from storage.migrate import upgrade

        upgrade(s.database_url)

        if s.redis_url:
            on_step("redis")
            import redis

            redis.Redis.from_url(s.redis_url, socket_connect_timeout=3).ping()

        on_step("serve")
        serve_url = s.serve_url or f"http://{s.serve_host}:{s.serve_port}"
        if not s.serve_url:
            self._spawn("serve", ["serve"])
            self._wait_http(serve_url + "/healthz", "serve", timeout=600)
            self.env["MOODSTREAM_SERVE_URL"] = serve_url

        on_step("worker")
        self._spawn("worker", ["worker"])
        if s.worker_web_port:
            self._wait_http(f"http://127.0.0.1:{s.worker_web_port}/metrics", "worker", timeout=300)
        else:
            self._wait(self._worker_ready, "worker", timeout=300)

        if self.with_dashboard:
            on_step("dashboard")
            self._spawn("dashboard", ["dashboard", "--port", str(s.dashboard_port), "--host", s.dashboard_host])
            self._wait_http(f"http://{s.dashboard_host}:{s.dashboard_port}/_stcore/health", "dashboard", 120)

        if self.with_publisher:
            on_step("publisher")
            src = ["--jsonl", str(self.replay)] if self.replay and self.replay.is_file() else (
                ["--mvsa", str(self.replay)] if self.replay else
                ["--synthetic" if self.synthetic else "--demo", "--count", "1000000"])
            self._spawn("publisher", ["publish", *src, "--rate", str(self.rate), "--no-progress"])

    def _spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, [sys.executable, "-m", "ops.cli", *args], self.run_dir / f"{name}.log")
        child.start(self.env)
        self.children.append(child)
        return child

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _wait(self, ready: Callable[[], bool], name: str, timeout: float) -> None:
        child = self._child(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise StartupError("interrupted")
            if not child.alive():
                raise StartupError(f"{name} exited during start-up; last lines of {child.log_path}:\n{child.tail()}")
            if ready():
                return
            time.sleep(0.5)
        raise StartupError(f"{name} was not ready after {timeout:.0f}s; see {child.log_path}")

    def _wait_http(self, url: str, name: str, timeout: float) -> None:
        import httpx

        def ok() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait(ok, name, timeout)

    def _worker_ready(self) -> bool:
        """Without a web port: Faust logs 'Ready' once the worker has started."""
        return "ready" in self._child("worker").tail(200).lower()

    # ---- status --------------------------------------------------------------------------------------

    def status(self, engine: object | None = None) -> dict[str, float]:
        """Published (end offsets of posts), classified (rows), dead-lettered (end offsets of the DLQ)."""
        from streams.topics import end_offsets_total

        s = self.settings
        bootstrap = self.env["MOODSTREAM_KAFKA_BROKERS"]
        published = end_offsets_total(bootstrap, s.topic_posts)
        dead = end_offsets_total(bootstrap, s.topic_dlq)
        classified = 0
        if engine is not None:
            from sqlalchemy import text

            with engine.connect() as c:  # type: ignore[attr-defined]
                classified = int(c.execute(text("SELECT count(*) FROM predictions")).scalar() or 0)
        return {"published": published, "classified": classified, "dead_lettered": dead}

    # ---- stop ----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Reverse order: publisher, worker (drains), dashboard, serve; then the broker."""
        self.stopping.set()
        grace = {"worker": 30.0, "serve": 30.0}
        for child in reversed(self.children):
            child.stop(grace.get(child.name, 10.0))
        if self.broker is not None:
            self.broker.close()
            self.broker = None

    def dead_children(self) -> list[Child]:
        return [c for c in self.children if not c.alive()]
