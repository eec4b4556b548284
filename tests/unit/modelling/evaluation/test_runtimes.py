"""modelling.evaluation.runtimes: every figure of two evaluations side by side, with the 0.5-point check."""

from __future__ import annotations

from pathlib import Path

from modelling.evaluation.runtimes import compare, figures, write_comparison


def _result(acc: float, ece: float) -> dict:
    return {"dataset": "mvsa", "split": "test", "model_version": "pack-1", "n": 10, "accuracy": acc,
            "macro_f1": 0.6, "weighted_f1": 0.65, "ablation": {"text": {"accuracy": 0.4, "macro_f1": 0.3,
                                                                         "weighted_f1": 0.35}},
            "calibration": {"fused": {"ece": ece}},
            "robustness": {"rows": {"grey image": {"accuracy": 0.5, "flip_rate": 0.0}}}}


def test_figures_flatten_every_metric() -> None:
    f = figures(_result(0.7, 0.05))
    assert f["accuracy"] == 0.7 and f["ECE"] == 0.05 and f["text macro_f1"] == 0.3
    assert f["grey image flip_rate"] == 0.0


def test_compare_flags_figures_outside_half_a_point(tmp_path: Path) -> None:
    rows = {r["name"]: r for r in compare(_result(0.700, 0.050), _result(0.704, 0.060))}
    assert rows["accuracy"]["ok"] and abs(rows["accuracy"]["delta_points"] - 0.4) < 1e-9
    assert not rows["ECE"]["ok"]
    write_comparison("mvsa", "test", _result(0.7, 0.05), _result(0.7, 0.05), tmp_path)
    assert "| accuracy | 0.7000 | 0.7000 | +0.00 | yes |" in (tmp_path / "runtime-mvsa.md").read_text()
    assert "| mvsa | test |" in (tmp_path / "RUNTIMES.md").read_text()
