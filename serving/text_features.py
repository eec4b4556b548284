"""Cheap lexicon features a text head may take beside the encoder embedding (named in the head's meta)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from serving.encoders import normalize_text


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_features(texts: Sequence[str]) -> np.ndarray:
    """VADER (neg, neu, pos, compound) of each normalised text, (N, 4) float32."""
    sia = _vader()
    rows = [sia.polarity_scores(normalize_text(t)) for t in texts]
    return np.asarray([[r["neg"], r["neu"], r["pos"], r["compound"]] for r in rows], dtype=np.float32).reshape(-1, 4)


FEATURES: dict[str, tuple[int, Callable[[Sequence[str]], np.ndarray]]] = {"vader": (4, vader_features)}


def feature_dim(names: Sequence[str]) -> int:
    """Total width of the named features."""
    return sum(FEATURES[n][0] for n in names)


def extra_features(names: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """The named features of ``texts`` side by side, (N, feature_dim(names)); (N, 0) when none."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown text features {unknown}; known: {sorted(FEATURES)}")
    parts = [FEATURES[n][1](texts) for n in names]
    return np.hstack(parts) if parts else np.zeros((len(texts), 0), dtype=np.float32)
