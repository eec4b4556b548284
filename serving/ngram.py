"""A hashed word and character n-gram linear model: the second opinion a text head blends with (issue #17).

A caption's word 1–2-grams and character 2–5-grams (scikit-learn's ``HashingVectorizer``, stateless) are hashed into
one space of ``2**bits`` buckets; counts become ``1 + log(tf)``, are weighted by the idf fit on train and
L2-normalised, then a linear layer gives one logit per class. Only the buckets seen in at least ``min_df`` training
texts are stored (``index``, sorted), so a file holds a few hundred thousand rows, not a million.

``TextModel`` adds ``weight × logits`` to its head's logits before the temperature (``Head.predict_proba``); the
weight, like the head's per-class offsets, is chosen on val by ``modelling.training.text_ngram``. It costs about
0.1 ms of CPU per caption and runs the same on either runtime.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from serving.encoders import normalize_text

WORD_PATTERN = r"(?u)[#@]?\w+|[^\w\s]"  # words, #hashtags and @mentions kept whole, and each punctuation mark/emoji


@dataclass(frozen=True)
class NgramConfig:
    """How texts become hashed n-gram counts (saved with the model; training and serving must agree)."""

    bits: int = 20
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)

    @functools.cache  # noqa: B019 - a frozen config: a handful of entries, built once per process
    def vectorizers(self) -> tuple[Any, Any]:
        """(word, char) ``HashingVectorizer``s producing raw counts (stateless, so built once and shared)."""
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"lowercase": True, "n_features": 2 ** self.bits, "alternate_sign": False, "norm": None}
        word = HashingVectorizer(ngram_range=tuple(self.word_ngrams), token_pattern=WORD_PATTERN, **common)
        char = HashingVectorizer(analyzer="char_wb", ngram_range=tuple(self.char_ngrams), **common)
        return word, char


def hashed_counts(texts: Sequence[str], config: NgramConfig) -> sp.csr_matrix:
    """Raw n-gram counts of the normalised ``texts``, (N, 2**bits) sparse."""
    word, char = config.vectorizers()
    norm = [normalize_text(t) for t in texts]
    x = (word.transform(norm) + char.transform(norm)).tocsr()
    x.sort_indices()
    return x


def tfidf_rows(counts: sp.csr_matrix, index: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    """``counts`` restricted to the kept buckets ``index`` (sorted), as L2-normalised ``(1 + log tf) · idf``,
    (N, len(index)); columns are positions in ``index``."""
    pos = np.searchsorted(index, counts.indices)
    pos = np.minimum(pos, len(index) - 1)
    kept = index[pos] == counts.indices
    row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    data = (1.0 + np.log(counts.data[kept])) * idf[pos[kept]]
    x = sp.csr_matrix((data.astype(np.float32), (row_of[kept], pos[kept])), shape=(counts.shape[0], len(index)))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32) @ x


@dataclass
class NgramModel:
    """Kept buckets, their idf, and a linear layer (``coef`` (K, C), ``intercept`` (C,)) over them."""

    config: NgramConfig
    index: np.ndarray
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    weight: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # float32 once here, not on every call (the weights are stored as float16)
        self.coef = np.ascontiguousarray(self.coef, dtype=np.float32)
        self.intercept = np.ascontiguousarray(self.intercept, dtype=np.float32)

    @property
    def n_classes(self) -> int:
        """Number of classes (logit columns)."""
        return int(self.coef.shape[1])

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (N, C) float32; (0, C) for no texts."""
        if not texts:
            return np.zeros((0, self.n_classes), dtype=np.float32)
        x = tfidf_rows(hashed_counts(texts, self.config), self.index, self.idf)
        return np.asarray(x @ self.coef, dtype=np.float32) + self.intercept

    def blend(self, texts: Sequence[str]) -> np.ndarray:
        """``weight × logits``: what ``TextModel`` adds to its head's logits."""
        return self.weight * self.logits(texts)


def save_ngram(path: str | Path, model: NgramModel) -> Path:
    """Write ``model`` as safetensors (coefficients in float16); config, weight and meta in its JSON metadata."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"index": np.ascontiguousarray(model.index, dtype=np.int32),
               "idf": np.ascontiguousarray(model.idf, dtype=np.float32),
               "coef": np.ascontiguousarray(model.coef, dtype=np.float16),
               "intercept": np.ascontiguousarray(model.intercept, dtype=np.float32)}
    cfg = {"bits": model.config.bits, "word_ngrams": list(model.config.word_ngrams),
           "char_ngrams": list(model.config.char_ngrams)}
    header = {"ngram": json.dumps({"config": cfg, "weight": model.weight, "meta": model.meta}, sort_keys=True)}
    save_file(tensors, str(path), metadata=header)
    return path


def load_ngram(path: str | Path) -> NgramModel:
    """An ``NgramModel`` from a file written by ``save_ngram``."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="numpy") as f:
        header = json.loads((f.metadata() or {})["ngram"])
    t = load_file(str(path))
    cfg = header["config"]
    config = NgramConfig(bits=int(cfg["bits"]), word_ngrams=tuple(cfg["word_ngrams"]),
                         char_ngrams=tuple(cfg["char_ngrams"]))
    return NgramModel(config, t["index"].astype(np.int64), t["idf"], t["coef"], t["intercept"],
                      float(header.get("weight", 1.0)), dict(header.get("meta", {})))
