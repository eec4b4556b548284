"""Fusion training smoke run: a few rows of MVSA-Single into a temporary pack that then loads."""

from __future__ import annotations

import json
from pathlib import Path

from modelling.training.fusion import train_fusion
from serving.fusion import STRATEGIES, FusionModel, weights_file
from serving.pack import load_pack


def test_train_fusion_on_a_slice_writes_a_loadable_pack(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pack"
    config = train_fusion(data_dir, out, seed=0, limit=32, progress=False)
    assert config["default"] in STRATEGIES
    assert config["trained_on"] == {"train": 32, "val": 32, "limit": 32}
    for s in ("stacked", "concat", "attention"):
        assert (out / weights_file(s)).is_file()
        assert set(config[s]["val"]) == {"accuracy", "macro_f1", "weighted_f1"}
    pack = load_pack(out)
    assert pack.default_fusion == config["default"]
    assert json.loads((out / "fusion.json").read_text())["late"]["w_text"] == config["late"]["w_text"]
    model = FusionModel.load(out)
    assert model.strategies == STRATEGIES


def test_train_fusion_with_the_rule_structure_and_caption_conflicts(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pack"
    config = train_fusion(data_dir, out, seed=0, limit=32, progress=False, structure="rule", conflicts="text")
    assert config["structure"] == "rule" and config["augmentation"]["conflicts"] == "text"
    assert config["concat"]["arch"]["factored"] and config["attention"]["arch"]["joint"]
    assert 0.4 <= config["flags"]["uncertain_below"] <= 0.95
    model = FusionModel.load(out)
    assert model.networks["concat"].members[0].factored and model.networks["attention"].members[0].joint


def test_cached_fusion_inputs_are_keyed_by_every_file_they_depend_on(tmp_path: Path) -> None:
    from modelling.training.fusion import _modality_hash

    for name in ("text_sentiment.safetensors", "text_emotion_ngram.safetensors", "expression.json",
                 "fusion.json", "MODEL_CARD.md"):
        (tmp_path / name).write_text("a", encoding="utf-8")
    before = _modality_hash(tmp_path)
    for name, changes in (("text_emotion_ngram.safetensors", True), ("expression.json", True),
                          ("fusion.json", False), ("MODEL_CARD.md", False)):
        (tmp_path / name).write_text("b", encoding="utf-8")
        assert (_modality_hash(tmp_path) != before) is changes, name
        (tmp_path / name).write_text("a", encoding="utf-8")
