"""Choosing the face-expression settings on val: offsets, view/member combination, expression.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelling.training import expression as ex
from serving.expression import CONFIG, load_expression
from serving.vision_model import DEFAULT_PACK_DIR, FER_WEIGHTS


def test_tune_offsets_fixes_a_biased_classifier() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    logits = np.eye(3)[y] * 2.0 + rng.normal(0, 1, (600, 3))
    logits[:, 2] += 1.5  # a bias towards class 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    off = ex.tune_offsets(p, y)
    assert off[0] == 0 and off[2] < 0 and ex.accuracy(p, y, off) > ex.accuracy(p, y) + 0.05


def test_combine_weights_members_and_averages_views() -> None:
    a = {"id": np.array([[1.0, 0.0]]), "flip": np.array([[0.0, 1.0]])}
    b = {"id": np.array([[0.0, 1.0]]), "flip": np.array([[0.0, 1.0]])}
    assert np.allclose(ex.combine([a, b], [3.0, 1.0], ("id", "flip")), [[0.375, 0.625]])


def test_choose_writes_loadable_settings(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "CACHE_DIR", tmp_path / "cache")
    shutil.copy(DEFAULT_PACK_DIR / FER_WEIGHTS, tmp_path / FER_WEIGHTS)
    config = ex.choose(data_dir, tmp_path, limit=40)
    assert set(config["settings"]) == {"mini_xception", "mini_xception_tta"}
    assert json.loads((tmp_path / CONFIG).read_text())["default"] == config["default"]
    assert config["settings"]["mini_xception"]["offsets"] == [0.0] * 7
    net, name, t = load_expression(tmp_path)
    assert len(net.members) == 1 and name == config["default"] and t == config["settings"][name]["temperature"]
    assert any((tmp_path / "cache").glob("*.npz"))
    forced = ex.choose(data_dir, tmp_path, limit=40, default="mini_xception")
    assert forced["default"] == "mini_xception" and forced["best_on_val"] == config["default"]
    with pytest.raises(ValueError, match="--default"):
        ex.choose(data_dir, tmp_path, limit=40, default="nope")
