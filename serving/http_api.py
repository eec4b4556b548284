"""HTTP API of the ``Classifier`` ingress (FastAPI, mounted with ``@serve.ingress``).

* ``POST /classify``: a Post v1 JSON object → a Prediction; a JSON list of posts → a list with a Prediction or
  ``{"post_id", "error", "stage"}`` per item, in order; ``multipart/form-data`` with an ``image`` file and/or a
  ``text`` field (optional ``id``, ``created_at``) → a Prediction.
* ``POST /classify/items``: the stream worker's call, a list of already-validated ``WireItem``s → a list as above
  (no second Post parse).
* ``GET /healthz``: 200 when every model deployment reports its model loaded, else 503.
* ``GET /metrics``: Prometheus text.

The classify routes need ``Authorization: Bearer <token>`` when ``MOODSTREAM_API_TOKEN`` is set (without one, only
loopback clients; ``serving.auth``) and are rate-limited per client address (``serving.rate_limit``): 401 and 429
(with ``Retry-After``), checked before the body is read. ``/healthz`` and ``/metrics`` stay open.

Errors are JSON ``{"error": reason}``: 400 malformed body, 413 body over ``serve_max_request_bytes``, 415 other
content types, 422 a post that is well-formed JSON but not a valid post (reasons from ``parse_post``) or one that
cannot be classified. Images given by ``url`` are not fetched here (that is the stream worker's job): such an
item gets the error ``URL_IMAGE``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moodstream.schema import MAX_ID_LEN, MAX_TEXT_CHARS, Post, PostError, Prediction, WireItem, parse_post
from moodstream.types import ClassifyItem, ItemError
from serving.auth import BearerAuth, is_protected
from serving.rate_limit import TokenBucketLimiter, retry_after

URL_IMAGE = "image by URL is not fetched by the HTTP API; send it inline as image.b64"
MAX_POSTS_PER_REQUEST = 1024
DEFAULT_MAX_REQUEST_BYTES = 25 * 1024 * 1024


class ErrorOut(BaseModel):
    """An error, for the whole request or for one item of a list."""

    error: str
    post_id: str | None = None
    stage: str | None = None


class _TooLarge(Exception):
    pass


def _replica() -> Any:
    """The ``Classifier`` instance serving this request (``None`` outside a Serve replica)."""
    from ray import serve

    try:
        return serve.get_replica_context().servable_object
    except Exception:
        return None


def current_ingress() -> Any:
    """FastAPI dependency: the ``Classifier`` replica handling the request."""
    from ray import serve

    return serve.get_replica_context().servable_object


Ingress = Annotated[Any, Depends(current_ingress)]


class BodySizeLimit:
    """ASGI middleware: 413 when ``Content-Length`` or the streamed body exceeds the replica's byte limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = getattr(_replica(), "max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(limit, send)


