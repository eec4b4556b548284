"""VisionModel with the committed pack: faces → emotion, no-face fallback, per-item errors inside a batch."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

from moodstream import labels
from moodstream.types import ItemError, ModalityResult
from serving.vision_model import VisionModel, no_face_emotion

JOY = labels.EMOTION_INDEX["joy"]


def jpeg(arr: np.ndarray | Image.Image, **kw) -> bytes:
    im = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def model() -> VisionModel:
    return VisionModel.load()


@pytest.fixture(scope="module")
def astronaut() -> bytes:
    return jpeg(data.astronaut())


@pytest.fixture(scope="module")
def coffee() -> bytes:
    return jpeg(data.coffee())


def check_result(r: ModalityResult | ItemError) -> ModalityResult:
    assert isinstance(r, ModalityResult), r
    assert r.sentiment.shape == (3,) and r.emotion.shape == (7,) and r.embedding.shape == (1280,)
    assert abs(r.sentiment.sum() - 1) < 1e-5 and abs(r.emotion.sum() - 1) < 1e-5
    assert (r.sentiment >= 0).all() and (r.emotion >= 0).all()
    assert abs(np.linalg.norm(r.embedding) - 1) < 1e-4
    return r


def test_astronaut_is_one_smiling_face(model: VisionModel, astronaut: bytes) -> None:
    (r,) = model.predict([astronaut])
    r = check_result(r)
    assert r.faces == 1
    assert int(r.emotion.argmax()) == JOY and r.emotion[JOY] > 0.5


def test_coffee_has_no_face_and_a_valid_result(model: VisionModel, coffee: bytes) -> None:
    (r,) = model.predict([coffee])
    r = check_result(r)
    assert r.faces == 0
    assert np.allclose(r.emotion, no_face_emotion(r.sentiment), atol=1e-6)


def test_bad_items_fail_alone_in_a_batch(model: VisionModel, astronaut: bytes, coffee: bytes) -> None:
    truncated = astronaut[: len(astronaut) // 2]
    batch = [astronaut, b"", b"\x00\x01 definitely not an image", bomb_png(), truncated, None, coffee]
    out = model.predict(batch)  # type: ignore[arg-type]
    assert len(out) == len(batch)
    errors = out[1:6]
    assert all(isinstance(e, ItemError) and e.stage == "decode" for e in errors), errors
    reasons = [e.reason for e in errors]  # type: ignore[union-attr]
    assert "empty" in reasons[0] and "not an image" in reasons[1] and "too large" in reasons[2]
    assert "truncated" in reasons[3] and "no image" in reasons[4]
    a, c = check_result(out[0]), check_result(out[6])
    assert a.faces == 1 and c.faces == 0
    (alone,) = model.predict([astronaut])  # batching does not change an item's result
    assert np.allclose(alone.sentiment, a.sentiment, atol=1e-4)  # type: ignore[union-attr]
    assert np.allclose(alone.embedding, a.embedding, atol=1e-4)  # type: ignore[union-attr]


def test_cmyk_and_rotated_jpegs_are_classified(model: VisionModel) -> None:
    cmyk = jpeg(Image.fromarray(data.astronaut()).convert("CMYK"))
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: needs 90° counter-clockwise to display upright
    rotated = jpeg(Image.fromarray(data.astronaut()).transpose(Image.Transpose.ROTATE_270), exif=exif.tobytes())
    for r in model.predict([cmyk, rotated]):
        r = check_result(r)
        assert r.faces == 1 and int(r.emotion.argmax()) == JOY


def test_empty_batch(model: VisionModel) -> None:
    assert model.predict([]) == []


def test_no_face_prior() -> None:
    pos = no_face_emotion(np.array([0.0, 0.0, 1.0], dtype=np.float32))
    neg = no_face_emotion(np.array([1.0, 0.0, 0.0], dtype=np.float32))
    assert int(pos.argmax()) == JOY and abs(pos.sum() - 1) < 1e-6
    assert neg[labels.EMOTION_INDEX["joy"]] < neg[labels.EMOTION_INDEX["sadness"]] and abs(neg.sum() - 1) < 1e-6


def test_fast_backbone_and_expression_net_match_the_eager_modules(model: VisionModel) -> None:
    """The TorchScript/oneDNN versions (on CPU) and the 4-image backbone chunks keep the outputs."""
    import torch

    from serving.backbones import preprocess

    ims = [Image.fromarray(data.astronaut()), Image.fromarray(data.coffee()), Image.fromarray(data.chelsea()),
           Image.fromarray(data.rocket()), Image.fromarray(data.camera()).convert("RGB")]
    with torch.inference_mode():
        eager = model.backbone.embed(preprocess(ims)).numpy()
        faces = torch.rand(6, 1, 64, 64) * 2 - 1
        assert torch.allclose(model.fer_fn(faces), model.fer(faces), atol=1e-4)
    assert np.allclose(model.features(ims), eager, atol=1e-4)


def test_jit_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from serving.torch_opt import Frozen, for_inference

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.rand(2, 3, 16, 16)
    fast = for_inference(net, x)
    assert isinstance(fast, Frozen)
    with torch.inference_mode():
        assert torch.allclose(fast(x), net(x), atol=1e-5)
    monkeypatch.setenv("MOODSTREAM_TORCH_JIT", "0")
    assert for_inference(net, x) is net
