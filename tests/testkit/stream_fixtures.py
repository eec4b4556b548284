"""Stream fixtures (a pytest plugin, see tests/conftest.py): the classifier, worker subprocesses, TCP proxies, an
image server, a test's own topics and database.

The classifier is a fixture (``classifier_spec``): the real in-process model pipeline from the committed pack.
"""

from __future__ import annotations

import http.server
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.localhost import free_port
from testkit.stream_helpers import WorkerProcess
from testkit.tcp_proxy import TcpProxy


@pytest.fixture
def classifier_spec() -> str:
    """What ``moodstream worker --model`` loads: the real in-process model pipeline (committed pack).

    ``MOODSTREAM_TEST_MODEL=FILE.py:ATTR`` swaps in another classifier, e.g. the lexicon STAND-IN
    (``testkit.lexicon_classifier:LexiconClassifier``) when iterating on stream logic alone.
    """
    return os.environ.get("MOODSTREAM_TEST_MODEL", "serving.pipeline:load_pipeline")


@pytest.fixture
def stream_env(broker: str, pg_url: str) -> dict[str, str]:
    """MOODSTREAM_* variables of one test: its own topics, consumer group, database, cache prefix, web port."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "MOODSTREAM_KAFKA_BROKERS": broker,
        "MOODSTREAM_KAFKA_PARTITIONS": "4",
        "MOODSTREAM_TOPIC_POSTS": f"posts-{tag}",
        "MOODSTREAM_TOPIC_PREDICTIONS": f"predictions-{tag}",
        "MOODSTREAM_TOPIC_TRENDS": f"trends-{tag}",
        "MOODSTREAM_TOPIC_ALERTS": f"alerts-{tag}",
        "MOODSTREAM_TOPIC_DLQ": f"posts-{tag}.dlq",
        "MOODSTREAM_CONSUMER_GROUP": f"ms-test-{tag}",
        "MOODSTREAM_BROKER_REBALANCE_TIMEOUT_S": "3",
        "MOODSTREAM_BROKER_SESSION_TIMEOUT_S": "6",
        "MOODSTREAM_BROKER_HEARTBEAT_INTERVAL_S": "1",
        "MOODSTREAM_DATABASE_URL": pg_url,
        "MOODSTREAM_WORKER_WEB_PORT": str(free_port()),
        "MOODSTREAM_IMAGE_ALLOW_PRIVATE_URLS": "true",
        "MOODSTREAM_IMAGE_FETCH_TIMEOUT_S": "3",
        "MOODSTREAM_DB_RETRY_MAX_S": "2",
        "MOODSTREAM_CACHE_PREFIX": f"ms-test-{tag}:",
        "MOODSTREAM_LOG_LEVEL": "INFO",
    }
    from streams.topics import create_topics

    create_topics(broker, [v for k, v in env.items() if k.startswith("MOODSTREAM_TOPIC_")], 4)
    return env


@pytest.fixture
def worker_factory(classifier_spec: str, tmp_path: Path) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Start worker subprocesses; every one is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def make(env: dict[str, str]) -> WorkerProcess:
        w = WorkerProcess(env, classifier_spec, tmp_path / f"worker-{len(started)}.log").start()
        started.append(w)
        return w

    yield make
    for w in started:
        w.kill()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[str, int], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        p = TcpProxy(host, port).start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a temp directory: (base URL, directory)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *_: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", root
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def db(pg_url: str) -> Iterator[Any]:
    """An engine on the test's database."""
    from storage.engine import make_engine

    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


