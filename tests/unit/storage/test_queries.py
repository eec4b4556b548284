"""Pure pieces of the dashboard queries: percentiles, per-modality confidence."""

from __future__ import annotations

import random
import statistics

import pytest

from storage import queries


def test_percentile_matches_linear_interpolation() -> None:
    rng = random.Random(1)
    values = sorted(rng.uniform(1, 500) for _ in range(1001))
    cuts = statistics.quantiles(values, n=100, method="inclusive")  # linear, like percentile_cont
    for q in (0.5, 0.95, 0.99):
        assert queries._percentile(values, q) == pytest.approx(cuts[round(q * 100) - 1])
    assert queries._percentile([], 0.5) is None and queries._percentile([7.0], 0.99) == 7.0


def test_modality_confidence() -> None:
    mods = {"text": {"sentiment": {"negative": 0.1, "neutral": 0.2, "positive": 0.7}}, "image": None}
    out = queries.modality_confidence(mods, {"negative": 0.3, "neutral": 0.1, "positive": 0.6})
    assert out == {"text": 0.7, "image": None, "fused": 0.6}
