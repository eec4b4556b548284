"""What a person sees in ``make demo``, scored: every demo caption with its photo through the in-process pipeline.

Each caption of the demo feed (``ops.producers.demo.CAPTIONS``) was written to carry a sentiment and an emotion;
this classifies it once, with its photo, as the worker would, and counts how often the shown labels agree with
what was written. It is a check of the product, not a benchmark: some 40 captions of our own, never used to choose
or tune anything (the models are chosen on the datasets' val splits).

The figure that matters most for trust is ``against_caption``: posts whose caption was written polar and read
polar by the text model, yet whose fused label is the opposite polarity (an image overturning a clear caption),
listed one by one with their flags.

Run: ``moodstream eval demo [--json reports/demo.json] [--report reports]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moodstream.types import ClassifyItem
from ops.producers.demo import CAPTIONS, LAUNCH, LAUNCH_TAG, Caption, photo_jpeg

POLAR = ("negative", "positive")


def demo_captions() -> list[tuple[str, Caption]]:
    """(hashtag, caption) for every distinct demo caption, the scripted ``#launchday`` phases included, in a fixed
    order."""
    return ([(tag, c) for tag in sorted(CAPTIONS) for c in CAPTIONS[tag]]
            + [(LAUNCH_TAG, c) for phase in LAUNCH for c in LAUNCH[phase]])


def _label(probs: dict[str, float] | None) -> str | None:
    return max(probs, key=probs.__getitem__) if probs else None


def score(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Agreement figures over per-caption rows (``written_*``, ``fused_*``, ``text_sentiment``, flags)."""
    n = len(rows)

    def share(pred: str, gold: str) -> float:
        return round(sum(r[pred] == r[gold] for r in rows) / n, 4) if n else 0.0

    against = [r for r in rows if r["written_sentiment"] in POLAR and r["text_sentiment"] == r["written_sentiment"]
               and r["fused_sentiment"] in POLAR and r["fused_sentiment"] != r["written_sentiment"]]
    return {"n": n,
            "fused_sentiment_agrees": share("fused_sentiment", "written_sentiment"),
            "text_sentiment_agrees": share("text_sentiment", "written_sentiment"),
            "fused_emotion_agrees": share("fused_emotion", "written_emotion"),
            "text_emotion_agrees": share("text_emotion", "written_emotion"),
            "against_caption": len(against),
            "against_caption_flagged": sum(r["uncertain"] or r["conflict"] for r in against),
            "against_caption_posts": [{k: r[k] for k in ("text", "photo", "fused_sentiment", "confidence",
                                                         "uncertain", "conflict")} for r in against]}


def run(pipeline: Any) -> dict[str, Any]:
    """Classify every demo caption with its photo on ``pipeline`` (``serving.pipeline.Pipeline``); rows + figures."""
    caps = demo_captions()
    now = datetime.now(UTC)
    items = [ClassifyItem(post_id=f"demo-{k}", created_at=now, text=c.text, image=photo_jpeg(c.photo),
                          hashtags=[tag]) for k, (tag, c) in enumerate(caps)]
    rows = []
    for (tag, c), p in zip(caps, pipeline.classify(items), strict=True):
        if not hasattr(p, "sentiment"):
            raise RuntimeError(f"the demo caption {c.text!r} failed to classify: {p}")
        text = p.modalities.text
        rows.append({"hashtag": tag, "text": c.text, "photo": c.photo,
                     "written_sentiment": c.sentiment, "written_emotion": c.emotion,
                     "fused_sentiment": p.sentiment.label, "fused_emotion": p.emotion.label,
                     "confidence": round(p.sentiment.confidence, 4), "uncertain": p.uncertain, "conflict": p.conflict,
                     "text_sentiment": _label(text.sentiment if text else None),
                     "text_emotion": _label(text.emotion if text else None)})
    return {"model_version": pipeline.version, "fusion": pipeline.fusion.strategy, **score(rows), "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """The report page: figures, then every caption whose fused label opposes it, then every row."""
    lines = ["# The demo feed, scored", "",
             "Every caption of `make demo`'s feed with its photo, classified once in process (`moodstream eval demo`)",
             f"by pack `{result['model_version']}` (fusion `{result['fusion']}`). The captions were written to carry a",
             "sentiment and an emotion; nothing was chosen or tuned on them.", "",
             "| figure | value |", "|---|---|"]
    for k in ("n", "fused_sentiment_agrees", "text_sentiment_agrees", "fused_emotion_agrees", "text_emotion_agrees",
              "against_caption", "against_caption_flagged"):
        lines.append(f"| {k.replace('_', ' ')} | {result[k]} |")
    lines += ["", "`against caption`: written polar, read polar by the text model, fused to the opposite polarity.", ""]
    if result["against_caption_posts"]:
        lines += ["| caption | photo | fused | confidence | uncertain | conflict |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['text']} | {r['photo']} | {r['fused_sentiment']} | {r['confidence']:.2f} | {r['uncertain']} | "
                  f"{r['conflict']} |" for r in result["against_caption_posts"]]
    lines += ["", "## Every caption", "", "| caption | photo | written | text | fused | fused emotion (written) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['text']} | {r['photo']} | {r['written_sentiment']} | {r['text_sentiment']} | "
              f"{r['fused_sentiment']} ({r['confidence']:.2f}) | {r['fused_emotion']} ({r['written_emotion']}) |"
              for r in result["rows"]]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], json_path: Path | None, report_dir: Path | None) -> list[Path]:
    """Write the JSON and/or ``<report_dir>/demo.md``; the paths written."""
    out = []
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        out.append(json_path)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "demo.md").write_text(markdown(result), encoding="utf-8")
        out.append(report_dir / "demo.md")
        if json_path is not None and json_path.resolve() == (report_dir / "demo.json").resolve():
            from modelling.evaluation.report import write_summary

            out.append(write_summary(report_dir))  # EVAL.md gains the demo's row
    return out
