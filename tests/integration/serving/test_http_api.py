"""The HTTP API with a real client: JSON (single, list), multipart upload, limits, bad input, OpenAPI, metrics."""

from __future__ import annotations

import base64

import httpx
import pytest

from serving.http_api import URL_IMAGE

pytestmark = pytest.mark.integration
CREATED = "2024-05-01T12:00:00Z"


def post(pid: str, text: str | None = None, image: bytes | None = None, **extra) -> dict:
    p = {"id": pid, "created_at": CREATED, **extra}
    if text is not None:
        p["text"] = text
    if image is not None:
        p["image"] = {"b64": base64.b64encode(image).decode()}
    return p


@pytest.fixture(scope="module")
def client(served) -> httpx.Client:
    with httpx.Client(base_url=served.url, timeout=120) as c:
        yield c


def test_healthz_ready(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True and set(body["models"]) == {"text", "vision", "fusion"}


def test_single_json_post(client: httpx.Client, face_jpeg: bytes) -> None:
    r = client.post("/classify", json=post("p1", "what a lovely day #sunny", face_jpeg))
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["post_id"] == "p1" and p["created_at"].startswith("2024-05-01T12:00:00")
    assert p["sentiment"]["label"] in ("negative", "neutral", "positive") and -1 <= p["sentiment"]["score"] <= 1
    assert p["modalities"]["text"] and p["modalities"]["image"]["faces"] >= 1 and p["model_version"]


def test_list_gives_per_item_results_in_order(client: httpx.Client, face_jpeg: bytes) -> None:
    body = [
        post("a", "good morning everyone"),
        {"id": "b", "text": "no timestamp"},
        post("c", image=face_jpeg),
        {"id": "d", "created_at": CREATED, "image": {"url": "https://example.com/x.jpg"}},
        post("e", "caption", b"definitely not an image"),
        "not an object",
    ]
    r = client.post("/classify", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [o.get("post_id") for o in out] == ["a", "b", "c", "d", "e", None]
    assert "sentiment" in out[0] and "sentiment" in out[2]
    assert out[1]["error"] == "missing required field 'created_at'"
    assert out[3]["error"] == URL_IMAGE
    assert out[4]["error"] and "sentiment" not in out[4]
    assert "not an object" in out[5]["error"]


def test_multipart_upload(client: httpx.Client, face_jpeg: bytes) -> None:
    r = client.post("/classify", files={"image": ("face.jpg", face_jpeg, "image/jpeg")}, data={"text": "what a day"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["post_id"].startswith("upload-") and p["modalities"]["image"] and p["modalities"]["text"]
    r = client.post("/classify", files={"image": ("x.jpg", b"garbage bytes", "image/jpeg")}, data={"id": "u2"})
    assert r.status_code == 422 and r.json()["post_id"] == "u2" and r.json()["error"]


def test_request_too_large_is_413(client: httpx.Client, served) -> None:
    big = b"x" * (served.settings.serve_max_request_bytes + 1)
    r = client.post("/classify", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    r = client.post("/classify", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty message"),
    (b"[]", 400, "empty list"),
    (b"42", 400, "JSON int"),
    (b'{"id": "x", "created_at": "yesterday", "text": "hi"}', 422, "created_at is not an ISO-8601 timestamp"),
    (b'{"id": "x", "created_at": "2024-01-01T00:00:00Z"}', 422, "post has no text and no image"),
    (b'{"id": "x", "created_at": "2024-01-01T00:00:00Z", "text": "hi", "colour": 1}', 422, "unknown field"),
])
def test_bad_input_is_4xx_with_reason(client: httpx.Client, body: bytes, status: int, reason: str) -> None:
    r = client.post("/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert reason in r.json()["error"]


def test_unsupported_content_type(client: httpx.Client) -> None:
    r = client.post("/classify", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "content type" in r.json()["error"]


def test_openapi(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/classify", "/healthz", "/metrics"} <= set(spec["paths"])
    content = spec["paths"]["/classify"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    assert {"Post", "Prediction", "ImageRef"} <= set(spec["components"]["schemas"])


def test_metrics(client: httpx.Client) -> None:
    client.post("/classify", json=post("m1", "metrics please"))
    text = client.get("/metrics").text
    for series in ('moodstream_http_requests_total{route="/classify",status="200"}',
                   'moodstream_model_batch_size_count{model="text"}',
                   'moodstream_model_call_seconds_bucket{le="0.005",model="text"}',
                   'moodstream_model_inference_seconds_count{model="vision"}',
                   "moodstream_request_posts_count", "moodstream_classify_seconds_count",
                   'moodstream_posts_total{outcome="ok"}'):
        assert series in text, series
