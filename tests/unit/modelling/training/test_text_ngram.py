"""The n-gram blend trainer: idf, the linear fit, and the val choice between the head alone and a blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from modelling.training.data import read_text_dataset
from modelling.training.text_ngram import fit_idf, fit_linear, search
from serving.ngram import NgramConfig


def test_fit_idf_keeps_buckets_seen_in_enough_texts() -> None:
    counts = sp.csr_matrix(np.array([[1, 0, 2, 0], [1, 0, 0, 0], [3, 1, 1, 0]]))
    index, idf = fit_idf(counts, min_df=2)
    assert index.tolist() == [0, 2]
    np.testing.assert_allclose(idf, [np.log(4 / 4) + 1, np.log(4 / 3) + 1], rtol=1e-6)


def test_fit_linear_never_predicts_a_class_without_rows() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200) * 2  # classes 0 and 2 only
    x = sp.csr_matrix(np.eye(3)[y] + rng.normal(0, 0.05, (200, 3)))
    coef, intercept = fit_linear(x, y, 3, c=1.0)
    pred = (x @ coef + intercept).argmax(1)
    assert coef.shape == (3, 3) and set(pred.tolist()) <= {0, 2} and (pred == y).mean() > 0.95


def _tweets(data_dir: Path, split: str, n: int) -> tuple[list[str], np.ndarray]:
    d = read_text_dataset("tweeteval-sentiment", split, data_dir)
    return list(d.texts[:n]), np.asarray(d.labels[:n])


def test_search_blends_when_the_ngrams_add_evidence_and_keeps_the_head_when_they_do_not(data_dir: Path) -> None:
    train = _tweets(data_dir, "train", 4000)
    val_t, val_y = _tweets(data_dir, "val", 600)
    flat = np.zeros((len(val_y), 3), np.float32)  # a head that knows nothing: the blend must win
    data = {"train": train, "val": {"tweeteval-sentiment": (val_t, val_y, flat),
                                    "mvsa-text": (val_t[:100], val_y[:100], flat[:100])}}
    cfg = NgramConfig(bits=18)
    model, offsets, record = search("sentiment", data, 3, (1.0,), (0.0, 1.0), cfg, 2, progress=False)
    assert model is not None and model.weight == 1.0 and record["chosen"]["C"] == 1.0
    assert record["chosen"]["val"]["score"] > record["head_alone_val"]["score"] + 0.1
    assert offsets.shape == (3,) and record["kept_buckets"] == len(model.index)
    # an oracle head (the gold label, confidently): no blend can beat it, the head stays alone
    oracle = np.log(np.full((len(val_y), 3), 1e-3) + np.eye(3)[val_y])
    data["val"] = {"tweeteval-sentiment": (val_t, val_y, oracle), "mvsa-text": (val_t[:100], val_y[:100], oracle[:100])}
    model, _, record = search("sentiment", data, 3, (1.0,), (0.25,), cfg, 2, progress=False)
    assert model is None and record["chosen"]["weight"] == 0.0 and record["head_alone_val"]["score"] == 1.0
