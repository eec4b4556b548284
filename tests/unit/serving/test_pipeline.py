"""The in-process pipeline on fixtures a reader can check: a smiling astronaut, clear captions, corrupt bytes."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from moodstream.schema import Prediction
from moodstream.types import ClassifyItem, ItemError
from serving.pipeline import NO_CONTENT, Pipeline

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def astronaut_jpeg() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.load()


def item(post_id: str, text: str | None = None, image: bytes | None = None) -> ClassifyItem:
    return ClassifyItem(post_id=post_id, created_at=NOW, text=text, image=image)


def test_smiling_astronaut_with_happy_caption(pipe: Pipeline) -> None:
    (pred,) = pipe.classify([item("a", "what a wonderful day", astronaut_jpeg())])
    assert isinstance(pred, Prediction)
    assert pred.sentiment.label == "positive" and pred.sentiment.score > 0
    assert pred.modalities.image is not None and pred.modalities.text is not None
    assert (pred.modalities.image.faces or 0) >= 1
    img_emo = pred.modalities.image.emotion
    assert max(img_emo, key=img_emo.__getitem__) == "joy"
    assert pred.emotion.label == "joy"
    assert pred.model_version == pipe.pack.version
    assert pred.fusion == pipe.fusion.strategy == pipe.pack.default_fusion
    assert pred.created_at == NOW and pred.latency_ms > 0
    Prediction.model_validate_json(pred.to_json())  # round-trips on the wire


def test_clear_negative_caption_is_negative(pipe: Pipeline) -> None:
    (pred,) = pipe.classify([item("n", "This is the worst day of my life. I hate everything, it's awful.")])
    assert isinstance(pred, Prediction)
    assert pred.sentiment.label == "negative" and pred.sentiment.score < 0
    assert pred.modalities.image is None and pred.modalities.text is not None


def test_text_only_and_image_only(pipe: Pipeline) -> None:
    text_only, image_only = pipe.classify([item("t", "so happy with my new puppy!"), item("i", None, astronaut_jpeg())])
    assert isinstance(text_only, Prediction) and isinstance(image_only, Prediction)
    assert text_only.modalities.image is None and text_only.sentiment.label == "positive"
    assert image_only.modalities.text is None and image_only.modalities.image is not None
    assert image_only.emotion.label == "joy"


def test_corrupt_image_fails_only_its_item_and_order_is_kept(pipe: Pipeline) -> None:
    jpeg = astronaut_jpeg()
    items = [item("0", "lovely morning", jpeg), item("1", "caption", b"\xff\xd8\xffnot really a jpeg"),
             item("2", "terrible news today"), item("3", "   "), item("4", None, jpeg)]
    out = pipe.classify(items)
    assert len(out) == 5
    assert isinstance(out[1], ItemError) and out[1].reason
    assert isinstance(out[3], ItemError) and out[3].reason == NO_CONTENT
    assert [p.post_id for p in out if isinstance(p, Prediction)] == ["0", "2", "4"]
    assert pipe.classify([]) == []


def test_build_prediction_imports_without_ray() -> None:
    code = "import sys, serving.pipeline as p; p.build_prediction; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_thread_plan() -> None:
    from serving.pipeline import thread_plan

    assert thread_plan(None, cpus=2) == (1, True)  # text and vision side by side, one core each
    assert thread_plan(None, cpus=16) == (8, True)
    assert thread_plan(None, cpus=1) == (1, False)
    assert thread_plan(2, cpus=2) == (2, False)  # an explicit setting is kept
    assert thread_plan(1, cpus=4) == (1, True)


def test_text_beside_vision_gives_the_same_predictions(pipe: Pipeline) -> None:
    items = [item("a", "what a wonderful day", astronaut_jpeg()), item("b", "so sad"), item("c", None,
                                                                                              astronaut_jpeg())]
    before = pipe.parallel
    try:
        pipe.parallel = True
        side = pipe.classify(items)
        pipe.parallel = False
        serial = pipe.classify(items)
    finally:
        pipe.parallel = before
    for a, b in zip(side, serial, strict=True):
        assert isinstance(a, Prediction) and isinstance(b, Prediction)
        assert a.sentiment.probs == b.sentiment.probs and a.emotion.probs == b.emotion.probs
