"""Training smoke tests: a few steps on a tiny slice of the real data write heads that load and predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelling.training.text import PACK_HEADS, PACK_POOLS, class_weights, train_text, tune_bias
from serving.heads import load_head
from serving.text_model import EMOTION_HEAD, LORA_WEIGHTS, META, SENTIMENT_HEAD, TextModel


def test_frozen_smoke(tmp_path: Path, data_dir: Path) -> None:
    meta = train_text(data_dir, tmp_path, seed=0, limit=64, max_steps=3, progress=False,
                      features={"sentiment": ["vader"]})
    assert meta["data"]["sizes"]["sentiment"] == 64 and meta["mode"] == "frozen"
    assert meta["pools"] == PACK_POOLS  # the committed pack's pooled views by default
    head, head_meta = load_head(tmp_path / SENTIMENT_HEAD)
    assert head.in_dim == 384 * len(PACK_POOLS) + 4 and head.out_dim == 3  # pooled views + VADER (4)
    assert head_meta["labels"] == ["negative", "neutral", "positive"] and head_meta["features"] == ["vader"]
    assert head_meta["pools"] == PACK_POOLS and head.hidden == PACK_HEADS["sentiment"]["hidden"]
    assert load_head(tmp_path / EMOTION_HEAD)[0].in_dim == 384 * len(PACK_POOLS)
    assert json.loads((tmp_path / META).read_text())["seed"] == 0
    model = TextModel.load(tmp_path)
    assert model.features == {"sentiment": ["vader"], "emotion": []} and model.pools == PACK_POOLS
    (r,) = model.predict(["hello"])
    assert r.sentiment.sum() == pytest.approx(1.0, abs=1e-5) and r.embedding.shape == (384,)
    with pytest.raises(ValueError, match="pass the texts"):
        model.heads(r.embedding[None])


def test_frozen_embedding_only_linear(tmp_path: Path, data_dir: Path) -> None:
    train_text(data_dir, tmp_path, seed=0, limit=32, max_steps=2, progress=False, features={}, pools=["mean"],
               head_config={t: {"hidden": None} for t in ("sentiment", "emotion")})
    head, head_meta = load_head(tmp_path / EMOTION_HEAD)
    assert head.in_dim == 384 and head.hidden is None and head_meta["pools"] == ["mean"]
    model = TextModel.load(tmp_path)
    assert model.pools == ["mean"]
    emb = model.embed(["hello there"])
    np.testing.assert_allclose(model.heads(emb)[0], model.predict(["hello there"])[0].sentiment[None], atol=1e-5)


def test_lora_smoke(tmp_path: Path, data_dir: Path) -> None:
    train_text(data_dir, tmp_path, seed=0, mode="lora", limit=16, max_steps=2, lora_batch=4, progress=False)
    assert (tmp_path / LORA_WEIGHTS).stat().st_size < 5_000_000
    m = TextModel.load(tmp_path)
    assert "+lora:" in m.encoder.name  # adapter applied and merged on load
    assert len(m.predict(["a", "b"])) == 2


def test_class_weights_and_bias_tuning() -> None:
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[2] == 0 and w[1] > w[0]
    probs = np.array([[0.6, 0.4], [0.55, 0.45], [0.9, 0.1]])
    y = np.array([0, 1, 0])
    bias = tune_bias(probs, y)
    assert ((np.log(probs) + bias).argmax(1) == y).all()
