"""Wire schemas: ``Post`` v1 (input on ``posts``) and ``Prediction`` (on ``predictions`` and in the database).

``parse_post(raw_bytes)`` is the only way a worker turns bytes into a Post: every failure is a
``PostError`` whose ``reason`` is one short, human-readable line, fit for the dead-letter topic.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moodstream.labels import EMOTIONS, SENTIMENTS

SCHEMA_VERSION = 1
MAX_ID_LEN = 128
MAX_TEXT_CHARS = 10_000
MAX_RAW_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 16
HASHTAG_RE = re.compile(r"(?<![\w#])#(\w{1,100})", re.UNICODE)
URL_SCHEMES = ("http", "https", "file")


class PostError(ValueError):
    """A post that cannot be accepted; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def extract_hashtags(text: str | None) -> list[str]:
    """Lower-cased hashtags in order of first appearance, without ``#``."""
    if not text:
        return []
    seen: dict[str, None] = {}
    for tag in HASHTAG_RE.findall(text):
        seen.setdefault(tag.lower(), None)
    return list(seen)


class ImageRef(BaseModel):
    """An image inline (``b64``) or by reference (``url``); exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    b64: str | None = None
    url: str | None = None
    mime: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageRef:
        if (self.b64 is None) == (self.url is None):
            raise ValueError("image needs exactly one of 'b64' or 'url'")
        if self.b64 is not None:
            try:
                base64.b64decode(self.b64, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("image.b64 is not valid base64") from None
            if not self.b64:
                raise ValueError("image.b64 is empty")
        if self.url is not None:
            scheme = self.url.split(":", 1)[0].lower() if ":" in self.url else ""
            if scheme not in URL_SCHEMES:
                raise ValueError(f"image.url scheme {scheme or '(none)'!r} is not http, https or file")
        return self

    def data(self) -> bytes:
        """Decoded inline bytes (only for ``b64`` images)."""
        if self.b64 is None:
            raise ValueError("image is a URL reference, not inline bytes")
        return base64.b64decode(self.b64, validate=True)


class Post(BaseModel):
    """Post v1: a social-media post with a caption, an image, or both."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: str = Field(min_length=1, max_length=MAX_ID_LEN)
    created_at: datetime
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS)
    image: ImageRef | None = None
    author: str | None = Field(None, max_length=256)
    lang: str | None = Field(None, max_length=32)
    source: str | None = Field(None, max_length=256)
    hashtags: list[str] | None = Field(None, max_length=100)
    v: Literal[1] = SCHEMA_VERSION

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        tags = (t.replace("\x00", "").lstrip("#").lower()[:100] for t in v)
        return list(dict.fromkeys(t for t in tags if t))

    @field_validator("id", "text", "author", "lang", "source", mode="after")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        """NUL characters carry no meaning in a post and PostgreSQL text cannot store them."""
        return v.replace("\x00", "") if v is not None else None

    @model_validator(mode="after")
    def _content(self) -> Post:
        if not self.id:
            raise ValueError("id is empty")
        if not (self.text and self.text.strip()) and self.image is None:
            raise ValueError("post has no text and no image")
        if self.hashtags is None:
            self.hashtags = extract_hashtags(self.text)
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping early past ``limit``."""
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((x, d + 1) for x in node.values())
        elif isinstance(node, list):
            stack.extend((x, d + 1) for x in node)
    return deepest


_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.S)


def _too_deep(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests deeper than ``limit``, found without parsing it.

    Checked before ``json.loads`` so that hostile input never drives the parser into a RecursionError
    (which on CPython 3.11 can leave the interpreter's recursion accounting in a bad state).
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth, in_string = 0, False
    for m in _JSON_TOKENS.finditer(raw):
        tok = m.group()
        if tok[:1] == b"\\":
            continue
        if tok == b'"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if tok in (b"[", b"{") else -1
            if depth > limit:
                return True
    return False


def _reason(err: ValidationError) -> str:
    """The first validation error as one readable line."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    msg = str(e["msg"]).removeprefix("Value error, ")
    kind = e["type"]
    if kind == "missing":
        return f"missing required field '{loc}'"
    if kind == "extra_forbidden":
        return f"unknown field '{loc}'"
    if loc == "text" and kind == "string_too_long":
        return f"text is longer than {MAX_TEXT_CHARS} characters"
    if loc == "created_at":
        return "created_at is not an ISO-8601 timestamp"
    return f"{loc}: {msg}" if loc else msg


