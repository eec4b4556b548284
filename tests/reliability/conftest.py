"""Reliability suite fixtures: the classifier choice, hostile servers, a private Redis and PostgreSQL, the table.

The stream fixtures (topics, workers, proxies) come from ``testkit.stream_fixtures``, like the stream tests'.
Every fault test appends a ``FaultRow`` to ``harness.RESULTS``; at the end of the session the table is printed
and written to ``<pytest basetemp>/reliability.json``.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.localhost import free_port
from testkit import harness

REAL = "serving.pipeline:load_pipeline"
LEXICON = "testkit.lexicon_classifier:LexiconClassifier"

# ------------------------------------------------------------------------------------------ classifier


@pytest.fixture(scope="session")
def classifier_choice() -> tuple[str, str]:
    """(``--model`` spec, why): the real in-process pipeline from the committed pack.

    ``MOODSTREAM_RELIABILITY_MODEL`` swaps in another, e.g. the lexicon STAND-IN (``LEXICON``) for quick runs.
    """
    forced = os.environ.get("MOODSTREAM_RELIABILITY_MODEL")
    choice = (forced, "MOODSTREAM_RELIABILITY_MODEL") if forced else (REAL, "the committed model pack")
    harness.META["classifier"] = {"model": choice[0], "why": choice[1]}
    return choice


@pytest.fixture
def classifier_spec(classifier_choice: tuple[str, str]) -> str:
    """Overrides the stream tests' fixture of the same name (used by ``worker_factory``)."""
    return classifier_choice[0]


# ------------------------------------------------------------------------------------------ servers


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Image URLs that misbehave: slow headers, endless bodies, slow trickles, redirects to internal addresses."""

    images: dict[str, bytes] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/slow":  # never answers within the fetch timeout
                time.sleep(30)
                return
            if path == "/endless":  # an endless body as fast as the socket takes it, no Content-Length
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                chunk = b"\xff" * 65536
                while True:
                    self.wfile.write(chunk)
            if path == "/drip":  # an endless body, one byte every 100 ms
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.end_headers()
                while True:
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                    time.sleep(0.1)
            if path == "/redirect":  # ?to=<url>
                to = self.path.split("to=", 1)[1] if "to=" in self.path else "/"
                from urllib.parse import unquote

                self.send_response(302)
                self.send_header("Location", unquote(to))
                self.end_headers()
                return
            if path.startswith("/img/") and path[5:] in self.images:
                body = self.images[path[5:]]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.end_headers()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def hostile_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A misbehaving image server on 127.0.0.1 (``/slow``, ``/endless``, ``/drip``, ``/redirect?to=``, ``/img/X``).

    ``@pytest.mark.hostile_host("127.0.0.2")`` binds it to another loopback address.
    """
    from testkit import hostile

    _Hostile.images = hostile.images()
    marker = request.node.get_closest_marker("hostile_host")
    host = marker.args[0] if marker else "127.0.0.1"
    srv = http.server.ThreadingHTTPServer((host, 0), _Hostile)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://{host}:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


class RedisServer:
    """A private ``redis-server`` (no persistence) that a test may stop and start again on the same port."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        f = self.log.open("ab")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=f, stderr=subprocess.STDOUT)
        f.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    r = RedisServer(tmp_path / "redis.log").start()
    yield r
    r.stop()


@pytest.fixture
def private_pg() -> Iterator[Any]:
    """A private PostgreSQL server (``testkit.private_pg``) the test may restart; stopped and deleted at the end."""
    from testkit.private_pg import PrivatePostgres

    try:
        pg = PrivatePostgres()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield pg.start()
    finally:
        pg.close()


# ------------------------------------------------------------------------------------------ report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hostile_host(addr): bind the hostile image server to this address")


SOAK_TIMEOUT_S = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak forms run longer than the suite-wide 600 s timeout (pyproject): give them 30 min each."""
    for item in items:
        if item.get_closest_marker("soak") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SOAK_TIMEOUT_S))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not harness.RESULTS and not harness.BAD_INPUT:
        return
    text = harness.render_table()
    terminalreporter.write_sep("=", "moodstream reliability: faults")
    terminalreporter.write_line(text)
    repeats = harness.render_repeats()
    if repeats:
        terminalreporter.write_sep("=", "moodstream reliability: repeated runs (--count)")
        terminalreporter.write_line(repeats)
    try:
        base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    except Exception:
        base = Path("/tmp")
    out = Path(os.environ.get("MOODSTREAM_RELIABILITY_JSON") or Path(base) / "reliability.json")
    out.write_text(json.dumps(harness.as_json(), indent=2, default=str))
    terminalreporter.write_line(f"reliability table written to {out}")
