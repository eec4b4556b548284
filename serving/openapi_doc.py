"""The HTTP API's OpenAPI document, made to say exactly what the API does (and checked so by the schemathesis test,
``tests/integration/serving/test_http_fuzz.py``).

FastAPI generates the routes' part; ``complete`` adds what it cannot know: the ``Post`` body as this API accepts it
(inline images only, a caption or an image), list bounds, the bearer security scheme on the classify routes, and
the 200 answers of list bodies (a Prediction or an item error per item). What no schema can say (that an image's
bytes decode as an image) is the 422 "could not be classified".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from moodstream.schema import MAX_ID_LEN, MAX_TEXT_CHARS, Post, Prediction, WireItem
from serving.auth import TOKEN_SETTING, is_protected

MAX_POSTS_PER_REQUEST = 1024
NON_BLANK = r"\S"  # (patterns search) has a character that is not whitespace
NOT_ONLY_NUL = r"[^\u0000]"  # NUL characters are dropped, so an id needs another character
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
FORM_FIELDS = ("image", "text", "id", "created_at")


class ErrorOut(BaseModel):
    """An error, for the whole request or for one item of a list."""

    error: str
    post_id: str | None = None
    stage: str | None = None


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_LIST_BOUNDS = {"minItems": 1, "maxItems": MAX_POSTS_PER_REQUEST}
_CAPTION_OR_IMAGE = [{"required": ["text"], "properties": {"text": {"type": "string", "pattern": NON_BLANK}}},
                     {"required": ["image"]}]

# ``openapi_extra`` of POST /classify: the route reads its body itself (JSON or multipart).
CLASSIFY_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [_ref("Post"), {
                "type": "array", **_LIST_BOUNDS,
                "description": "posts, each classified on its own: an item that is not a valid Post gets its error "
                               "in its slot of the answer (200), the others their Predictions",
                "items": {"description": "a Post"}}]}},
            "multipart/form-data": {"schema": {
                "type": "object", "additionalProperties": False, "anyOf": _CAPTION_OR_IMAGE,
                "description": "an image file, a caption, or both (an empty file part, as a form sends with no "
                               "file chosen, counts as no image); `id` defaults to `upload-<random>`, `created_at` "
                               "to the time of the request",
                "properties": {"image": {"type": "string", "format": "binary"},
                               "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
                               "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN,
                                      "pattern": NOT_ONLY_NUL},
                               "created_at": {"type": "string", "format": "date-time"}},
            }},
        },
    },
}

# ``openapi_extra`` of POST /classify/items: the route validates its body itself, strictly.
CLASSIFY_ITEMS_REQUEST: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "array", "items": _ref("WireItem"), **_LIST_BOUNDS}}}}}

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Prediction, "description": "a Prediction; for a list body, a Prediction or an item error per item, "
                                              "in order"},
    400: {"model": ErrorOut, "description": "malformed body, or an empty list"},
    401: {"model": ErrorOut, "description": "missing or wrong bearer token (or, with no token configured, a client "
                                            "outside loopback)",
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    413: {"model": ErrorOut, "description": "request body too large"},
    415: {"model": ErrorOut, "description": "unsupported content type"},
    422: {"model": ErrorOut, "description": "not a valid post (or list), or the post could not be classified (e.g. "
                                            "its image does not decode)"},
    429: {"model": ErrorOut, "description": "too many requests from this client address",
          "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}


def _api_post(comps: dict[str, Any]) -> None:
    """``Post`` and ``ImageRef`` as this API takes them: inline images only, and a caption or an image."""
    post = Post.model_json_schema(ref_template="#/components/schemas/{model}")
    comps.update(post.pop("$defs", {}))
    post["properties"]["id"]["pattern"] = NOT_ONLY_NUL
    post["anyOf"] = [{"required": ["text"], "properties": {"text": {"type": "string", "pattern": NON_BLANK}}},
                     {"required": ["image"], "properties": {"image": {"type": "object"}}}]
    comps["Post"] = post
    comps["ImageRef"] = {
        "type": "object", "additionalProperties": False, "required": ["b64"], "title": "ImageRef",
        "description": "an image inline, base64-encoded (the HTTP API does not fetch image URLs)",
        "properties": {"b64": {"type": "string", "minLength": 1, "pattern": BASE64, "contentEncoding": "base64"},
                       "mime": {"anyOf": [{"type": "string", "maxLength": 100}, {"type": "null"}]}},
    }


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Post`` schemas, the security scheme, list bounds and list answers to a generated document."""
    _api_post(schema.setdefault("components", {}).setdefault("schemas", {}))
    schema["components"]["securitySchemes"] = {"bearerAuth": {
        "type": "http", "scheme": "bearer",
        "description": f"{TOKEN_SETTING}; required when the server has one (and to serve beyond loopback)"}}
    for path, ops in schema["paths"].items():
        if is_protected(path):
            for op in ops.values():
                op["security"] = [{"bearerAuth": []}]
    comps = schema["components"]["schemas"]
    comps["WireItem"] = WireItem.model_json_schema(ref_template="#/components/schemas/{model}")
    results = {"type": "array", "items": {"anyOf": [_ref("Prediction"), _ref("ErrorOut")]}}
    for path, ok in (("/classify", {"oneOf": [_ref("Prediction"), results]}), ("/classify/items", results)):
        schema["paths"][path]["post"]["responses"]["200"]["content"] = {"application/json": {"schema": ok}}
    return schema
