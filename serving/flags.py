"""Flags on each prediction (issue #14): ``uncertain`` and ``conflict``, from calibrated probabilities.

* ``uncertain``: the calibrated probability of the chosen fused label is below ``uncertain_below``
  (setting ``MOODSTREAM_UNCERTAIN_BELOW``; its default was chosen on MVSA val with ``choose_uncertain_threshold`` so
  that flagged posts are wrong at least twice as often as the rest).
* ``conflict``: the post has both a text and an image, and each is polar (negative or positive) with calibrated
  confidence ≥ ``conflict_min_confidence`` (``MOODSTREAM_CONFLICT_MIN_CONFIDENCE``), in opposite directions.

The thresholds are passed in by the caller (the pipeline / the Serve classifier take them from their settings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moodstream.labels import SENTIMENT_INDEX

NEG, NEU, POS = SENTIMENT_INDEX["negative"], SENTIMENT_INDEX["neutral"], SENTIMENT_INDEX["positive"]
UNCERTAIN_GRID = np.round(np.arange(0.40, 0.951, 0.01), 2)
MIN_ERROR_RATIO = 2.0
MAX_FLAGGED_SHARE = 0.5  # a flag on most posts tells nothing


def uncertain_mask(probs: np.ndarray, below: float) -> np.ndarray:
    """(N,) bool: the top probability is below ``below``."""
    return np.asarray(probs).max(-1) < below


def conflict_mask(text_probs: np.ndarray, image_probs: np.ndarray, present: np.ndarray,
                  min_confidence: float) -> np.ndarray:
    """(N,) bool: both modalities present (``present`` (N,2)), each polar with confidence ≥ ``min_confidence``, and
    of opposite polarity."""
    tp, ip = np.asarray(text_probs), np.asarray(image_probs)
    both = np.asarray(present).sum(-1) == 2
    t_lab, i_lab = tp.argmax(-1), ip.argmax(-1)
    sure = (tp.max(-1) >= min_confidence) & (ip.max(-1) >= min_confidence)
    opposite = ((t_lab == NEG) & (i_lab == POS)) | ((t_lab == POS) & (i_lab == NEG))
    return both & sure & opposite


def is_uncertain(probs: Any, below: float) -> bool:
    """``uncertain`` of one prediction's fused sentiment probabilities."""
    return bool(uncertain_mask(np.asarray(probs, dtype=np.float64)[None], below)[0])


def is_conflict(text_probs: Any | None, image_probs: Any | None, min_confidence: float) -> bool:
    """``conflict`` of one post (``None``: that modality is absent, so no conflict)."""
    if text_probs is None or image_probs is None:
        return False
    t = np.asarray(text_probs, dtype=np.float64)[None]
    i = np.asarray(image_probs, dtype=np.float64)[None]
    return bool(conflict_mask(t, i, np.ones((1, 2)), min_confidence)[0])


def error_rates(probs: np.ndarray, y: np.ndarray, below: float) -> dict[str, Any]:
    """How often ``uncertain`` fires and the error rates of the flagged posts and of the rest."""
    wrong = np.asarray(probs).argmax(1) != np.asarray(y)
    flag = uncertain_mask(probs, below)
    ef = float(wrong[flag].mean()) if flag.any() else 0.0
    er = float(wrong[~flag].mean()) if (~flag).any() else 0.0
    return {"threshold": float(below), "n": len(y), "n_flagged": int(flag.sum()),
            "rate": round(float(flag.mean()), 4) if len(y) else 0.0, "error_rate_flagged": round(ef, 4),
            "error_rate_rest": round(er, 4), "ratio": round(ef / er, 3) if er > 0 else float("inf")}


def choose_uncertain_threshold(probs: np.ndarray, y: np.ndarray, min_ratio: float = MIN_ERROR_RATIO,
                               min_flagged: int = 10, max_share: float = MAX_FLAGGED_SHARE) -> float:
    """The largest threshold of ``UNCERTAIN_GRID`` that flags at most ``max_share`` of the posts (and at least
    ``min_flagged``) and whose flagged posts are wrong at least ``min_ratio`` times as often as the rest, on
    (probs, y) — a validation split. Falls back to the grid's lowest."""
    best = float(UNCERTAIN_GRID[0])
    for t in UNCERTAIN_GRID:
        r = error_rates(probs, y, float(t))
        if (min_flagged <= r["n_flagged"] <= max_share * len(y) and r["error_rate_rest"] > 0
                and r["ratio"] >= min_ratio):
            best = float(t)
    return best


def flag_stats(fused: np.ndarray, y: np.ndarray, text_probs: np.ndarray, image_probs: np.ndarray, present: np.ndarray,
               uncertain_below: float, conflict_min_confidence: float) -> dict[str, Any]:
    """The report's figures for both flags on one split."""
    c = conflict_mask(text_probs, image_probs, present, conflict_min_confidence)
    right = np.asarray(fused).argmax(1) == np.asarray(y)
    return {"uncertain": error_rates(fused, y, uncertain_below),
            "conflict": {"min_confidence": float(conflict_min_confidence), "n": len(y), "n_flagged": int(c.sum()),
                         "rate": round(float(c.mean()), 4) if len(y) else 0.0,
                         "accuracy_flagged": round(float(right[c].mean()), 4) if c.any() else None,
                         "accuracy_rest": round(float(right[~c].mean()), 4) if (~c).any() else 0.0}}
