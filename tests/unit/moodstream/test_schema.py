"""Post v1 / Prediction wire schemas: round trips, every rejection reason, and fuzzed input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moodstream.schema import (
    DeadLetter,
    Modalities,
    ModalityOut,
    Post,
    PostError,
    Prediction,
    emotion_out,
    extract_hashtags,
    parse_post,
    sentiment_out,
)

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()
DEEP = {"id": "a", "created_at": "2026-01-01T00:00:00Z", "text": "t", "author": {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}  # noqa: E501


def post(**kw: object) -> bytes:
    base: dict[str, object] = {"id": "p1", "created_at": "2026-11-22T10:00:00Z", "text": "hello #World"}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_round_trip_keeps_every_field() -> None:
    p = parse_post(post(image={"b64": PNG_1PX, "mime": "image/png"}, author="a", lang="en", source="x"))
    again = parse_post(p.to_json())
    assert again == p
    assert again.image is not None and again.image.data().startswith(b"\x89PNG")
    assert again.created_at == datetime(2026, 11, 22, 10, tzinfo=UTC)


def test_hashtags_derived_from_text_when_absent() -> None:
    assert parse_post(post(text="Rain again #Monday #mood #monday")).hashtags == ["monday", "mood"]
    assert parse_post(post(text="#a", hashtags=["#Given", "given", "x"])).hashtags == ["given", "x"]
    assert extract_hashtags("mail me at a#b or see #ok") == ["ok"]


def test_naive_timestamp_is_taken_as_utc() -> None:
    assert parse_post(post(created_at="2026-01-01T00:00:00")).created_at.tzinfo is not None


def test_text_only_and_image_only_are_valid() -> None:
    assert parse_post(post(image=...)).image is None
    only_image = parse_post(post(text=..., image={"url": "https://example.org/a.jpg"}))
    assert only_image.text is None and only_image.hashtags == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "not an object"),
        (b'"just a string"', "not an object"),
        (post(id=...), "missing required field 'id'"),
        (post(id=""), "id"),
        (post(id="x" * 129), "id"),
        (post(created_at=...), "missing required field 'created_at'"),
        (post(created_at="yesterday"), "created_at is not an ISO-8601 timestamp"),
        (post(text=None), "no text and no image"),
        (post(text="   "), "no text and no image"),
        (post(text="x" * 10_001), "text is longer than 10000 characters"),
        (post(image={"b64": "!!!not base64!!!"}), "not valid base64"),
        (post(image={"url": "ftp://host/a.jpg"}), "scheme 'ftp'"),
        (post(image={"url": "gopher://x"}), "scheme 'gopher'"),
        (post(image={}), "exactly one of 'b64' or 'url'"),
        (post(image={"b64": PNG_1PX, "url": "http://x/y.png"}), "exactly one of 'b64' or 'url'"),
        (post(colour="red"), "unknown field 'colour'"),
        (post(v=2), "unsupported schema version"),
        (post(hashtags="notalist"), "hashtags"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (json.dumps(DEEP).encode(), "nested deeper"),
    ],
)
def test_every_bad_post_has_a_readable_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PostError) as e:
        parse_post(raw)
    assert reason in e.value.reason
    assert "\n" not in e.value.reason and len(e.value.reason) < 200


def test_null_bytes_are_stripped_from_every_string() -> None:
    p = parse_post(post(id="i\u0000d", text="a\u0000b", author="x\u0000", hashtags=["t\u0000ag", "\u0000"]))
    assert (p.id, p.text, p.author, p.hashtags) == ("id", "ab", "x", ["tag"])
    with pytest.raises(PostError, match="id is empty"):
        parse_post(post(id="\u0000"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_post_error(raw: bytes) -> None:
    try:
        assert isinstance(parse_post(raw), Post)
    except PostError as e:
        assert e.reason


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": JSONISH, "created_at": JSONISH | st.datetimes().map(str), "text": JSONISH,
            "image": JSONISH | st.fixed_dictionaries({}, optional={"b64": JSONISH, "url": JSONISH, "mime": JSONISH}),
            "hashtags": JSONISH, "author": JSONISH,
        },
    )
)
def test_structured_garbage_only_ever_raises_post_error(obj: dict) -> None:
    try:
        parse_post(json.dumps(obj).encode())
    except PostError as e:
        assert e.reason


def test_prediction_round_trip() -> None:
    pred = Prediction(
        post_id="p1", model_version="pack-abc", created_at=datetime(2026, 1, 1, tzinfo=UTC),
        processed_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
        sentiment=sentiment_out([0.1, 0.2, 0.7]), emotion=emotion_out([0, 0, 0, 0.9, 0.05, 0.05, 0]),
        modalities=Modalities(text=ModalityOut(sentiment={"negative": 0.1, "neutral": 0.2, "positive": 0.7},
                                               emotion={"joy": 1.0}), image=None),
        fusion="late", latency_ms=12.5,
    )
    assert pred.sentiment.label == "positive" and pred.sentiment.score == pytest.approx(0.6)
    assert pred.emotion.label == "joy"
    assert Prediction.model_validate_json(pred.to_json()) == pred
    assert set(json.loads(pred.to_json())) == {
        "post_id", "model_version", "created_at", "processed_at", "sentiment", "emotion", "modalities", "fusion",
        "latency_ms", "uncertain", "conflict",
    }
    assert pred.sentiment.confidence == pytest.approx(0.7)


def test_prediction_without_the_flags_still_parses() -> None:
    """A record written before issue #14 (no confidence, uncertain, conflict) reads with the defaults."""
    old = {"post_id": "p1", "model_version": "pack-abc", "created_at": "2026-01-01T00:00:00Z",
           "processed_at": "2026-01-01T00:00:01Z",
           "sentiment": {"label": "positive", "score": 0.6,
                         "probs": {"negative": 0.1, "neutral": 0.2, "positive": 0.7}},
           "emotion": {"label": "joy", "probs": {"joy": 1.0}}, "modalities": {"text": None, "image": None},
           "fusion": "late", "latency_ms": 1.0}
    pred = Prediction.model_validate(old)
    assert pred.sentiment.confidence is None and pred.uncertain is False and pred.conflict is False


def test_dead_letter_carries_the_original_bytes() -> None:
    dl = DeadLetter(reason="empty message", raw_b64=base64.b64encode(b"\x00").decode(), topic="posts",
                    partition=1, offset=7, failed_at=datetime.now(UTC))
    back = json.loads(dl.to_json())
    assert base64.b64decode(back["raw_b64"]) == b"\x00" and back["offset"] == 7


def test_wire_item_round_trip_and_broken_image() -> None:
    from datetime import UTC, datetime

    from moodstream.schema import WireItem
    from moodstream.types import ClassifyItem

    item = ClassifyItem(post_id="w1", created_at=datetime(2026, 1, 1, tzinfo=UTC), text="hi #x", image=b"\xff\xd8raw",
                        hashtags=["x"])
    wire = WireItem.model_validate_json(WireItem.of(item).model_dump_json())
    assert wire.item() == item
    broken = WireItem(post_id="w2", created_at=item.created_at, image_b64="not base64!")
    with pytest.raises(ValueError, match="not valid base64"):
        broken.item()
    with pytest.raises(ValueError):
        WireItem.model_validate({"post_id": "w3", "created_at": "2026-01-01T00:00:00Z", "extra": 1})
