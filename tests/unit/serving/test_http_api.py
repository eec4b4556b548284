"""Pieces of the HTTP API that need no Ray: the body-size middleware, post → item, the OpenAPI schema."""

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
from serving.http_api import DEFAULT_MAX_REQUEST_BYTES, URL_IMAGE, BodySizeLimit, api, item_from_post, result_json


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
