"""The face gate: its file format, and the committed pack's gate inside VisionModel on real images."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from serving.face_gate import FACE_GATE, FaceGate, load_face_gate, save_face_gate
from serving.vision_model import DEFAULT_PACK_DIR, VisionModel


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def tiny_gate(threshold: float = 0.5) -> FaceGate:
    return FaceGate(np.zeros(3), np.ones(3), np.asarray([1.0, -1.0, 0.0]), 0.0, threshold, {"note": "test"})


def test_probability_is_a_logistic_of_standardised_features() -> None:
    g = FaceGate(np.asarray([1.0, 1.0]), np.asarray([2.0, 2.0]), np.asarray([1.0, 0.0]), -0.5, 0.5, {})
    p = g.probability(np.asarray([[1.0, 9.0], [5.0, 0.0]]))
    assert p == pytest.approx([1 / (1 + np.exp(0.5)), 1 / (1 + np.exp(-1.5))])
    assert g.keep(np.asarray([[1.0, 9.0], [5.0, 0.0]])).tolist() == [False, True]


def test_round_trip_through_the_pack_file(tmp_path: Path) -> None:
    save_face_gate(tiny_gate(0.3), tmp_path)
    back = load_face_gate(tmp_path, feature_dim=3)
    assert back is not None and back.threshold == 0.3 and back.meta == {"note": "test"}
    assert back.weights.tolist() == [1.0, -1.0, 0.0]


def test_a_pack_without_a_gate_has_none(tmp_path: Path) -> None:
    assert load_face_gate(tmp_path, feature_dim=1280) is None


def test_a_gate_for_other_features_is_refused(tmp_path: Path) -> None:
    save_face_gate(tiny_gate(), tmp_path)
    with pytest.raises(ValueError, match="3-d features"):
        load_face_gate(tmp_path, feature_dim=1280)


def test_mismatched_vectors_are_refused(tmp_path: Path) -> None:
    d = tiny_gate().to_json() | {"scale": [1.0, 1.0]}
    (tmp_path / FACE_GATE).write_text(json.dumps(d))
    with pytest.raises(ValueError, match="one length"):
        load_face_gate(tmp_path, feature_dim=3)


def test_the_committed_pack_ships_a_gate_with_its_provenance() -> None:
    gate = load_face_gate(DEFAULT_PACK_DIR, feature_dim=1280)
    assert gate is not None
    assert 0.0 < gate.threshold < 1.0
    assert "command" in gate.meta and "threshold_rule" in gate.meta


@pytest.fixture(scope="module")
def gated() -> VisionModel:
    return VisionModel.load()


def test_a_face_passes_the_gate_and_a_blank_image_does_not(gated: VisionModel) -> None:
    assert gated.face_gate is not None
    astronaut, grey = jpeg(data.astronaut()), jpeg(np.full((224, 224, 3), 128, np.uint8))
    ims = [gated.decode(b) for b in (astronaut, grey)]
    assert gated.face_gate.keep(gated.features(ims)).tolist() == [True, False]
    face, blank = gated.predict([astronaut, grey])
    assert face.faces == 1 and blank.faces == 0  # type: ignore[union-attr]


def test_the_gate_only_removes_detector_runs(gated: VisionModel) -> None:
    """Threshold 0 keeps every image: the same faces as no gate at all; threshold above 1 skips every image."""
    ims = [gated.decode(jpeg(a)) for a in (data.astronaut(), data.coffee(), data.chelsea())]
    feats = gated.features(ims)
    ungated = gated.detect_all(ims)
    keep_all = replace(gated, face_gate=replace(gated.face_gate, threshold=0.0))
    assert [len(f) for f in keep_all.detect_all(ims, feats)] == [len(f) for f in ungated]
    skip_all = replace(gated, face_gate=replace(gated.face_gate, threshold=1.01))
    assert skip_all.detect_all(ims, feats) == [[], [], []]
