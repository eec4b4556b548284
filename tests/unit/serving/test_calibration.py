"""Temperature scaling and calibration error on arrays whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from serving.calibration import (
    apply_temperature,
    calibration_summary,
    ece,
    fit_temperature,
    nll,
    plot_reliability,
    reliability,
)


def test_ece_of_a_perfectly_calibrated_set_is_zero() -> None:
    # 10 items at confidence 0.8, 8 of them right: accuracy equals confidence in the only bin used.
    probs = np.tile([0.8, 0.1, 0.1], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert ece(probs, y) == pytest.approx(0.0, abs=1e-9)


def test_ece_of_an_overconfident_set() -> None:
    # confidence 0.9 but only half right: ECE = |0.5 - 0.9| = 0.4
    probs = np.tile([0.9, 0.05, 0.05], (4, 1))
    y = np.array([0, 0, 1, 2])
    assert ece(probs, y) == pytest.approx(0.4)


def test_ece_weights_bins_by_count() -> None:
    # bin of 0.95 (3 items, all right: gap 0.05) and bin of 0.55 (1 item, wrong: gap 0.55) -> (3*0.05 + 0.55)/4
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.95, 0.05], [0.55, 0.45]])
    y = np.array([0, 0, 0, 1])
    assert ece(probs, y) == pytest.approx((3 * 0.05 + 0.55) / 4)
    r = reliability(probs, y)
    assert sum(r["count"]) == 4 and len(r["count"]) == 15


def test_temperature_keeps_the_argmax_and_one_is_identity() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1, 1], size=50).astype(np.float32)
    assert np.allclose(apply_temperature(p, 1.0), p)
    for t in (0.3, 2.5):
        q = apply_temperature(p, t)
        assert np.allclose(q.sum(1), 1, atol=1e-6)
        assert (q.argmax(1) == p.argmax(1)).all()
    assert apply_temperature(p, 2.5).max(1).mean() < p.max(1).mean() < apply_temperature(p, 0.3).max(1).mean()


def test_fit_temperature_softens_overconfident_logits_and_lowers_nll() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.0          # informative, true temperature 1
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    over = apply_temperature(true, 1 / 3)   # the same model, three times too sharp
    t = fit_temperature(over, y)
    assert t == pytest.approx(3.0, rel=0.15)
    assert nll(apply_temperature(over, t), y) < nll(over, y)
    assert ece(apply_temperature(over, t), y) < ece(over, y)
    s = calibration_summary(apply_temperature(over, t), y, t)
    assert s["temperature"] == t and s["bins"] == 15


def test_reliability_png(tmp_path) -> None:
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    out = plot_reliability({"model": (p, np.array([0, 1, 1]))}, "t", tmp_path / "r.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
