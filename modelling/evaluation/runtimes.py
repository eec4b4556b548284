"""`moodstream eval DATASET --runtime both`: every figure of an evaluation on PyTorch and on ONNX Runtime, side by side.

A figure is any metric in 0..1 that the report shows (accuracy, F1s, ECE, ablation and baselines, robustness rows);
the runtimes agree when every figure differs by at most ``TOLERANCE_POINTS`` percentage points.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOLERANCE_POINTS = 0.5
_METRICS = ("accuracy", "macro_f1", "weighted_f1")


def figures(result: dict[str, Any]) -> dict[str, float]:
    """The headline figures of an ``evaluate`` result, flattened to ``name → value``."""
    out = {k: float(result[k]) for k in _METRICS if k in result}
    for group in ("ablation", "baselines"):
        for name, m in result.get(group, {}).items():
            out.update({f"{name} {k}": float(m[k]) for k in _METRICS if k in m})
    cal = result.get("calibration") or {}
    cal = cal.get("fused", cal)
    if "ece" in cal:
        out["ECE"] = float(cal["ece"])
    for name, r in result.get("robustness", {}).get("rows", {}).items():
        for k in ("accuracy", "flip_rate"):
            if k in r:
                out[f"{name} {k}"] = float(r[k])
    return out


def compare(torch_result: dict[str, Any], onnx_result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: ``name``, ``torch``, ``onnx``, ``delta_points`` (onnx − torch, × 100) and ``ok``."""
    a, b = figures(torch_result), figures(onnx_result)
    rows = []
    for name in a:
        if name in b:
            d = round(100 * (b[name] - a[name]), 3)
            rows.append({"name": name, "torch": round(a[name], 4), "onnx": round(b[name], 4), "delta_points": d,
                         "ok": abs(d) <= TOLERANCE_POINTS})
    return rows


def markdown(dataset: str, split: str, rows: list[dict[str, Any]], versions: dict[str, str]) -> str:
    """The comparison as a Markdown table."""
    ok = all(r["ok"] for r in rows)
    lines = [f"# {dataset} — {split} split: PyTorch vs ONNX Runtime", "",
             f"Model pack `{versions.get('model_version', '?')}`. Command: "
             f"`moodstream eval {dataset} --split {split} --runtime both --report reports`. "
             f"Tolerance: {TOLERANCE_POINTS} points; {'all figures within it' if ok else 'NOT all within it'}.", "",
             "| figure | torch | onnx | Δ points | within |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r['name']} | {r['torch']:.4f} | {r['onnx']:.4f} | {r['delta_points']:+.2f} | "
              f"{'yes' if r['ok'] else '**no**'} |" for r in rows]
    return "\n".join(lines) + "\n"


def write_comparison(dataset: str, split: str, torch_result: dict[str, Any], onnx_result: dict[str, Any],
                     report_dir: Path) -> list[dict[str, Any]]:
    """``runtime-<dataset>.md`` and ``.json`` into ``report_dir``, and the summary ``RUNTIMES.md`` refreshed."""
    rows = compare(torch_result, onnx_result)
    report_dir.mkdir(parents=True, exist_ok=True)
    versions = {"model_version": str(torch_result.get("model_version", ""))}
    (report_dir / f"runtime-{dataset}.md").write_text(markdown(dataset, split, rows, versions), encoding="utf-8")
    (report_dir / f"runtime-{dataset}.json").write_text(
        json.dumps({"dataset": dataset, "split": split, **versions, "tolerance_points": TOLERANCE_POINTS,
                    "rows": rows}, indent=2) + "\n", encoding="utf-8")
    write_summary(report_dir)
    return rows


def write_summary(report_dir: Path) -> Path:
    """``RUNTIMES.md``: each dataset's headline figures on both runtimes (from the ``runtime-*.json`` files)."""
    lines = ["# Every eval figure on PyTorch and on ONNX Runtime", "",
             "Written by `moodstream eval DATASET --runtime both --report reports`; per dataset, every figure is in "
             "`runtime-<dataset>.md`. Δ = onnx − torch in points; the largest |Δ| over all its figures is shown.", "",
             "| dataset | split | accuracy torch / onnx | macro-F1 torch / onnx | weighted-F1 torch / onnx | "
             "max abs Δ points (figure) | within 0.5 |", "|---|---|---|---|---|---|---|"]
    for path in sorted(report_dir.glob("runtime-*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        by = {r["name"]: r for r in d["rows"]}
        worst = max(d["rows"], key=lambda r: abs(r["delta_points"]))
        cells = [f"{by[m]['torch']:.4f} / {by[m]['onnx']:.4f}" if m in by else "-" for m in _METRICS]
        ok = all(r["ok"] for r in d["rows"])
        lines.append(f"| {d['dataset']} | {d['split']} | {' | '.join(cells)} | {abs(worst['delta_points']):.2f} "
                     f"({worst['name']}) | {'yes' if ok else '**no**'} |")
    out = report_dir / "RUNTIMES.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
