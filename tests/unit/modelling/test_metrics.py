"""Metrics in the report format, checked against hand-computed values."""

from __future__ import annotations

import pytest

from modelling.metrics import classification_metrics, macro_f1


def test_known_values() -> None:
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y_true, y_pred, ("negative", "neutral", "positive"))
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class: neg P=1/2 R=1/2; neu P=2/3 R=1; pos P=1 R=1/2
    assert m["per_class"]["negative"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["neutral"]["f1"] == pytest.approx(0.8)
    assert m["per_class"]["positive"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx(m["macro_f1"])  # equal supports
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert macro_f1(y_true, y_pred) == pytest.approx(m["macro_f1"])


def test_restricted_classes_ignore_absent_ones() -> None:
    names = ("anger", "disgust", "fear", "joy")
    m = classification_metrics([0, 3, 3], [0, 3, 0], names, classes=[0, 3])
    assert set(m["per_class"]) == {"anger", "joy"}
    assert m["confusion"]["labels"] == ["anger", "joy"]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0], ("a", "b"))
    with pytest.raises(ValueError):
        classification_metrics([], [], ("a", "b"))
