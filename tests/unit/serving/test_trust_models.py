"""Calibration temperatures applied by the committed pack's models, and the probability-reading concat net."""

from __future__ import annotations

import copy

import numpy as np
import torch

from serving.fusion import ConcatNet, FusionModel, stack_inputs
from serving.heads import Head
from serving.training.text_tweets import tune_bias, val_score
from serving.types import ModalityResult


def test_head_temperature_softens_without_changing_the_label() -> None:
    torch.manual_seed(0)
    head = Head(8, 3, hidden=None, dropout=0.0).eval()
    x = np.random.default_rng(0).normal(0, 3, (20, 8)).astype(np.float32)
    p1 = head.predict_proba(x)
    head.temperature = 2.0
    p2 = head.predict_proba(x)
    assert (p1.argmax(1) == p2.argmax(1)).all()
    assert p2.max(1).mean() < p1.max(1).mean()


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


def test_text_tweets_val_score_and_bias() -> None:
    torch.manual_seed(0)
    head = Head(4, 3, hidden=None, dropout=0.0).eval()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = np.eye(3, 4)[y].astype(np.float32) * 5 + rng.normal(0, 0.1, (60, 4)).astype(np.float32)
    feats = {"tweeteval_val": (x, y), "mvsa_val": (x, y)}
    s = val_score(head, feats)
    assert set(s) == {"tweeteval_macro_f1", "mvsa_text_accuracy", "score"}
    bias = tune_bias(head, feats)
    assert val_score(head, feats, bias)["score"] >= s["score"]
