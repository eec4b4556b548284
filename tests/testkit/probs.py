"""Probability arrays for model tests: one confident label per row."""

from __future__ import annotations

import numpy as np

NEG, NEU, POS = 0, 1, 2


def onehot(labels: list[int], conf: float = 0.9) -> np.ndarray:
    """(n, 3) probabilities: ``conf`` on each row's label, the rest split evenly."""
    out = np.full((len(labels), 3), (1 - conf) / 2, np.float32)
    out[np.arange(len(labels)), labels] = conf
    return out
