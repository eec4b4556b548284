"""The hashed n-gram linear model: features, save/load, and its blend into a text head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.ngram import NgramConfig, NgramModel, hashed_counts, load_ngram, save_ngram, tfidf_rows

TEXTS = ["I love this #coffee :)", "this is awful, I hate it", "ok", "LOVE LOVE love"]


def _model(weight: float = 1.0, classes: int = 3) -> NgramModel:
    cfg = NgramConfig(bits=12)
    counts = hashed_counts(TEXTS, cfg)
    index = np.unique(counts.indices)
    rng = np.random.default_rng(0)
    return NgramModel(cfg, index, rng.uniform(1, 3, len(index)).astype(np.float32),
                      rng.normal(size=(len(index), classes)).astype(np.float32),
                      np.array([0.1, -0.2, 0.3][:classes], np.float32), weight, {"task": "test"})


def test_counts_are_deterministic_lowercased_and_decode_escapes() -> None:
    cfg = NgramConfig(bits=12)
    a, b = hashed_counts(["Love it"], cfg), hashed_counts(["love it"], cfg)
    assert a.shape == (1, 4096) and a.nnz > 5
    assert (a != b).nnz == 0  # lowercased
    assert (hashed_counts([r"I\u2019m ok"], cfg) != hashed_counts(["I’m ok"], cfg)).nnz == 0


def test_tfidf_rows_are_l2_normalised_and_drop_unkept_buckets() -> None:
    cfg = NgramConfig(bits=12)
    counts = hashed_counts(TEXTS, cfg)
    index = np.unique(hashed_counts(TEXTS[:2], cfg).indices)  # buckets of the first two texts only
    x = tfidf_rows(counts, index, np.ones(len(index), np.float32))
    assert x.shape == (4, len(index))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    np.testing.assert_allclose(norms[:2], 1.0, atol=1e-5)
    big = NgramConfig(bits=20)
    kept = np.unique(hashed_counts(TEXTS[:2], big).indices)
    unseen = tfidf_rows(hashed_counts(["zzqqxx"], big), kept, np.ones(len(kept), np.float32))
    assert unseen.shape == (1, len(kept)) and unseen.nnz == 0  # nothing kept: a zero row, no division by zero
    # sublinear tf: a word twice weighs 1 + ln 2, not 2
    one, two = (hashed_counts([t], NgramConfig(bits=20, char_ngrams=(9, 9))) for t in ("love", "love love"))
    word = one.indices[one.data == 1][0]
    idx = np.unique(np.concatenate([one.indices, two.indices]))
    raw = tfidf_rows(two, idx, np.ones(len(idx), np.float32)).toarray()[0]
    weights = dict(zip(idx, raw, strict=True))
    bigram = next(i for i in two.indices if i not in one.indices)  # "love love"
    assert weights[word] / weights[bigram] == pytest.approx(1 + np.log(2), rel=1e-5)


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = _model(weight=0.75)
    back = load_ngram(save_ngram(tmp_path / "ng.safetensors", m))
    assert back.weight == 0.75 and back.meta == {"task": "test"} and back.config == m.config
    np.testing.assert_allclose(back.logits(TEXTS), m.logits(TEXTS), atol=1e-2)  # coefficients stored as float16
    np.testing.assert_allclose(back.blend(TEXTS), 0.75 * back.logits(TEXTS), atol=1e-6)
    assert back.logits([]).shape == (0, 3)


def test_text_model_blends_the_ngram_logits_before_the_temperature() -> None:
    from serving.text_model import TextModel

    model = TextModel.load()
    texts = ["I love this, best day ever!", "This is awful, I hate it", "meh"]
    rep = model.represent(texts)
    saved = dict(model.ngrams)
    t = model.sentiment_head.temperature
    try:
        model.ngrams = {}
        alone_sent, alone_emo = model.heads(rep, texts)
        ng = _model(weight=0.5)
        model.ngrams = {"sentiment": ng}
        sent, emo = model.heads(rep, texts)
        np.testing.assert_allclose(emo, alone_emo, atol=1e-6)  # the other head is untouched
        z = np.log(alone_sent) * t + ng.blend(texts)  # head logits (up to a per-row constant) + blend
        want = np.exp(z / t - (z / t).max(1, keepdims=True))
        np.testing.assert_allclose(sent, want / want.sum(1, keepdims=True), atol=1e-4)
        assert np.abs(sent - alone_sent).max() > 1e-3
        with pytest.raises(ValueError, match="n-gram"):
            model.heads(rep)
    finally:
        model.ngrams = saved


def test_text_model_rejects_a_blend_of_the_wrong_width() -> None:
    from serving.text_model import TextModel

    m = TextModel.load()
    with pytest.raises(ValueError, match="n-gram model has 2 classes"):
        TextModel(m.encoder, m.sentiment_head, m.emotion_head, m.meta, features=m.features, pools=m.head_pools,
                  ngrams={"sentiment": _model(classes=2)})
