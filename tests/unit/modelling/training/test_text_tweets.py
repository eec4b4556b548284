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


def test_views_cache_slices_the_requested_pools(tmp_path, monkeypatch) -> None:
    from types import SimpleNamespace

    from modelling.training import embed_cache

    monkeypatch.setattr(embed_cache, "CACHE_DIR", tmp_path)
    calls = []

    def encode(texts, pools, batch_size=64, progress=False):
        calls.append(tuple(pools))
        return np.hstack([np.full((len(texts), 2), i, np.float32) for i, _ in enumerate(pools)])

    enc = SimpleNamespace(name="e", max_tokens=8, dim=2, encode=encode, check_pools=list)
    embed_cache.encode_views(enc, ["a", "b"], ["mean", "max", "mean@2"], progress=False)
    got = embed_cache.cached_embed(enc, ["a", "b"], "t", progress=False, pools=["mean@2", "mean"])
    assert got.tolist() == [[2, 2, 0, 0], [2, 2, 0, 0]]
    assert calls == [("mean", "max", "mean@2")]  # sliced, not encoded again


def test_fit_top_keeps_the_hidden_layer() -> None:
    from modelling.training.text_tweets import fit_top

    torch.manual_seed(0)
    start = Head(4, 3, hidden=8, dropout=0.0).eval()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = np.eye(3, 4)[y].astype(np.float32) * 5 + rng.normal(0, 0.1, (90, 4)).astype(np.float32)
    feats = {"tweeteval_train": (x, y), "mvsa_train": (x[:30], y[:30]), "tweeteval_val": (x, y), "mvsa_val": (x, y)}
    head, meta = fit_top(feats, start, 2, seed=0, progress=False)
    assert torch.equal(head.net[0].weight, start.net[0].weight)
    assert meta["mvsa_repeat"] == 2 and meta["val_bias_tuned"]["score"] >= meta["val"]["score"] - 1e-9
