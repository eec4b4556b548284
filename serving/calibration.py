"""Confidence calibration: temperature scaling fit on a validation split, expected calibration error, reliability.

Every classifier of the pack (text sentiment, text emotion, image sentiment, FER, each fusion strategy) carries one
temperature ``T`` (stored in the pack's meta JSONs / ``fusion.json``, 1.0 when absent). At inference the
probabilities become ``softmax(log p / T)``: the argmax is unchanged, only the confidence moves. ``T`` is fit on
val by minimising the negative log-likelihood (``fit_temperature``); reports give the expected calibration error
over 15 equal-width confidence bins (``ece``) and a reliability diagram (``plot_reliability``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ECE_BINS = 15
T_MIN, T_MAX = 0.05, 20.0


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / T)`` row-wise (``T == 1`` returns the input unchanged, as float32)."""
    p = np.asarray(probs, dtype=np.float64)
    if temperature == 1.0:
        return p.astype(np.float32)
    z = np.log(np.clip(p, 1e-12, 1.0)) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=np.int64)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the NLL of ``apply_temperature(probs, T)`` on (probs, y).

    A log-spaced grid, then a golden-section refinement around the best grid point (deterministic; the NLL is
    convex in 1/T). Returns 1.0 for an empty set.
    """
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        return 1.0
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1))
        return float((lse - z[np.arange(len(y)), y]).mean())

    grid = np.linspace(np.log(T_MIN), np.log(T_MAX), 121)
    k = int(np.argmin([loss(g) for g in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return round(float(np.exp((lo + hi) / 2)), 4)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Per equal-width confidence bin of the top label: ``count``, mean ``confidence``, ``accuracy`` (0 if empty)."""
    p = np.asarray(probs, dtype=np.float64)
    conf, pred = p.max(1), p.argmax(1)
    correct = (pred == np.asarray(y)).astype(np.float64)
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)  # bin k holds (k/bins, (k+1)/bins]
    out: dict[str, list[float]] = {"edges": [k / bins for k in range(bins + 1)], "count": [], "confidence": [],
                                   "accuracy": []}
    for k in range(bins):
        m = idx == k
        n = int(m.sum())
        out["count"].append(n)
        out["confidence"].append(float(conf[m].mean()) if n else 0.0)
        out["accuracy"].append(float(correct[m].mean()) if n else 0.0)
    return out


def ece(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top label over ``bins`` equal-width confidence bins."""
    r = reliability(probs, y, bins)
    n = max(sum(r["count"]), 1)
    return float(sum(c * abs(a - f) for c, a, f in zip(r["count"], r["accuracy"], r["confidence"], strict=True)) / n)


def calibration_summary(probs: np.ndarray, y: np.ndarray, temperature: float | None = None) -> dict[str, Any]:
    """``ece``, ``nll``, mean confidence and accuracy of (already calibrated) ``probs`` (+ the temperature used)."""
    p = np.asarray(probs, dtype=np.float64)
    out: dict[str, Any] = {"ece": round(ece(p, y), 4), "nll": round(nll(p, y), 4),
                           "mean_confidence": round(float(p.max(1).mean()), 4),
                           "accuracy": round(float((p.argmax(1) == np.asarray(y)).mean()), 4),
                           "bins": ECE_BINS}
    if temperature is not None:
        out["temperature"] = float(temperature)
    return out


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    """A reliability diagram PNG: per curve (name → (probs, y)), accuracy against confidence per bin, with ECE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    for name, (p, y) in curves.items():
        r = reliability(p, y)
        xs = [c for c, n in zip(r["confidence"], r["count"], strict=True) if n]
        ys = [a for a, n in zip(r["accuracy"], r["count"], strict=True) if n]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{name} (ECE {ece(p, y):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
