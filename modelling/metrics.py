"""Classification metrics in the project's report format (accuracy, macro/weighted F1, per-class P/R/F1, confusion)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    names: Sequence[str],
    classes: Sequence[int] | None = None,
) -> dict:
    """Metrics over the label indices ``classes`` (default: all of ``names``).

    Returns ``{"n", "accuracy", "macro_f1", "weighted_f1", "per_class": {name: {precision, recall, f1, support}},
    "confusion": {"labels": [...], "matrix": [[...]]}}``; matrix rows are true labels, columns predictions.
    Macro-F1 averages over ``classes`` only, so a class absent from a dataset does not count as a zero.
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ in shape")
    cls = list(range(len(names))) if classes is None else [int(c) for c in classes]
    if len(yt) == 0:
        raise ValueError("no items to evaluate")
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=cls, zero_division=0)
    per_class = {
        names[c]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, c in enumerate(cls)
    }
    cm = confusion_matrix(yt, yp, labels=cls)
    return {
        "n": len(yt),
        "accuracy": float(accuracy_score(yt, yp)),
        "macro_f1": float(f1_score(yt, yp, labels=cls, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(yt, yp, labels=cls, average="weighted", zero_division=0)),
        "per_class": per_class,
        "confusion": {"labels": [names[c] for c in cls], "matrix": cm.tolist()},
    }


def macro_f1(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Macro-F1 over the labels present in either array."""
    return float(f1_score(np.asarray(y_true), np.asarray(y_pred), average="macro", zero_division=0))
