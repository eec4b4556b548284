"""The ONNX runtime path: selected by the setting, and its outputs agree with PyTorch on real inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from moodstream.config import Settings
from serving.model_config import ModelConfig
from serving.onnx_runtime import OrtModule, check_runtime

CAPTIONS = ["I love this so much!! best day ever #happy", "worst service ever, never again. so angry",
            "the train leaves at 9 from platform 2", "can't stop crying, I miss you", "omg what a surprise \U0001F62E",
            "This is disgusting, who would eat that?", "Lovely sunset at the beach with friends #summer",
            "meh", "We lost the match. Gutted.", "Great news: the launch is a go! \U0001F680"]


def test_the_setting_is_read_and_passed_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODSTREAM_RUNTIME", "onnx")
    monkeypatch.setenv("MOODSTREAM_ONNX_CACHE_DIR", "/tmp/graphs")
    config = ModelConfig.from_settings(Settings(_env_file=None))
    assert config.runtime == "onnx" and config.onnx_cache == Path("/tmp/graphs")
    monkeypatch.setenv("MOODSTREAM_RUNTIME", "torch")
    assert ModelConfig.from_settings(Settings(_env_file=None)).runtime == "torch"
    with pytest.raises(ValueError):
        check_runtime("tensorrt")


def test_onnx_on_cuda_without_the_cuda_provider_falls_back_to_torch() -> None:
    import onnxruntime as ort

    from serving.onnx_runtime import effective_runtime

    assert effective_runtime("onnx", "cpu") == "onnx" and effective_runtime("torch", "cpu") == "torch"
    cuda_ort = "CUDAExecutionProvider" in ort.get_available_providers()
    assert effective_runtime("onnx", "cuda") == ("onnx" if cuda_ort else "torch")


def _photos() -> list[bytes]:
    from PIL import Image
    from skimage import data

    out = []
    for arr in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket()):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory):
    from serving.pipeline import Pipeline

    cache = tmp_path_factory.mktemp("onnx")
    return {rt: Pipeline.load(ModelConfig(runtime=rt, onnx_cache=cache, device="cpu")) for rt in ("torch", "onnx")}


def test_the_runtime_setting_selects_the_path(pipelines) -> None:
    onnx, torch_ = pipelines["onnx"], pipelines["torch"]
    assert onnx.runtime == "onnx" and torch_.runtime == "torch"
    assert onnx.text.encoder.graph is not None and torch_.text.encoder.graph is None
    assert isinstance(onnx.vision.embed_fn, OrtModule) and isinstance(onnx.vision.fer_fn, OrtModule)
    assert isinstance(onnx.vision.detector.pnet_fn, OrtModule)
    assert not isinstance(torch_.vision.embed_fn, OrtModule)
    assert not isinstance(torch_.vision.detector.pnet_fn, OrtModule)


def test_text_outputs_agree_with_torch(pipelines) -> None:
    a = pipelines["torch"].text.predict(CAPTIONS)
    b = pipelines["onnx"].text.predict(CAPTIONS)
    for x, y in zip(a, b, strict=True):
        assert np.abs(x.sentiment - y.sentiment).max() < 0.1
        assert np.abs(x.emotion - y.emotion).max() < 0.1
        assert float(x.embedding @ y.embedding) > 0.97  # both L2-normalised
    agree = np.mean([x.sentiment.argmax() == y.sentiment.argmax() for x, y in zip(a, b, strict=True)])
    assert agree >= 0.9


def test_vision_outputs_agree_with_torch(pipelines) -> None:
    photos = _photos()
    a = pipelines["torch"].vision.predict(photos)
    b = pipelines["onnx"].vision.predict(photos)
    assert [x.faces for x in a] == [y.faces for y in b]
    assert a[0].faces >= 1  # the astronaut's face, on both runtimes
    for x, y in zip(a, b, strict=True):
        assert np.abs(x.sentiment - y.sentiment).max() < 0.1
        assert np.abs(x.emotion - y.emotion).max() < 0.05
        assert float(x.embedding @ y.embedding) > 0.97


def test_a_repost_in_the_batch_is_computed_once(pipelines, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = pipelines["onnx"]
    seen: list[int] = []
    encode = pipe.text.encoder.encode
    monkeypatch.setattr(pipe.text.encoder, "encode", lambda texts, *a, **k: seen.append(len(texts)) or
                        encode(texts, *a, **k))
    photo = _photos()[0]
    out = pipe.text.predict([CAPTIONS[0], CAPTIONS[1], CAPTIONS[0]])
    assert seen == [2]
    assert np.array_equal(out[0].sentiment, out[2].sentiment)
    images = pipe.vision.predict([photo, b"not an image", photo])
    assert images[0].faces == images[2].faces and np.array_equal(images[0].embedding, images[2].embedding)
    assert images[1].__class__.__name__ == "ItemError"
