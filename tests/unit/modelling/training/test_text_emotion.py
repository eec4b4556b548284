"""The multi-label emotion head trainer: its targets and one small fit."""

from __future__ import annotations

import numpy as np

from modelling.training.text_emotion import K, fit, targets


def test_targets_single_soft_bce() -> None:
    y = np.array([3, 6])
    multi = [(3, 6), (6,)]
    assert targets(y, multi, "single").tolist()[0] == [0, 0, 0, 1, 0, 0, 0]
    assert np.allclose(targets(y, multi, "soft")[0], [0, 0, 0, 0.5, 0, 0, 0.5])
    assert targets(y, multi, "bce")[0].tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert targets(y, None, "bce")[1].tolist() == [0, 0, 0, 0, 0, 0, 1]


def test_fit_learns_separable_classes() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, K, 280)
    x = (np.eye(K, 10)[y] * 4 + rng.normal(0, 0.1, (280, 10))).astype(np.float32)
    multi = [(int(v),) for v in y]
    sets = {"goemotions_train": (x, y, multi), "goemotions_val": (x, y, multi),
            "tweeteval_emotion_train": (x[:20], y[:20], None), "tweeteval_emotion_val": (x, y, None)}
    for variant in ("soft", "bce"):
        head, meta = fit(sets, variant, None, seed=0, progress=False)
        assert meta["val_bias_tuned"]["goemotions_macro_f1"] > 0.9
        assert head.in_dim == 10


def test_merged_heads_average_the_logits() -> None:
    import torch

    from modelling.training.head_ensemble import merge_heads
    from serving.heads import Head

    x = torch.randn(5, 6)
    for hidden in (4, None):
        heads = []
        for s in range(3):
            torch.manual_seed(s)
            heads.append(Head(6, 3, hidden=hidden).eval())
        merged = merge_heads(heads)
        want = torch.stack([h(x) for h in heads]).mean(0)
        assert torch.allclose(merged(x), want, atol=1e-5)
