"""deploy/healthcheck.py (the image's ``moodstream-healthcheck``) against a real local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from ops.localhost import free_port


class _Handler(http.server.BaseHTTPRequestHandler):
    status: dict[str, int] = {}

    def do_GET(self) -> None:
        self.send_response(self.status.get(self.path, 404))
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, dict[str, int]]]:
    status: dict[str, int] = {}
    handler = type("H", (_Handler,), {"status": status})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], status
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_role_from_pid1_cmdline(healthcheck):
    assert healthcheck.role_from_cmdline(["tini", "--", "moodstream", "worker"]) == "worker"
    assert healthcheck.role_from_cmdline(["/opt/venv/bin/moodstream", "serve", "--port", "8000"]) == "serve"
    assert healthcheck.role_from_cmdline(["python", "-c", "print(1)"]) is None


def test_probe_urls_follow_settings(lib, healthcheck):
    s = lib.Settings(_env_file=None, serve_port=9000)
    d = lib.defaults()
    assert healthcheck.probe_url("serve", s) == "http://127.0.0.1:9000/healthz"
    assert healthcheck.probe_url("dashboard", s) == f"http://127.0.0.1:{d['dashboard_port']}/_stcore/health"
    assert healthcheck.probe_url("worker", s) == f"http://127.0.0.1:{d['worker_web_port']}/metrics"
    assert healthcheck.probe_url("ray", s) == "http://127.0.0.1:52365/api/local_raylet_healthz"
    assert healthcheck.probe_url("publish", s) is None


@pytest.mark.parametrize(("role", "env", "path"), [
    ("worker", "MOODSTREAM_WORKER_WEB_PORT", "/metrics"),
    ("serve", "MOODSTREAM_SERVE_PORT", "/healthz"),
    ("dashboard", "MOODSTREAM_DASHBOARD_PORT", "/_stcore/health"),
])
def test_main_probes_the_role_endpoint(healthcheck, server, monkeypatch, role, env, path):
    port, status = server
    monkeypatch.setenv(env, str(port))
    status[path] = 200
    assert healthcheck.main([role]) == 0
    status[path] = 503  # e.g. Serve while models still load
    assert healthcheck.main([role]) == 1


def test_main_fails_when_nothing_listens(healthcheck, monkeypatch):
    monkeypatch.setenv("MOODSTREAM_WORKER_WEB_PORT", str(free_port()))
    assert healthcheck.main(["worker"]) == 1


def test_main_roles_without_endpoint_and_unknown(healthcheck):
    assert healthcheck.main(["publish"]) == 0
    assert healthcheck.main(["nonsense"]) == 1
