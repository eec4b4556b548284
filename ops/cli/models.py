"""`moodstream train|eval|classify`: train a model pack, evaluate it on a dataset split, classify one post."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail
from ops.progress import Stages

PARTS = ("text", "vision", "fusion")


def _data(given: Path | None) -> Path:
    """``--data`` when given, else the datasets folder from settings (a clear error when there is none)."""
    if given is not None:
        return given
    try:
        return get_settings().datasets
    except FileNotFoundError as e:
        fail(str(e))
        raise


def _threads() -> None:
    """Apply ``MOODSTREAM_TORCH_THREADS`` (1 is much faster than 2 on a shared, oversubscribed box)."""
    from moodstream.config import get_settings

    n = get_settings().torch_threads
    if n:
        import torch

        torch.set_num_threads(n)


def _start_pack(out: Path) -> None:
    """Make ``out`` a complete pack to train into: a copy of the packaged one when it is not a pack yet."""
    import shutil

    from serving.pack import DEFAULT_PACK_DIR, MANIFEST

    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).is_file() or not DEFAULT_PACK_DIR.is_dir():
        return
    for p in DEFAULT_PACK_DIR.iterdir():
        if p.is_file() and not (out / p.name).exists():
            shutil.copy2(p, out / p.name)


def train(what: str, data: Path, out: Path, seed: int, limit: int | None, mode: str, quiet: bool,
          structure: str = "plain", conflicts: str = "drop") -> None:
    """Train one part of the pack into ``out`` (text and vision through their own modules)."""
    from serving.pack import write_manifest

    _start_pack(out)
    command = "moodstream " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if what == "text":
        from modelling.training.text import train_text

        train_text(data, out, seed=seed, limit=limit, mode=mode, progress=not quiet, command=command)
        write_manifest(out)
    elif what == "vision":
        from modelling.training.vision import train_vision

        train_vision(data, out, seed=seed, limit=limit, progress=not quiet, command=command)
        write_manifest(out)
    else:
        from modelling.training.fusion import train_fusion

        config = train_fusion(data, out, seed=seed, limit=limit, progress=not quiet, structure=structure,
                              conflicts=conflicts)
        write_manifest(out, fusion={"command": command})
        for s in ("late", "stacked", "concat", "attention"):
            v = config[s]["val"]
            console.print(f"{s:9s} val accuracy {v['accuracy']:.4f}  macro-F1 {v['macro_f1']:.4f}  "
                          f"weighted-F1 {v['weighted_f1']:.4f}")
        console.print(f"default fusion: {config['default']}")
    console.print(f"pack written to {out}")


def _compare_runtimes(dataset: str, split: str, results: dict, report: Path | None) -> None:
    """Print every figure of both runtimes side by side; with ``--report``, write ``runtime-<dataset>.md``."""
    from modelling.evaluation.runtimes import compare, write_comparison

    rows = (write_comparison(dataset, split, results["torch"], results["onnx"], report) if report is not None
            else compare(results["torch"], results["onnx"]))
    typer.echo(f"{'figure':40s} {'torch':>8s} {'onnx':>8s} {'Δ points':>9s}")
    for r in rows:
        typer.echo(f"{r['name']:40s} {r['torch']:8.4f} {r['onnx']:8.4f} {r['delta_points']:+9.2f}"
                   + ("" if r["ok"] else "  (outside 0.5)"))


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        what: str = typer.Argument(..., help="text | vision | fusion"),
        data: Path | None = typer.Option(None, "--data", help="folder in the layout of ../shared/data "
                                         "(default: MOODSTREAM_DATA_DIR, else ../shared/data)"),
        out: Path = typer.Option(Path("runs/pack"), "--out", help="pack directory to write (created from the "
                                 "packaged pack when it is not one yet)"),
        seed: int = typer.Option(0, "--seed"),
        limit: int | None = typer.Option(None, "--limit", help="use only the first N rows of each split"),
        mode: str = typer.Option("frozen", "--mode", help="text only: frozen | lora"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
        structure: str = typer.Option("plain", "--structure", help="fusion only: plain | rule (MVSA's labelling "
                                      "rule as the nets' output structure, trained on label, text_label, image_label)"),
        conflicts: str = typer.Option("drop", "--conflicts", help="fusion only: a positive/negative mismatched "
                                      "augmentation pair is dropped (drop) or targets the caption's label (text)"),
    ) -> None:
        """Train the text heads, the vision heads or the fusion strategies into a pack directory (seeded)."""
        if what not in PARTS:
            fail(f"unknown part {what!r}; choose one of: {', '.join(PARTS)}")
        if structure not in ("plain", "rule") or conflicts not in ("drop", "text"):
            fail("--structure is plain or rule; --conflicts is drop or text")
        data = _data(data)
        if not data.is_dir():
            fail(f"data folder {data} does not exist")
        _threads()
        stages = Stages(console)
        with stages.step(f"train {what}", f"data {data} → pack {out}"):
            train(what, data, out, seed, limit, mode, quiet, structure, conflicts)

    @app.command("eval")
    def eval_cmd(
        dataset: str = typer.Argument(..., help="tweeteval-sentiment | tweeteval-emotion | goemotions | fer2013 "
                                      "| mvsa | demo (the demo feed's captions with their photos)"),
        data: Path | None = typer.Option(None, "--data", help="folder in the layout of ../shared/data "
                                         "(default: MOODSTREAM_DATA_DIR, else ../shared/data)"),
        split: str = typer.Option("test", "--split", help="train | val | test"),
        json_out: Path | None = typer.Option(None, "--json", help="write the metrics as JSON here"),
        report: Path | None = typer.Option(None, "--report", help="write Markdown + confusion PNGs into this folder"),
        model_dir: Path | None = typer.Option(None, "--model-dir", help="a pack directory (default: packaged)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
        runtime: str | None = typer.Option(None, "--runtime", help="torch | onnx | both (default: "
                                           "MOODSTREAM_RUNTIME); both: every figure on each, side by side"),
    ) -> None:
        """Evaluate the pack on a dataset split: accuracy, macro/weighted F1, per class (+ MVSA ablation)."""
        from modelling.evaluation.report import DATASETS, evaluate, write_json, write_report

        if dataset == "demo":
            _eval_demo(json_out, report, model_dir, runtime)
            return
        if dataset not in DATASETS:
            fail(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
        if split not in ("train", "val", "test"):
            fail(f"unknown split {split!r}; choose train, val or test")
        data = _data(data)
        if not data.is_dir():
            fail(f"data folder {data} does not exist")
        settings = get_settings()
        runtime = runtime or settings.runtime
        if runtime not in ("torch", "onnx", "both"):
            fail(f"unknown runtime {runtime!r}; choose torch, onnx or both")
        _threads()
        stages = Stages(console)
        results = {}
        for rt in ("torch", "onnx") if runtime == "both" else (runtime,):
            with stages.step(f"evaluate {dataset} {split} on {rt}", f"pack {model_dir or 'packaged'}, data {data}"):
                results[rt] = evaluate(dataset, data, split, pack_dir=model_dir, progress=not quiet, runtime=rt,
                                       onnx_cache=settings.onnx_cache_dir)
        result = results.get(settings.runtime, next(iter(results.values())))
        result["command"] = "moodstream " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if len(results) == 2:
            _compare_runtimes(dataset, split, results, report)
        if json_out is not None or report is not None:
            with stages.step("write results", ", ".join(str(p) for p in (json_out, report) if p is not None)):
                if json_out is not None:
                    write_json(result, json_out)
                if report is not None:
                    write_report(result, report)
        line = (f"{dataset} {split} n={result['n']}: accuracy {result['accuracy']:.4f}  "
                f"macro-F1 {result['macro_f1']:.4f}  weighted-F1 {result['weighted_f1']:.4f}")
        typer.echo(line)
        for name, m in {**result.get("ablation", {}), **result.get("baselines", {})}.items():
            typer.echo(f"  {name:15s} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
                       f"weighted-F1 {m['weighted_f1']:.4f}")
        cal = result.get("calibration", {})
        if cal:
            typer.echo(f"  ECE (15 bins) {cal.get('fused', cal)['ece']:.4f}")
        for name, r in result.get("robustness", {}).get("rows", {}).items():
            flip = f"  flip rate {r['flip_rate']:.3f}" if "flip_rate" in r else ""
            mix = "/".join(f"{v:.2f}" for v in r["label_mix"].values())
            typer.echo(f"  {name:24s} n={r['n']:3d} accuracy {r['accuracy']:.4f}  balanced {r['balanced_accuracy']:.4f}"
                       f"  neg/neu/pos {mix}{flip}")

    def _eval_demo(json_out: Path | None, report: Path | None, model_dir: Path | None, runtime: str | None) -> None:
        """``eval demo``: every demo caption with its photo through the in-process pipeline (``ops.demo_check``)."""
        from ops import demo_check
        from serving.pipeline import load_pipeline

        settings = get_settings()
        update: dict[str, object] = {"model_dir": model_dir} if model_dir is not None else {}
        if runtime is not None:
            if runtime not in ("torch", "onnx"):
                fail(f"eval demo runs on one runtime: torch or onnx, not {runtime!r}")
            update["runtime"] = runtime
        _threads()
        stages = Stages(console)
        with stages.step("load the pipeline", f"pack {model_dir or 'packaged'}"):
            pipeline = load_pipeline(settings.model_copy(update=update))
        with stages.step("classify the demo captions", "each with its photo"):
            result = demo_check.run(pipeline)
        result["command"] = "moodstream " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        for path in demo_check.write(result, json_out, report):
            typer.echo(f"wrote {path}")
        typer.echo(f"demo n={result['n']}: fused sentiment agrees {result['fused_sentiment_agrees']:.3f} "
                   f"(text {result['text_sentiment_agrees']:.3f}), fused emotion agrees "
                   f"{result['fused_emotion_agrees']:.3f} (text {result['text_emotion_agrees']:.3f}); "
                   f"fused against a clear caption: {result['against_caption']} "
                   f"({result['against_caption_flagged']} flagged uncertain or conflict)")

    @app.command("classify")
    def classify_cmd(
        text: str | None = typer.Option(None, "--text", help="the caption"),
        image: Path | None = typer.Option(None, "--image", help="an image file"),
        post_id: str = typer.Option("cli", "--id", help="post id to put in the prediction"),
    ) -> None:
        """Classify one post in-process and print its Prediction as JSON."""
        from moodstream.types import ClassifyItem, ItemError
        from serving.pipeline import load_pipeline

        if not (text and text.strip()) and image is None:
            fail("give --text, --image or both")
        if image is not None and not image.is_file():
            fail(f"image file {image} does not exist")
        item = ClassifyItem(post_id=post_id, created_at=datetime.now(UTC), text=text,
                            image=image.read_bytes() if image is not None else None)
        result = load_pipeline(get_settings()).classify([item])[0]
        if isinstance(result, ItemError):
            fail(f"{result.stage}: {result.reason}")
        typer.echo(json.dumps(json.loads(result.model_dump_json()), indent=2))
