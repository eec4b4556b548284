"""`moodstream export onnx`: export the pack's models to ONNX graphs in the cache (what first start does anyway)."""

from __future__ import annotations

from pathlib import Path

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail
from ops.progress import Stages


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        what: str = typer.Argument("onnx", help="onnx"),
        model_dir: Path | None = typer.Option(None, "--model-dir", help="a pack directory (default: "
                                              "MOODSTREAM_MODEL_DIR, else the packaged one)"),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="graph cache (default: "
                                              "MOODSTREAM_ONNX_CACHE_DIR, else .cache/onnx)"),
        prune: bool = typer.Option(False, "--prune", help="then remove the graphs of every other pack version "
                                   "(each new pack version exports into a folder of its own)"),
    ) -> None:
        """Export the loaded text and vision models to ONNX (int8 where it holds accuracy) into the graph cache,
        keyed by pack version and exporter version; graphs already there are reused. ``--prune`` then removes
        the folders of other pack versions, which are otherwise kept."""
        if what != "onnx":
            fail(f"unknown export {what!r}; choose: onnx")
        from serving.model_config import ModelConfig
        from serving.onnx_export import graph_dir, prune_graphs
        from serving.onnx_models import pack_version
        from serving.pipeline import Pipeline

        s = get_settings()
        config = ModelConfig.from_settings(s.model_copy(update={
            "runtime": "onnx", "model_dir": model_dir or s.model_dir,
            "onnx_cache_dir": cache_dir or s.onnx_cache_dir}))
        with Stages(console).step("export onnx", f"pack {config.pack_dir or 'packaged'}"):
            Pipeline.load(config)
        folder = graph_dir(pack_version(config.pack_dir), config.onnx_cache)
        for p in sorted(folder.glob("*.onnx")):
            typer.echo(f"{p}  {p.stat().st_size / 1e6:.1f} MB")
        if prune:
            removed = prune_graphs(folder, config.onnx_cache)
            for old, size in removed:
                typer.echo(f"removed {old}  {size / 1e6:.1f} MB")
            typer.echo(f"pruned {len(removed)} old graph folder(s), {sum(s for _, s in removed) / 1e6:.1f} MB freed")
