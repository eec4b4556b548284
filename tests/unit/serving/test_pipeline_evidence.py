"""Issue #14 on the committed pack: a caption's clear sentiment survives an image that carries none, and every
prediction carries its calibrated confidence and flags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelling.robustness import grey_image, sample_photo
from moodstream.schema import Prediction
from moodstream.types import ClassifyItem
from serving.pipeline import Pipeline

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HATE = "This espresso is terrible, I hate it #coffee"
LOVE = "Best day ever, I love this place!"


@pytest.fixture(scope="module")
def preds() -> list[Prediction]:
    pipe = Pipeline.load()
    items = [ClassifyItem(post_id=str(k), created_at=NOW, text=t, image=i) for k, (t, i) in enumerate([
        (HATE, grey_image(128)), (LOVE, grey_image(128)), (HATE, sample_photo("coffee")), (HATE, None)])]
    out = pipe.classify(items)
    assert all(isinstance(p, Prediction) for p in out)
    return out  # type: ignore[return-value]


def test_blank_image_does_not_override_the_caption(preds: list[Prediction]) -> None:
    assert preds[0].sentiment.label == "negative"
    assert preds[1].sentiment.label == "positive"


def test_negative_caption_with_a_photo_the_image_head_likes_is_a_conflict(preds: list[Prediction]) -> None:
    p = preds[2]
    assert p.modalities.image is not None and max(p.modalities.image.sentiment, key=p.modalities.image.sentiment.get) \
        == "positive"
    assert p.conflict is True
    assert p.sentiment.label == "negative"


def test_confidence_and_uncertain_flag(preds: list[Prediction]) -> None:
    from moodstream.config import DEFAULT_UNCERTAIN_BELOW

    for p in preds:
        assert p.sentiment.confidence == pytest.approx(max(p.sentiment.probs.values()))
        assert p.uncertain == (p.sentiment.confidence < DEFAULT_UNCERTAIN_BELOW)
    assert preds[3].conflict is False  # no image, no conflict
