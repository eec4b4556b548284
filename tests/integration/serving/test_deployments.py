"""The handle API the stream worker uses: a batch in, one Prediction or ItemError per item out, in order."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from moodstream.schema import Prediction
from moodstream.types import ClassifyItem, ItemError

pytestmark = pytest.mark.integration


def _item(pid: str, text: str | None = None, image: bytes | None = None) -> ClassifyItem:
    return ClassifyItem(post_id=pid, created_at=datetime(2024, 5, 1, 12, tzinfo=UTC), text=text, image=image)


def test_mixed_batch_keeps_order_and_isolates_bad_items(served, face_jpeg: bytes) -> None:
    from serving.pack import load_pack

    items = [
        _item("text-only", text="I love this, what a wonderful day!"),
        _item("image-only", image=face_jpeg),
        _item("both", text="what a day", image=face_jpeg),
        _item("corrupt", text="nice", image=b"\xff\xd8\xff\xe0 not really a jpeg"),
        _item("empty"),
        _item("blank-text", text="   "),
        _item("negative", text="This is awful, I hate everything about it."),
    ]
    out = served.handle.classify_batch.remote(items).result(timeout_s=120)
    assert len(out) == len(items)
    kinds = [type(r).__name__ for r in out]
    assert kinds == ["Prediction", "Prediction", "Prediction", "ItemError", "ItemError", "ItemError", "Prediction"]
    preds = {r.post_id: r for r in out if isinstance(r, Prediction)}
    assert [r.post_id for r in out if isinstance(r, Prediction)] == ["text-only", "image-only", "both", "negative"]
    version = load_pack(served.settings.model_dir).version
    for p in preds.values():
        assert p.model_version == version and p.fusion and p.latency_ms > 0
        assert abs(sum(p.sentiment.probs.values()) - 1) < 1e-3 and abs(sum(p.emotion.probs.values()) - 1) < 1e-3
    assert preds["text-only"].modalities.text is not None and preds["text-only"].modalities.image is None
    assert preds["image-only"].modalities.image is not None and preds["image-only"].modalities.text is None
    assert preds["both"].modalities.image.faces >= 1
    assert preds["text-only"].sentiment.label == "positive" and preds["negative"].sentiment.label == "negative"
    corrupt, empty = out[3], out[4]
    assert isinstance(corrupt, ItemError) and corrupt.reason and isinstance(empty, ItemError)


def test_batch_larger_than_a_model_batch_matches_the_in_process_pipeline(served, mvsa_posts) -> None:
    """40 posts (> max_batch_size 32) through Serve equal the in-process Pipeline, item for item."""
    from serving.pipeline import load_pipeline

    items = [_item(pid, text=text, image=img) for pid, text, img in mvsa_posts]
    assert len(items) > served.settings.serve_max_batch_size
    out = served.handle.classify_batch.remote(items).result(timeout_s=300)
    ref = load_pipeline(served.settings).classify(items)
    assert [getattr(r, "post_id", None) for r in out] == [getattr(r, "post_id", None) for r in ref]
    for got, want in zip(out, ref, strict=True):
        assert type(got) is type(want)
        if isinstance(got, Prediction):
            assert got.model_version == want.model_version and got.fusion == want.fusion
            assert got.sentiment.label == want.sentiment.label and got.emotion.label == want.emotion.label
            np.testing.assert_allclose(list(got.sentiment.probs.values()), list(want.sentiment.probs.values()),
                                       atol=1e-3)


def test_stream_worker_clients_get_the_same_answers(served, face_jpeg: bytes) -> None:
    """The worker's HTTP and handle clients (streams.classifier) speak the Serve app's contracts."""
    import asyncio

    from streams.classifier import HttpClassifierClient, ServeHandleClient

    items = [
        _item("t", text="I love this, what a wonderful day!"),
        _item("i", image=face_jpeg),
        _item("bad", text="nice", image=b"\x89PNG\r\n\x1a\n truncated"),
        _item("n", text="This is awful, I hate everything about it."),
    ]

    async def both() -> tuple[list, list]:
        http = HttpClassifierClient(f"http://127.0.0.1:{served.settings.serve_port}", timeout_s=120)
        handle = ServeHandleClient(served.settings.serve_app_name, None)
        try:
            return await http.classify(items), await handle.classify(items)
        finally:
            await http.close()
            await handle.close()

    via_http, via_handle = asyncio.run(both())
    for out in (via_http, via_handle):
        assert [type(r).__name__ for r in out] == ["Prediction", "Prediction", "ItemError", "Prediction"]
        assert out[0].sentiment.label == "positive" and out[3].sentiment.label == "negative"
        assert out[2].stage == "decode"
    assert [r.sentiment.label for r in via_http if isinstance(r, Prediction)] == \
        [r.sentiment.label for r in via_handle if isinstance(r, Prediction)]
