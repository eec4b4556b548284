"""`moodstream export onnx` writes the pack's graphs into the cache; `--prune` removes other pack versions' graphs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ops.cli import app
from serving.onnx_export import graph_dir
from serving.onnx_models import pack_version


def test_export_then_prune_keeps_only_this_pack_version(tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    stale = cache / "moodstream-pack-000000000000-x1"
    stale.mkdir(parents=True)
    (stale / "text-0123.onnx").write_bytes(b"\0" * 2_000_000)
    runner = CliRunner()
    res = runner.invoke(app, ["export", "onnx", "--cache-dir", str(cache)])
    assert res.exit_code == 0, res.output
    current = graph_dir(pack_version(None), cache)
    assert {p.name.split("-")[0] for p in current.glob("*.onnx")} >= {"text", "backbone", "pnet", "fer"}
    assert stale.is_dir()  # kept without --prune
    res = runner.invoke(app, ["export", "onnx", "--cache-dir", str(cache), "--prune"])
    assert res.exit_code == 0, res.output
    assert not stale.exists() and current.is_dir()
    assert f"removed {stale}  2.0 MB" in res.output and "pruned 1 old graph folder(s), 2.0 MB freed" in res.output
