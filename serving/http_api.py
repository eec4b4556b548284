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

Errors are JSON ``{"error": reason}`` (FastAPI's own errors too): 400 malformed body or an empty list, 413 body over
``serve_max_request_bytes``, 415 other content types, 422 a post that is well-formed JSON but not a valid post
(reasons from ``parse_post``), a list over ``MAX_POSTS_PER_REQUEST``, an unknown multipart field, or a post that
cannot be classified. Images given by ``url`` are not fetched here (that is the stream worker's job): such an
item gets the error ``URL_IMAGE``. The OpenAPI document (``serving.openapi_doc``) says all of this, and a
schemathesis run in ``make test`` holds the two to each other.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moodstream.schema import MAX_TEXT_CHARS, Post, PostError, Prediction, WireItem, parse_post
from moodstream.types import ClassifyItem, ItemError
from serving.auth import BearerAuth, is_protected
from serving.openapi_doc import (
    CLASSIFY_ITEMS_REQUEST,
    CLASSIFY_REQUEST,
    FORM_FIELDS,
    MAX_POSTS_PER_REQUEST,
    RESPONSES,
    complete,
)
from serving.rate_limit import TokenBucketLimiter, retry_after

_WIRE_ITEMS = TypeAdapter(list[WireItem])
URL_IMAGE = "image by URL is not fetched by the HTTP API; send it inline as image.b64"
DEFAULT_MAX_REQUEST_BYTES = 25 * 1024 * 1024


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


@api.exception_handler(StarletteHTTPException)
async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own HTTP errors (e.g. a body it cannot parse) as ``{"error"}`` too."""
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def validation_reason(errors: Sequence[Any]) -> str:
    """The first pydantic/FastAPI validation error as one line, e.g. ``0.created_at: Input should be ...``."""
    first = errors[0] if errors else {}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    msg = str(first.get("msg", "invalid request"))
    return f"{loc}: {msg}" if loc else msg


@api.exception_handler(RequestValidationError)
async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own request validation answers like every other error: 422 ``{"error"}``."""
    return error(422, validation_reason(exc.errors()))


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


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def _unsupported_type(request: Request, expected: str = "application/json") -> Response | None:
    """415 unless the body is JSON (no ``Content-Type`` counts as JSON)."""
    ctype = _content_type(request)
    if ctype == "application/json" or ctype.endswith("+json"):
        return None
    return error(415, f"unsupported content type {ctype!r}; send {expected}")


@api.post("/classify", openapi_extra=CLASSIFY_REQUEST, responses=RESPONSES, response_model=None)
async def classify(request: Request, ingress: Ingress) -> Response:
    """Classify one post (JSON or multipart upload) or a JSON list of posts."""
    if _content_type(request) == "multipart/form-data":
        return await _classify_form(request, ingress)
    refused = _unsupported_type(request, "application/json or multipart/form-data")
    if refused is not None:
        return refused
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


@api.post("/classify/items", openapi_extra=CLASSIFY_ITEMS_REQUEST, responses=RESPONSES, response_model=None)
async def classify_items(request: Request, ingress: Ingress) -> Response:
    """Classify posts a stream worker has already validated (``WireItem``s): a list in, a list out, in order.

    The body is validated strictly, as the document says (a ``created_at`` must be a date-time string, not a
    number; text must be a string)."""
    refused = _unsupported_type(request)
    if refused is not None:
        return refused
    try:
        items = _WIRE_ITEMS.validate_json(await request.body(), strict=True)
    except ValidationError as e:
        return error(422, validation_reason(e.errors()))

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
        return error(422, f"at most {MAX_POSTS_PER_REQUEST} {noun}s per request")
    results = await ingress.classify_items([to_item(x) for x in inputs], api="http")
    return JSONResponse([result_json(r, post_id(x)) for r, x in zip(results, inputs, strict=True)])


async def _classify_form(request: Request, ingress: Any) -> Response:
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=4 * MAX_TEXT_CHARS + 1024)
    except Exception as e:
        return error(400, f"malformed multipart body: {getattr(e, 'detail', e)}")
    unknown = sorted(set(form.keys()) - set(FORM_FIELDS))
    if unknown:
        return error(422, f"unknown field {unknown[0]!r}; send {', '.join(FORM_FIELDS)}")
    upload, text = form.get("image"), form.get("text")
    if upload is not None and not isinstance(upload, UploadFile):
        return error(422, "'image' must be a file part")
    pid, created = form.get("id"), form.get("created_at")  # absent: defaults; present, even empty: validated
    obj: dict[str, Any] = {"id": f"upload-{uuid.uuid4().hex[:16]}" if pid is None else str(pid),
                           "created_at": datetime.now(UTC).isoformat() if created is None else str(created)}
    if text is not None:
        obj["text"] = str(text)
    data = await upload.read() if upload is not None else b""
    if data:  # an empty file part (a form with no file chosen) is no image
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
    """The generated document, completed by ``serving.openapi_doc`` (built once)."""
    if not api.openapi_schema:
        api.openapi_schema = complete(get_openapi(title=api.title, version=api.version, description=api.description,
                                                  routes=api.routes))
    return api.openapi_schema


api.openapi = _openapi  # type: ignore[method-assign]