async def _too_large(limit: int, send: Send) -> None:
    await JSONResponse({"error": f"request body is larger than {limit} bytes"}, status_code=413)(
        {"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def route_path(scope: Scope) -> str:
    """The request path without the app's route prefix (``root_path``)."""
    path: str = scope.get("path", "/")
    root = scope.get("root_path", "")
    return (path.removeprefix(root) if root else path) or "/"


class ClassifyGuard:
    """ASGI middleware on the classify routes, before the body is read: the per-client rate limit (429 with
    ``Retry-After``), then the bearer token (401 with ``WWW-Authenticate``). The rate limit comes first, so it
    also slows token guessing. ``auth``/``limiter`` default to the serving replica's."""

    def __init__(self, app: ASGIApp, auth: BearerAuth | None = None, limiter: TokenBucketLimiter | None = None
                 ) -> None:
        self.app = app
        self.auth = auth
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected(route_path(scope)):
            await self.app(scope, receive, send)
            return
        replica = _replica()
        auth = self.auth or getattr(replica, "auth", None) or BearerAuth(None)
        limiter = self.limiter or getattr(replica, "limiter", None)
        client = scope.get("client")
        host = str(client[0]) if client else None
        wait = limiter.acquire(host or "?") if limiter is not None else 0.0
        if wait:
            response = JSONResponse({"error": f"too many requests; retry in {wait:.2f}s"}, status_code=429,
                                    headers={"Retry-After": retry_after(wait)})
            await response(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        denied = auth.check(headers.get(b"authorization", b"").decode("latin-1") or None, host)
        if denied is not None:
            response = JSONResponse({"error": denied.reason}, status_code=401,
                                    headers={"WWW-Authenticate": denied.challenge})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


api = FastAPI(title="moodstream classifier", version="1",
              description="Multimodal (caption + image) sentiment and emotion of social-media posts. The classify "
                          "routes need `Authorization: Bearer <token>` when the server has a token "
                          "(MOODSTREAM_API_TOKEN); without one they answer loopback clients only. Each client "
                          "address is rate-limited (429 with Retry-After).")
api.add_middleware(BodySizeLimit)
api.add_middleware(ClassifyGuard)  # outside the body limit, inside the request counter (which counts 401 and 429)


@api.middleware("http")
async def _count_requests(request: Request, call_next: Any) -> Response:
    response = await call_next(request)
    replica = _replica()
    if replica is not None:
        path = route_path(request.scope)
        route = path if path in ("/classify", "/classify/items", "/healthz", "/metrics") else "other"
        replica.metrics.http_requests.labels(route, str(response.status_code)).inc()
    return response


def error(status: int, reason: str, **extra: Any) -> JSONResponse:
    """A JSON error response ``{"error": reason, ...}``."""
    return JSONResponse({"error": reason, **extra}, status_code=status)


def item_from_post(post: Post) -> ClassifyItem | ItemError:
    """A validated post → what the classifier needs (inline images decoded; URL images refused)."""
    image = None
    if post.image is not None:
        if post.image.url is not None:
            return ItemError(URL_IMAGE, stage="fetch")
        image = post.image.data()
    return ClassifyItem(post_id=post.id, created_at=post.created_at, text=post.text, image=image,
                        hashtags=list(post.hashtags or []))


def result_json(result: Prediction | ItemError, post_id: str | None) -> dict[str, Any]:
    """One slot of a response: the Prediction, or ``{"post_id", "error", "stage"}``."""
    if isinstance(result, ItemError):
        return {"post_id": post_id, "error": result.reason, "stage": result.stage}
    return result.model_dump(mode="json")


def _post_id(obj: Any) -> str | None:
    pid = obj.get("id") if isinstance(obj, dict) else None
    return pid if isinstance(pid, str) else None


_POST_SCHEMA = {"$ref": "#/components/schemas/Post"}
_LIST_BOUNDS = {"minItems": 1, "maxItems": MAX_POSTS_PER_REQUEST}
_OPENAPI_CLASSIFY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                _POST_SCHEMA, {"type": "array", "items": _POST_SCHEMA, **_LIST_BOUNDS}]}},
            "multipart/form-data": {"schema": {
                "type": "object",
                "description": "an image file, a caption, or both; `id` defaults to `upload-<random>`, "
                               "`created_at` to the time of the request",
                "properties": {"image": {"type": "string", "format": "binary"},
                               "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
                               "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN},
                               "created_at": {"type": "string", "format": "date-time"}},
            }},
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Prediction, "description": "a Prediction; for a list body, a list of Predictions/item errors"},
    400: {"model": ErrorOut, "description": "malformed body"},
    401: {"model": ErrorOut, "description": "missing or wrong bearer token (or, with no token configured, a client "
                                            "outside loopback)",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    413: {"model": ErrorOut, "description": "request body too large"},
    415: {"model": ErrorOut, "description": "unsupported content type"},
    422: {"model": ErrorOut, "description": "not a valid post, or the post could not be classified"},
    429: {"model": ErrorOut, "description": "too many requests from this client address",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}


@api.post("/classify", openapi_extra=_OPENAPI_CLASSIFY, responses=_RESPONSES, response_model=None)
async def classify(request: Request, ingress: Ingress) -> Response:
    """Classify one post (JSON or multipart upload) or a JSON list of posts."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _classify_form(request, ingress)
    if ctype != "application/json" and not ctype.endswith("+json"):
        return error(415, f"unsupported content type {ctype!r}; send application/json or multipart/form-data")
    body = await request.body()
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        try:
            parse_post(body)
            reason = "body is not valid JSON"
        except PostError as e:
            reason = e.reason
        return error(400, reason)
    if isinstance(obj, list):
        return await _classify_list(objs=obj, ingress=ingress)
    if not isinstance(obj, dict):
        return error(400, f"body is a JSON {type(obj).__name__}; send a Post object or a list of them")
    try:
        item = item_from_post(parse_post(obj))
    except PostError as e:
        return error(422, e.reason, post_id=_post_id(obj), stage="validate")
    return _respond_one(await ingress.classify_items([item], api="http"), _post_id(obj))


@api.post("/classify/items", responses=_RESPONSES, response_model=None)
async def classify_items(items: list[WireItem], ingress: Ingress) -> Response:
    """Classify posts a stream worker has already validated (``WireItem``s): a list in, a list out, in order."""

    def item(wire: WireItem) -> ClassifyItem | ItemError:
        try:
            return wire.item()
        except ValueError as e:
            return ItemError(str(e), stage="validate")

    return await _classify_many(items, item, lambda w: w.post_id, "item", ingress)


async def _classify_list(objs: list[Any], ingress: Any) -> Response:
    def item(obj: Any) -> ClassifyItem | ItemError:
        try:
            return item_from_post(parse_post(obj if isinstance(obj, dict) else json.dumps(obj)))
        except PostError as e:
            return ItemError(e.reason, stage="validate")

    return await _classify_many(objs, item, _post_id, "post", ingress)


async def _classify_many(inputs: list[Any], to_item: Callable[[Any], ClassifyItem | ItemError],
                         post_id: Callable[[Any], str | None], noun: str, ingress: Any) -> Response:
    """A list body: each input made an item (or its error), one classifier call, one slot per input, in order."""
    if not inputs:
        return error(400, f"empty list; send at least one {noun}")
    if len(inputs) > MAX_POSTS_PER_REQUEST:
        return error(413, f"at most {MAX_POSTS_PER_REQUEST} {noun}s per request")
    results = await ingress.classify_items([to_item(x) for x in inputs], api="http")
    return JSONResponse([result_json(r, post_id(x)) for r, x in zip(results, inputs, strict=True)])


async def _classify_form(request: Request, ingress: Any) -> Response:
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=4 * MAX_TEXT_CHARS + 1024)
    except Exception as e:
        return error(400, f"malformed multipart body: {getattr(e, 'detail', e)}")
    upload, text = form.get("image"), form.get("text")
    if upload is not None and not isinstance(upload, UploadFile):
        return error(422, "'image' must be a file part")
    pid, created = form.get("id"), form.get("created_at")  # absent: defaults; present, even empty: validated
    obj: dict[str, Any] = {"id": f"upload-{uuid.uuid4().hex[:16]}" if pid is None else str(pid),
                           "created_at": datetime.now(UTC).isoformat() if created is None else str(created)}
    if text is not None:
        obj["text"] = str(text)
    if upload is not None:
        data = await upload.read()
        if not data:
            return error(422, "'image' file is empty", post_id=obj["id"], stage="validate")
        obj["image"] = {"b64": base64.b64encode(data).decode("ascii")}
    try:
        item = item_from_post(parse_post(obj))
    except PostError as e:
        return error(422, e.reason, post_id=obj["id"], stage="validate")
    return _respond_one(await ingress.classify_items([item], api="http"), obj["id"])


def _respond_one(results: list[Prediction | ItemError], post_id: str | None) -> Response:
    r = results[0]
    if isinstance(r, ItemError):
        return error(422, r.reason, post_id=post_id, stage=r.stage)
    return JSONResponse(r.model_dump(mode="json"))


@api.get("/healthz", responses={503: {"description": "a model is not loaded (yet)"}})
async def healthz(ingress: Ingress) -> JSONResponse:
    """200 when every model deployment has loaded its model, else 503; the body says which."""
    h = await ingress.health()
    return JSONResponse(h, status_code=200 if h["ready"] else 503)


@api.get("/metrics", response_class=Response)
async def metrics_text(ingress: Ingress) -> Response:
    """Prometheus metrics of this ingress replica."""
    return Response(ingress.metrics.render(), media_type=ingress.metrics.content_type)


def _openapi() -> dict[str, Any]:
    """The generated schema, plus the ``Post`` schema the request body refers to."""
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    post = Post.model_json_schema(ref_template="#/components/schemas/{model}")
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.update(post.pop("$defs", {}))
    comps["Post"] = post
    schema["components"]["securitySchemes"] = {"bearerAuth": {
        "type": "http", "scheme": "bearer",
        "description": "MOODSTREAM_API_TOKEN; required when the server has one (and to serve beyond loopback)"}}
    for path, ops in schema["paths"].items():
        if is_protected(path):
            for op in ops.values():
                op["security"] = [{"bearerAuth": []}]
    items = schema["paths"]["/classify/items"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    items.update(_LIST_BOUNDS)
    api.openapi_schema = schema
    return schema


api.openapi = _openapi  # type: ignore[method-assign]
