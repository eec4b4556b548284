"""The tweet-text head trainer: its validation score and per-class bias."""

from __future__ import annotations

import numpy as np
import torch

from modelling.training.text_tweets import tune_bias, val_score
from serving.heads import Head


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
