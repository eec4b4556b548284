"""`moodstream eval mvsa` on a tiny MVSA-layout folder built from a few real rows."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from modelling.evaluation.report import ABLATION, JSON_KEYS
from ops.cli import app


def tiny_mvsa(data_dir: Path, root: Path, n: int = 12) -> Path:
    src = data_dir / "mvsa_single"
    dst = root / "mvsa_single"
    dst.mkdir(parents=True)
    with zipfile.ZipFile(src / "images.zip") as zin, zipfile.ZipFile(dst / "images.zip", "w") as zout:
        for split in ("train", "val", "test"):
            lines = (src / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
            rows = lines[1 : n + 1]
            (dst / f"{split}.tsv").write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
            for row in rows:
                name = f"{row.split(chr(9))[0]}.jpg"
                zout.writestr(name, zin.read(name))
    return root


def test_eval_mvsa_writes_documented_json_and_report(data_dir: Path, tmp_path: Path) -> None:
    root = tiny_mvsa(data_dir, tmp_path / "data")
    out, report = tmp_path / "out.json", tmp_path / "report"
    res = CliRunner().invoke(app, ["eval", "mvsa", "--data", str(root), "--json", str(out), "--report", str(report),
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    got = json.loads(out.read_text())
    assert list(got)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert got["dataset"] == "mvsa" and got["split"] == "test" and got["n"] == 12
    assert set(got["per_class"]) == {"negative", "neutral", "positive"}
    for c in got["per_class"].values():
        assert set(c) == {"precision", "recall", "f1", "support"}
    assert sum(c["support"] for c in got["per_class"].values()) == 12
    assert set(got["ablation"]) == set(ABLATION)
    for m in got["ablation"].values():
        assert set(m) == {"accuracy", "macro_f1", "weighted_f1"} and 0 <= m["accuracy"] <= 1
    assert set(got["baselines"]) == {"vader", "e5-head", "late-fixed-0.5"}
    assert got["ablation"][got["strategy"]]["accuracy"] == round(got["accuracy"], 4)
    md = (report / "mvsa.md").read_text()
    assert "Ablation" in md and "VADER" in md
    pngs = list(report.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert (report / "EVAL.md").is_file()


def test_eval_rejects_unknown_dataset(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "nope", "--data", str(tmp_path)])
    assert res.exit_code != 0
