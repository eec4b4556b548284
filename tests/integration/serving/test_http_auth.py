"""The API closed to strangers, on a real Ray Serve: the bearer token on every classify route (missing, wrong,
right), ``/healthz`` and ``/metrics`` open, the per-client rate limit (429 + Retry-After), the OpenAPI document
saying so, the worker's HTTP client sending the token, and the refusal to bind publicly without one.

The ingress and the HTTP API are the real ones; the models are stand-ins (``testkit.standin_serve``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from moodstream.config import Settings
from moodstream.schema import Prediction, WireItem
from moodstream.types import ClassifyItem

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
TOKEN = "s3cret-t0ken-for-tests"
POST = {"id": "auth-1", "created_at": "2024-05-01T12:00:00Z", "text": "what a lovely day"}
ITEM = WireItem(post_id="auth-2", created_at=datetime(2024, 5, 1, tzinfo=UTC), text="so sad today").model_dump(
    mode="json")


@pytest.fixture(scope="module")
def locked(standin_app) -> str:
    """An app with a token and a generous rate limit."""
    return standin_app("locked", api_token=TOKEN)


@pytest.mark.parametrize("route,body", [("/classify", POST), ("/classify/items", [ITEM])])
def test_classify_routes_need_the_token(locked: str, route: str, body: object) -> None:
    missing = httpx.post(locked + route, json=body, timeout=30)
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}", TOKEN, "Bearer  x y"):
        r = httpx.post(locked + route, json=body, headers={"Authorization": wrong}, timeout=30)
        assert r.status_code == 401, (wrong, r.text)
        assert "invalid_token" in r.headers["www-authenticate"] or "missing" in r.json()["error"]
    ok = httpx.post(locked + route, json=body, headers={"Authorization": f"bearer {TOKEN}"}, timeout=30)
    assert ok.status_code == 200, ok.text
    out = ok.json()
    Prediction.model_validate(out[0] if isinstance(out, list) else out)


def test_multipart_upload_needs_the_token(locked: str) -> None:
    form = {"text": (None, "hello there")}  # a multipart form field
    r = httpx.post(locked + "/classify", files=form, timeout=30)
    assert r.status_code == 401
    r = httpx.post(locked + "/classify", files=form, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text


def test_healthz_metrics_and_docs_stay_open(locked: str) -> None:
    assert httpx.get(locked + "/healthz", timeout=30).status_code == 200
    metrics = httpx.get(locked + "/metrics", timeout=30)
    assert metrics.status_code == 200
    assert 'moodstream_http_requests_total{route="/classify",status="401"}' in metrics.text
    assert httpx.get(locked + "/openapi.json", timeout=30).status_code == 200


def test_openapi_documents_the_auth_and_the_limits(locked: str) -> None:
    spec = httpx.get(locked + "/openapi.json", timeout=30).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["bearerAuth"][
            "description"]}
    for path in ("/classify", "/classify/items"):
        op = spec["paths"][path]["post"]
        assert op["security"] == [{"bearerAuth": []}], path
        assert {"401", "429"} <= set(op["responses"]), path
        assert "Retry-After" in op["responses"]["429"]["headers"]
    for path in ("/healthz", "/metrics"):
        assert "security" not in spec["paths"][path]["get"], path


def test_worker_http_client_sends_the_token(locked: str) -> None:
    from streams.classifier import HttpClassifierClient, make_client

    item = ClassifyItem(post_id="w1", created_at=datetime.now(UTC), text="feeling great")

    async def call(client) -> list:  # type: ignore[no-untyped-def]
        try:
            return await client.classify([item])
        finally:
            await client.close()

    with pytest.raises(httpx.HTTPStatusError, match="401"):
        asyncio.run(call(HttpClassifierClient(locked, timeout_s=30)))
    settings = Settings(_env_file=None, serve_url=locked, api_token=TOKEN, serve_retries=0, serve_outage_max_s=0)
    out = asyncio.run(call(make_client("http", settings)))
    assert isinstance(out[0], Prediction) and out[0].post_id == "w1"


def test_rate_limit_answers_429_with_retry_after(standin_app) -> None:
    url = standin_app("limited", api_rate_per_s=1.0, api_rate_burst=3)
    with httpx.Client(timeout=30) as c:
        codes = [c.post(url + "/classify", json=POST) for _ in range(6)]
        assert [r.status_code for r in codes[:3]] == [200, 200, 200], [r.text for r in codes]
        refused = [r for r in codes[3:] if r.status_code == 429]
        assert refused, [r.status_code for r in codes]
        assert int(refused[0].headers["retry-after"]) >= 1 and "too many requests" in refused[0].json()["error"]
        assert c.get(url + "/healthz").status_code == 200  # not limited
        time.sleep(float(refused[-1].headers["retry-after"]) + 0.2)
        assert c.post(url + "/classify", json=POST).status_code == 200  # the bucket refilled


def test_default_rate_does_not_throttle_a_worker_pace(standin_app) -> None:
    """Defaults (50/s, burst 100): a worker sending batches back to back for 2 s is never refused."""
    url = standin_app("defaults")
    with httpx.Client(timeout=30) as c:
        deadline = time.monotonic() + 2.0
        codes = []
        while time.monotonic() < deadline:
            codes.append(c.post(url + "/classify/items", json=[ITEM] * 8).status_code)
    assert codes and set(codes) == {200}, codes


def test_refuses_to_bind_publicly_without_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ops.launcher import Stack, StartupError
    from serving.auth import InsecureBindError
    from serving.runner import ServeRunner

    monkeypatch.delenv("MOODSTREAM_API_TOKEN", raising=False)
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        with pytest.raises(InsecureBindError, match="MOODSTREAM_API_TOKEN"):
            ServeRunner(Settings(_env_file=None, serve_host=host)).start()
    with pytest.raises(StartupError, match="MOODSTREAM_API_TOKEN"):
        Stack(settings=Settings(_env_file=None, serve_host="0.0.0.0"), run_dir=tmp_path).start()
    assert not list(tmp_path.glob("*.log"))  # refused before anything started

    env = {k: v for k, v in os.environ.items() if k != "MOODSTREAM_API_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "ops.cli", "serve", "--host", "0.0.0.0", "--port", "1"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    said = " ".join((r.stdout + r.stderr).split())  # rich wraps long lines
    assert "refusing to serve the classify API on '0.0.0.0' without a token" in said, said
