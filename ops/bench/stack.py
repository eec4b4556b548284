"""The real stack the end-to-end benchmark runs on, all of it private to one run.

Tansu (embedded; or ``MOODSTREAM_KAFKA_BROKERS`` with run-unique topic names), a fresh PostgreSQL database on the
configured server (created, migrated, dropped at the end), Redis with a run-unique key prefix (keys deleted at the
end), Ray Serve deployed in this process, the Faust worker and the naive peer as child processes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from moodstream.config import Settings
from ops.launcher import Child

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


class BenchError(RuntimeError):
    """A part of the stack would not start; the message says which and where its log is."""


def _server_url(settings: Settings) -> str:
    url = settings.database_url
    return url if url.startswith(("postgres://", "postgresql")) else DEFAULT_POSTGRES


def _with_db(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _psycopg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _spawn(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Child:
    """A supervised child (own process group, dies with this process), started."""
    child = Child(name, argv, log_path)
    child.start(env)
    return child


def wait_ready(child: Child, ready: Any, timeout: float) -> None:
    """Poll ``ready()`` until true; a clear error if the child exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited while starting; last lines of {child.log_path}:\n{child.tail()}")
        if ready():
            return
        time.sleep(0.5)
    raise BenchError(f"{child.name} was not ready after {timeout:.0f}s; see {child.log_path}:\n{child.tail()}")


