"""Training the face gate: the fused-emotion change it is judged by, the threshold rule, the logistic fit."""

from __future__ import annotations

import numpy as np

from modelling.training.face_gate import (
    SplitOutputs,
    choose_threshold,
    fit_gate,
    fused_emotion_changed,
    gate_figures,
)
from moodstream import labels

JOY, SAD = labels.EMOTION_INDEX["joy"], labels.EMOTION_INDEX["sadness"]
K = len(labels.EMOTIONS)


def onehot(i: int, weight: float = 0.9) -> np.ndarray:
    v = np.full(K, (1 - weight) / (K - 1), np.float32)
    v[i] = weight
    return v


def outputs(features: np.ndarray, faces: list[int]) -> SplitOutputs:
    """Every caption reads sad; an image's face (where it has one) is joyful, its no-face emotion sad."""
    n = len(faces)
    return SplitOutputs(features=features, faces=np.asarray(faces),
                        emotion_faces=np.stack([onehot(JOY) if f else onehot(SAD) for f in faces]),
                        emotion_no_face=np.stack([onehot(SAD)] * n),
                        text_emotion=np.stack([onehot(SAD, 0.6)] * n), detect_ms=10.0)


def test_skipping_a_face_image_changes_its_fused_emotion_and_a_faceless_one_does_not() -> None:
    out = outputs(np.zeros((3, 2)), [2, 0, 0])
    assert fused_emotion_changed(out, np.asarray([False, True, True])).tolist() == [False, False, False]
    assert fused_emotion_changed(out, np.asarray([True, True, True])).tolist() == [True, False, False]


def test_the_threshold_is_the_highest_that_keeps_changes_within_the_budget() -> None:
    rng = np.random.default_rng(0)
    faces = [1] * 20 + [0] * 80
    x = np.vstack([rng.normal(2.0, 1.0, (20, 4)), rng.normal(-2.0, 1.0, (80, 4))])
    out = outputs(x, faces)
    gate = fit_gate(x, (np.asarray(faces) > 0).astype(np.int64))
    t = choose_threshold(gate, out, max_changed=0.0)
    p = gate.probability(x)
    assert p[:20].min() >= t  # no face image skipped: no change allowed
    assert t == p[:20].min()  # and not one notch lower than it could be
    figures = gate_figures(gate, out, t)
    assert figures["face_image_recall"] == 1.0 and figures["fused_emotion_changed"] == 0.0
    assert figures["skipped"] >= 0.75  # separable classes: almost every faceless image skipped
    assert figures["detect_ms_saved_per_image"] == round(10.0 * figures["skipped"], 2)