def parse_post(raw: bytes | str | dict[str, Any]) -> Post:
    """Validate raw bytes (or an already-decoded dict) as Post v1; raise ``PostError`` otherwise."""
    if isinstance(raw, dict):
        obj: Any = raw
    else:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise PostError(f"value is {type(raw).__name__}, not bytes")
        if len(raw) == 0:
            raise PostError("empty message")
        if len(raw) > MAX_RAW_BYTES:
            raise PostError(f"message is larger than {MAX_RAW_BYTES} bytes")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise PostError("message is not valid UTF-8") from None
        if _too_deep(bytes(raw), MAX_JSON_DEPTH):
            raise PostError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            obj = json.loads(text)
        except RecursionError:
            raise PostError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        except ValueError as e:
            raise PostError(f"not valid JSON: {str(e).split(':')[0]}") from None
    if not isinstance(obj, dict):
        raise PostError(f"JSON value is a {type(obj).__name__}, not an object")
    if _depth(obj, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise PostError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if obj.get("v", 1) != SCHEMA_VERSION:
        raise PostError(f"unsupported schema version {obj.get('v')!r}")
    try:
        return Post.model_validate(obj)
    except ValidationError as e:
        raise PostError(_reason(e)) from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. datetime overflow deep in pydantic
        raise PostError(f"invalid post: {e}") from None


# --------------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------------


class SentimentOut(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(ge=-1.0, le=1.0, description="P(positive) - P(negative)")
    probs: dict[str, float]
    confidence: float | None = Field(None, ge=0.0, le=1.0,
                                     description="calibrated probability of the chosen label (absent in old records)")


class EmotionOut(BaseModel):
    label: Literal["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
    probs: dict[str, float]


class ModalityOut(BaseModel):
    sentiment: dict[str, float]
    emotion: dict[str, float]
    faces: int | None = None


class Modalities(BaseModel):
    text: ModalityOut | None = None
    image: ModalityOut | None = None


class Prediction(BaseModel):
    """The classification of one post."""

    post_id: str
    model_version: str
    created_at: datetime
    processed_at: datetime
    sentiment: SentimentOut
    emotion: EmotionOut
    modalities: Modalities
    fusion: str
    latency_ms: float
    uncertain: bool = Field(False, description="calibrated confidence below MOODSTREAM_UNCERTAIN_BELOW")
    conflict: bool = Field(False, description="text and image each confidently polar, in opposite directions")

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def probs_dict(labels: tuple[str, ...], values: Any) -> dict[str, float]:
    """Pair a probability vector with its label names (rounded for the wire)."""
    return {lab: round(float(p), 6) for lab, p in zip(labels, values, strict=True)}


def sentiment_out(probs: Any) -> SentimentOut:
    d = probs_dict(SENTIMENTS, probs)
    label = max(d, key=d.__getitem__)
    score = max(-1.0, min(1.0, d["positive"] - d["negative"]))
    confidence = min(1.0, max(0.0, d[label]))
    return SentimentOut(label=label, score=round(score, 6), probs=d, confidence=confidence)  # type: ignore[arg-type]


def emotion_out(probs: Any) -> EmotionOut:
    d = probs_dict(EMOTIONS, probs)
    return EmotionOut(label=max(d, key=d.__getitem__), probs=d)  # type: ignore[arg-type]


class DeadLetter(BaseModel):
    """What goes to ``posts.dlq``: why, and the original bytes (base64) with their origin."""

    reason: str
    stage: Literal["validate", "fetch", "decode", "classify", "persist"] = "validate"
    post_id: str | None = None
    raw_b64: str
    topic: str
    partition: int
    offset: int
    failed_at: datetime

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
