"""Pieces of the HTTP API that need no Ray: the body-size and auth/rate-limit middleware, post → item, the OpenAPI
schema."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from moodstream.schema import parse_post
from moodstream.types import ClassifyItem, ItemError
from serving.auth import BearerAuth
from serving.http_api import (
    DEFAULT_MAX_REQUEST_BYTES,
    URL_IMAGE,
    BodySizeLimit,
    ClassifyGuard,
    api,
    item_from_post,
    result_json,
)
from serving.rate_limit import TokenBucketLimiter


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"n": len(await request.body())})


def _client() -> TestClient:
    app = Starlette(routes=[Route("/", _echo, methods=["POST"])])
    app.add_middleware(BodySizeLimit)
    return TestClient(app)


def test_body_limit_by_content_length_and_by_stream() -> None:
    c = _client()
    assert c.post("/", content=b"x" * 10).json() == {"n": 10}
    r = c.post("/", content=b"x" * (DEFAULT_MAX_REQUEST_BYTES + 1))
    assert r.status_code == 413 and "larger than" in r.json()["error"]

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(DEFAULT_MAX_REQUEST_BYTES // (1 << 20) + 2):
            yield b"x" * (1 << 20)

    r = c.post("/", content=chunks())
    assert r.status_code == 413


def test_item_from_post() -> None:
    created = datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    b64 = base64.b64encode(b"img").decode()
    p = parse_post({"id": "a", "created_at": created, "text": "hi #There", "image": {"b64": b64}})
    item = item_from_post(p)
    assert isinstance(item, ClassifyItem) and item.image == b"img" and item.hashtags == ["there"]
    url = item_from_post(parse_post({"id": "b", "created_at": created, "image": {"url": "https://x/y.jpg"}}))
    assert isinstance(url, ItemError) and url.reason == URL_IMAGE
    assert result_json(url, "b") == {"post_id": "b", "error": URL_IMAGE, "stage": "fetch"}


def test_openapi_schema_describes_classify() -> None:
    spec = api.openapi()
    body = spec["paths"]["/classify"]["post"]["requestBody"]["content"]
    assert "application/json" in body and "multipart/form-data" in body
    assert {"Post", "ImageRef", "Prediction", "ErrorOut"} <= set(spec["components"]["schemas"])
    assert "/healthz" in spec["paths"] and "/metrics" in spec["paths"]


def test_openapi_documents_the_worker_endpoint() -> None:
    spec = api.openapi()
    body = spec["paths"]["/classify/items"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["type"] == "array" and body["items"]["$ref"].endswith("/WireItem")


def _guarded(auth: BearerAuth, limiter: TokenBucketLimiter | None = None, client: tuple[str, int] = ("127.0.0.1", 5)
             ) -> tuple[TestClient, list[str]]:
    """A Starlette app behind ``ClassifyGuard``; the list records which routes ran (and read their bodies)."""
    ran: list[str] = []

    async def handler(request: Request) -> JSONResponse:
        ran.append(request.url.path)
        await request.body()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route(p, handler, methods=["GET", "POST"])
                            for p in ("/classify", "/classify/items", "/healthz", "/metrics")])
    app.add_middleware(ClassifyGuard, auth=auth, limiter=limiter)
    return TestClient(app, client=client), ran


def test_guard_checks_the_token_before_the_route_runs() -> None:
    c, ran = _guarded(BearerAuth("tok"))
    for path in ("/classify", "/classify/items"):
        r = c.post(path, content=b"x" * 1000)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer") and r.json()["error"]
        assert c.post(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post(path, headers={"Authorization": "Bearer tok"}).status_code == 200
    assert ran == ["/classify", "/classify/items"]  # the refused requests never reached a route
    assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_guard_without_a_token_serves_loopback_only() -> None:
    local, _ = _guarded(BearerAuth(None), client=("127.0.0.1", 5))
    remote, ran = _guarded(BearerAuth(None), client=("203.0.113.7", 5))
    assert local.post("/classify").status_code == 200
    r = remote.post("/classify")
    assert r.status_code == 401 and "MOODSTREAM_API_TOKEN" in r.json()["error"] and not ran
    assert remote.get("/healthz").status_code == 200


def test_guard_rate_limits_per_client_before_auth() -> None:
    c, ran = _guarded(BearerAuth("tok"), TokenBucketLimiter(rate_per_s=0.01, burst=2))
    codes = [c.post("/classify").status_code for _ in range(3)]  # wrong-token guesses are limited as well
    assert codes == [401, 401, 429]
    r = c.post("/classify", headers={"Authorization": "Bearer tok"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "too many requests" in r.json()["error"]
    assert "/classify" not in ran
    assert [c.get("/healthz").status_code for _ in range(5)] == [200] * 5
    other, _ = _guarded(BearerAuth("tok"), TokenBucketLimiter(rate_per_s=0.01, burst=2), client=("10.0.0.9", 1))
    assert other.post("/classify", headers={"Authorization": "Bearer tok"}).status_code == 200


def test_openapi_documents_bearer_auth_and_list_bounds() -> None:
    spec = api.openapi()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/classify", "/classify/items"):
        op = spec["paths"][path]["post"]
        assert op["security"] == [{"bearerAuth": []}] and {"401", "429"} <= set(op["responses"])
    assert "security" not in spec["paths"]["/healthz"]["get"]
    body = spec["paths"]["/classify"]["post"]["requestBody"]["content"]
    as_list = body["application/json"]["schema"]["oneOf"][1]
    assert as_list["minItems"] == 1 and as_list["maxItems"] == 1024
    items = spec["paths"]["/classify/items"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert items["minItems"] == 1
    form = body["multipart/form-data"]["schema"]["properties"]
    assert form["created_at"]["format"] == "date-time" and form["id"]["maxLength"] == 128