class BenchStack:
    """Start the parts in order (``start_base``, ``start_serve``, ``start_worker``); ``close`` undoes all."""

    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.base = settings
        self.run_dir = run_dir
        self.tag = f"bench{os.getpid()}"
        self.broker: Any = None
        self.server_url = _server_url(settings)
        self.db_name = f"moodstream_{self.tag}"
        self.db_url = _with_db(self.server_url, self.db_name)
        self.redis_url: str | None = settings.redis_url or DEFAULT_REDIS
        self.runner: Any = None
        self.ray_address: str | None = None
        self.children: list[Child] = []
        self.settings = settings
        self.worker_port = 0

    # ---- base: broker, database, redis ------------------------------------------------------------------

    def start_base(self) -> Settings:
        from ops.bench.commits import install_trigger
        from ops.broker import EmbeddedBroker
        from storage.migrate import upgrade
        from streams.topics import create_topics

        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.base.kafka_brokers:
            bootstrap = self.base.kafka_brokers
        else:
            self.broker = EmbeddedBroker(log_path=self.run_dir / "broker.log").start()
            bootstrap = self.broker.bootstrap
        self._create_database()
        upgrade(self.db_url)
        install_trigger(_psycopg_dsn(self.db_url))
        if not self._redis_ok():
            print(f"  note: Redis at {self.redis_url} is not reachable; the worker uses its in-process cache")
            self.redis_url = None
        t = self.tag
        self.settings = self.base.model_copy(update={
            "kafka_brokers": bootstrap, "database_url": self.db_url, "redis_url": self.redis_url,
            "cache_prefix": f"{t}:pred:", "topic_posts": f"{t}.posts", "topic_predictions": f"{t}.predictions",
            "topic_trends": f"{t}.trends", "topic_alerts": f"{t}.alerts", "topic_dlq": f"{t}.posts.dlq",
            "consumer_group": f"{t}-worker", "broker_rebalance_timeout_s": 3.0})
        create_topics(bootstrap, [*self.settings.topics.values(), self.naive_topic, self.plain_topic],
                      self.settings.kafka_partitions)
        return self.settings

    @property
    def naive_topic(self) -> str:
        return f"{self.tag}.naive.posts"

    @property
    def plain_topic(self) -> str:
        return f"{self.tag}.plain.posts"

    @property
    def dsn(self) -> str:
        """libpq DSN of the benchmark database (for LISTEN)."""
        return _psycopg_dsn(self.db_url)

    def _admin(self) -> Any:
        from sqlalchemy import create_engine

        from storage.engine import normalize_url

        return create_engine(normalize_url(self.server_url), isolation_level="AUTOCOMMIT")

    def _create_database(self) -> None:
        from sqlalchemy import text

        eng = self._admin()
        try:
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
                c.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        except Exception as e:
            raise BenchError(f"cannot create the benchmark database on {self.server_url}: {e}") from e
        finally:
            eng.dispose()

    def _redis_ok(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.redis_url or "", socket_connect_timeout=2).ping())
        except Exception:
            return False

    # ---- serve, worker, naive peer ----------------------------------------------------------------------

    def start_serve(self, cpus: int) -> dict[str, Any]:
        """Deploy the app in this process's local Ray (VisionModel: one replica per CPU, up to 4)."""
        import ray

        from ops.localhost import free_port
        from serving.runner import ServeRunner

        vision = max(1, min(cpus, 4))
        per_replica = min(self.settings.serve_num_cpus, cpus / (2 + vision))
        s = self.settings.model_copy(update={"serve_port": free_port(), "serve_num_cpus": per_replica})
        self.runner = ServeRunner(s, num_cpus=cpus)
        self.runner.deploy(wait=True, timeout_s=600, overrides={"VisionModel": {"num_replicas": vision}})
        self.ray_address = ray.get_runtime_context().gcs_address
        return {"vision_replicas": vision, "num_cpus_per_replica": round(per_replica, 3)}

    def env(self, settings: Settings, **extra: str) -> dict[str, str]:
        s = settings
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "MOODSTREAM_KAFKA_BROKERS": s.kafka_brokers or "", "MOODSTREAM_DATABASE_URL": s.database_url,
               "MOODSTREAM_CACHE_PREFIX": s.cache_prefix, "MOODSTREAM_TOPIC_POSTS": s.topic_posts,
               "MOODSTREAM_TOPIC_PREDICTIONS": s.topic_predictions, "MOODSTREAM_TOPIC_TRENDS": s.topic_trends,
               "MOODSTREAM_TOPIC_ALERTS": s.topic_alerts, "MOODSTREAM_TOPIC_DLQ": s.topic_dlq,
               "MOODSTREAM_CONSUMER_GROUP": s.consumer_group,
               "MOODSTREAM_BROKER_REBALANCE_TIMEOUT_S": str(s.broker_rebalance_timeout_s),
               "MOODSTREAM_SERVE_APP_NAME": s.serve_app_name, "MOODSTREAM_LOG_LEVEL": "WARNING", **extra}
        if s.redis_url:
            env["MOODSTREAM_REDIS_URL"] = s.redis_url
        else:
            env.pop("MOODSTREAM_REDIS_URL", None)
        return env

    def start_worker(self) -> Child:
        """The Faust worker (``moodstream worker --classifier serve``) on this run's Ray; ready when /metrics is."""
        import httpx

        from ops.localhost import free_port

        port = self.worker_port = free_port()
        env = self.env(self.settings, MOODSTREAM_RAY_ADDRESS=self.ray_address or "",
                       MOODSTREAM_WORKER_WEB_PORT=str(port))
        child = _spawn("worker", [sys.executable, "-m", "ops.cli", "worker", "--classifier", "serve"], env,
                       self.run_dir / "worker.log")
        self.children.append(child)

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_ready(child, ready, 300)
        return child

    def start_naive(self, torch_threads: int | None = None) -> Child:
        """The naive peer on its own topic and group; ready when it prints ``ready``."""
        s = self.settings.model_copy(update={"topic_posts": self.naive_topic,
                                             "consumer_group": f"{self.tag}-naive"})
        extra = {"MOODSTREAM_TORCH_THREADS": str(torch_threads)} if torch_threads else {}
        child = _spawn("naive", [sys.executable, "-m", "ops.bench.naive"], self.env(s, **extra),
                       self.run_dir / "naive.log")
        self.children.append(child)
        wait_ready(child, lambda: "ready" in child.tail(50), 300)
        return child

    def start_plain(self) -> Child:
        """The plain peer (``ops.bench.plain``: stock models, torch's own threads) on its own topic and group."""
        s = self.settings.model_copy(update={"topic_posts": self.plain_topic, "consumer_group": f"{self.tag}-plain"})
        child = _spawn("plain", [sys.executable, "-m", "ops.bench.plain"], self.env(s), self.run_dir / "plain.log")
        self.children.append(child)
        wait_ready(child, lambda: "ready" in child.tail(50), 300)
        return child

    # ---- teardown ---------------------------------------------------------------------------------------

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop(30.0)
        self.children.clear()
        if self.runner is not None:
            with contextlib.suppress(Exception):
                self.runner.close()
            self.runner = None
        self._drop_database()
        self._clear_redis()
        if self.broker is not None:
            self.broker.close()
            self.broker = None

    def _drop_database(self) -> None:
        from sqlalchemy import text

        with contextlib.suppress(Exception):
            eng = self._admin()
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            eng.dispose()

    def _clear_redis(self) -> None:
        if not self.redis_url:
            return
        import redis

        with contextlib.suppress(Exception):
            r = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            keys = list(r.scan_iter(f"{self.tag}:*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])
