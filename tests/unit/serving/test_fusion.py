"""Fusion strategies of the committed pack on real text/image model outputs: both, text-only and image-only."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

from moodstream.labels import EMOTION_INDEX, SENTIMENT_INDEX
from moodstream.types import ModalityResult
from serving.fusion import (
    STRATEGIES,
    AttentionNet,
    ConcatNet,
    FusionModel,
    StackedNet,
    emotion_rule,
    pair_fused_log_probs,
    pair_log_probs,
    rule_log_probs,
    stack_inputs,
)


def astronaut_jpeg() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def results() -> dict[str, ModalityResult]:
    from serving.text_model import TextModel
    from serving.vision_model import VisionModel

    pos, neg = TextModel.load().predict(["what a wonderful day, I love it", "this is awful, I hate everything"])
    (img,) = VisionModel.load().predict([astronaut_jpeg()])
    assert isinstance(img, ModalityResult)
    return {"pos": pos, "neg": neg, "img": img}


@pytest.fixture(scope="module")
def fusion() -> FusionModel:
    return FusionModel.load()


def _valid(sent: np.ndarray, emo: np.ndarray) -> None:
    assert sent.shape == (3,) and emo.shape == (7,)
    assert np.isclose(sent.sum(), 1, atol=1e-4) and np.isclose(emo.sum(), 1, atol=1e-4)
    assert (sent >= 0).all() and (emo >= 0).all()


def test_pack_has_every_strategy_and_a_default(fusion: FusionModel) -> None:
    assert fusion.strategies == STRATEGIES
    assert fusion.strategy == fusion.config["default"]
    assert 0.0 <= fusion.w_text <= 1.0


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("single", ["fallback", "model"])
def test_strategy_handles_both_text_only_and_image_only(results, strategy: str, single: str) -> None:
    fusion = FusionModel.load(strategy=strategy, single_modality=single)
    text = [results["pos"], results["neg"], None]
    image = [results["img"], None, results["img"]]
    out = fusion.fuse(text, image)
    assert len(out) == 3
    for sent, emo in out:
        _valid(sent, emo)
    pos = SENTIMENT_INDEX["positive"]
    assert out[0][0].argmax() == pos, "happy caption + smiling face should fuse to positive"
    assert out[1][0].argmax() == SENTIMENT_INDEX["negative"], "a clearly negative caption alone stays negative"
    if single == "fallback":
        np.testing.assert_allclose(out[1][0], results["neg"].sentiment, atol=1e-6)
        np.testing.assert_allclose(out[2][0], results["img"].sentiment, atol=1e-6)


def test_missing_both_modalities_is_an_error(fusion: FusionModel, results) -> None:
    with pytest.raises(ValueError, match="neither"):
        fusion.fuse([results["pos"], None], [None, None])
    assert fusion.fuse([], []) == []


def test_emotion_rule_weights_faces() -> None:
    tq = np.eye(7, dtype=np.float32)[[EMOTION_INDEX["sadness"]] * 4]
    iq = np.eye(7, dtype=np.float32)[[EMOTION_INDEX["joy"]] * 4]
    mask = np.array([[1, 1], [1, 1], [1, 0], [0, 1]], np.float32)
    out = emotion_rule(tq, iq, mask, faces=np.array([0, 2, 0, 0]))
    joy, sad = EMOTION_INDEX["joy"], EMOTION_INDEX["sadness"]
    assert out[0, sad] == 1.0  # no face → text emotion
    assert np.isclose(out[1, joy], 2 / 3) and np.isclose(out[1, sad], 1 / 3)  # 2 faces → 2/3 image
    assert out[2, sad] == 1.0 and out[3, joy] == 1.0  # one modality → its own emotion


def test_joy_face_and_happy_caption_fuse_to_joy(fusion: FusionModel, results) -> None:
    ((_, emo),) = fusion.fuse([results["pos"]], [results["img"]])
    assert emo.argmax() == EMOTION_INDEX["joy"]


def test_concat_net_reads_probabilities_when_asked() -> None:
    n = 4
    args = [torch.rand(n, 3), torch.rand(n, 3), torch.randn(n, 384), torch.randn(n, 1280), torch.ones(n, 2)]
    assert ConcatNet(probs=True)(*args).shape == (n, 3)
    assert ConcatNet()(*args).shape == (n, 3)
    assert ConcatNet(probs=True).mlp[1].in_features == ConcatNet().mlp[1].in_features + 6


def test_fusion_temperature_from_config_applies_to_two_modality_posts() -> None:
    base = FusionModel.load()
    rng = np.random.default_rng(0)

    def res(p, dim):
        return ModalityResult(sentiment=np.asarray(p, np.float32), emotion=np.full(7, 1 / 7, np.float32),
                              embedding=rng.normal(0, 1, dim).astype(np.float32))

    texts = [res([0.1, 0.1, 0.8], 384), res([0.7, 0.2, 0.1], 384)]
    images = [res([0.2, 0.2, 0.6], 1280), res([0.3, 0.3, 0.4], 1280)]
    arrays = stack_inputs(texts, images)
    config = copy.deepcopy(base.config)
    config[base.strategy]["temperature"] = 3.0
    hot = FusionModel(config, base.networks, base.strategy)
    p0 = base.sentiment({k: v.copy() for k, v in arrays.items()})
    p3 = hot.sentiment({k: v.copy() for k, v in arrays.items()})
    assert hot.temperature() == 3.0
    assert (p0.argmax(1) == p3.argmax(1)).all() and (p3.max(1) < p0.max(1)).all()
    # a text-only post keeps the text head's own (calibrated) output
    only = stack_inputs(texts[:1], [None])
    assert np.allclose(hot.sentiment(only), texts[0].sentiment)


def test_rule_log_probs_follows_mvsa_rule() -> None:
    big = 20.0
    logits = {k: torch.full((1, 3), -big).index_fill(1, torch.tensor([k]), big) for k in (0, 1, 2)}
    both = torch.ones(1, 2)
    cases = {(0, 0): 0, (1, 2): 2, (2, 1): 2, (0, 1): 0, (1, 0): 0, (1, 1): 1}  # (text, image) → fused
    for (t, i), fused in cases.items():
        p = rule_log_probs(logits[t], logits[i], both).exp()
        assert torch.isclose(p.sum(), torch.tensor(1.0)) and int(p.argmax()) == fused
    # a missing image counts as neutral: the fused distribution is the text one
    zt = torch.tensor([[0.3, -1.0, 1.2]])
    p = rule_log_probs(zt, torch.zeros(1, 3), torch.tensor([[1.0, 0.0]])).exp()
    assert torch.allclose(p, torch.softmax(zt, 1), atol=1e-6)


@pytest.mark.parametrize("net_cls", [StackedNet, ConcatNet, AttentionNet])
def test_factored_nets_output_fused_text_and_image_logits(net_cls) -> None:
    n = 5
    args = [torch.rand(n, 3), torch.rand(n, 3), torch.randn(n, 384), torch.randn(n, 1280), torch.ones(n, 2)]
    net = net_cls(factored=True, residual=True).eval()
    fused, zt, zi = net.parts(*args)
    assert fused.shape == zt.shape == zi.shape == (n, 3)
    assert torch.allclose(net(*args), fused)
    plain = net_cls().eval()
    assert plain(*args).shape == (n, 3) and plain.parts(*args)[1] is None
    joint = net_cls(joint=True).eval()
    fused, pairs, none = joint.parts(*args)
    assert none is None and pairs.shape == (n, 9)
    assert torch.allclose(fused.exp().sum(1), torch.ones(n), atol=1e-5)


def test_pair_log_probs_drop_conflicts_and_fuse_by_the_rule() -> None:
    z = torch.zeros(2, 9)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    p = pair_log_probs(z, mask).exp().view(2, 3, 3)
    assert p[0, 0, 2] == 0 and p[0, 2, 0] == 0 and torch.isclose(p[0].sum(), torch.tensor(1.0))
    assert torch.allclose(p[0][p[0] > 0], torch.full((7,), 1 / 7))
    assert torch.allclose(p[1, :, 1], torch.full((3,), 1 / 3))  # image absent: its label is neutral
    fused = pair_fused_log_probs(pair_log_probs(z, mask)).exp()
    assert torch.allclose(fused[0], torch.tensor([3 / 7, 1 / 7, 3 / 7]))
    assert torch.allclose(fused[1], torch.full((3,), 1 / 3))
