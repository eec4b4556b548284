"""Evaluation of the text model on TweetEval sentiment, TweetEval emotion and GoEmotions (Ekman 6 + neutral).

Label handling:
- ``tweeteval-sentiment``: argmax of the 3 sentiment probabilities.
- ``goemotions``: argmax of the 7 emotion probabilities against the single-label target of
  ``read_goemotions`` (first non-neutral Ekman label of a multi-label row, else neutral).
- ``tweeteval-emotion``: the dataset has anger, joy, optimism, sadness. Gold optimism counts as joy
  (``labels.TWEETEVAL_EMOTION``); the prediction is the argmax of the model's emotion probabilities restricted to
  anger / joy / sadness, and macro-F1 averages over those three classes.

Run: ``python -m modelling.evaluation.text_eval --data ../shared/data --json reports/text_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from modelling.metrics import classification_metrics
from modelling.training.data import read_text_dataset
from modelling.training.embed_cache import cached_embed
from moodstream import labels
from serving.calibration import calibration_summary
from serving.text_model import META, TextModel

TEXT_DATASETS = ("tweeteval-sentiment", "tweeteval-emotion", "goemotions")
TWEETEVAL_EMOTION_CLASSES = [labels.EMOTION_INDEX[c] for c in ("anger", "joy", "sadness")]


def predict_labels(dataset: str, sentiment: np.ndarray, emotion: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(predicted label indices, the classes scored) for one dataset, from the model's probabilities."""
    if dataset == "tweeteval-sentiment":
        return sentiment.argmax(1), list(range(len(labels.SENTIMENTS)))
    if dataset == "goemotions":
        return emotion.argmax(1), list(range(len(labels.EMOTIONS)))
    if dataset == "tweeteval-emotion":
        cls = TWEETEVAL_EMOTION_CLASSES
        return np.asarray(cls)[emotion[:, cls].argmax(1)], cls
    raise ValueError(f"unknown text dataset {dataset!r}; one of {TEXT_DATASETS}")


def evaluate_text(dataset: str, data_dir: str | Path, split: str = "test", model: TextModel | None = None,
                  use_cache: bool = True, progress: bool = False) -> dict[str, Any]:
    """Metrics of the text model on one dataset split, in the report JSON format
    (``dataset, split, n, accuracy, macro_f1, weighted_f1, per_class``, plus ``confusion``)."""
    model = model or TextModel.load()
    ds = read_text_dataset(dataset, split, data_dir)
    if use_cache:
        emb = cached_embed(model.encoder, ds.texts, f"{dataset}-{split}", progress=progress, pools=model.pools)
    else:
        emb = model.encoder.encode(ds.texts, model.pools, batch_size=model.batch_size, progress=progress)
    sent, emo = model.heads(emb, ds.texts)
    pred, classes = predict_labels(dataset, sent, emo)
    names = labels.SENTIMENTS if dataset == "tweeteval-sentiment" else labels.EMOTIONS
    probs = sent if dataset == "tweeteval-sentiment" else emo
    if len(classes) < probs.shape[1]:  # scored over a subset of the classes: renormalise over it
        sub = np.zeros_like(probs)
        sub[:, classes] = probs[:, classes]
        probs = sub / np.maximum(sub.sum(1, keepdims=True), 1e-12)
    return {"dataset": dataset, "split": split, **classification_metrics(ds.labels, pred, names, classes),
            "calibration": calibration_summary(probs, ds.labels), "_reliability": {"model": (probs, ds.labels)}}


def write_text_report(data_dir: str | Path, out_json: str | Path, pack_dir: str | Path | None = None,
                      splits: tuple[str, ...] = ("val", "test"), progress: bool = True) -> dict[str, Any]:
    """Evaluate every text dataset on ``splits``; write ``out_json`` and record the scores in the pack's meta."""
    model = TextModel.load(pack_dir)
    results = {f"{d}/{s}": {k: v for k, v in evaluate_text(d, data_dir, s, model, progress=progress).items()
                            if not k.startswith("_")}
               for d in TEXT_DATASETS for s in splits}
    report = {"model": {"encoder": model.encoder.name.split("/")[-1], "meta": model.meta}, "results": results}
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    meta_path = Path(pack_dir or Path(__file__).resolve().parents[1] / "pack") / META
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["metrics"] = {k: {m: round(v[m], 4) for m in ("accuracy", "macro_f1", "weighted_f1")} | {"n": v["n"]}
                           for k, v in results.items()}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> None:
    """CLI: evaluate the text model and write the metrics JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--json", required=True, type=Path)
    p.add_argument("--pack", type=Path)
    a = p.parse_args(argv)
    report = write_text_report(a.data, a.json, a.pack)
    for key, r in report["results"].items():
        print(f"{key:32s} n={r['n']:6d} acc={r['accuracy']:.4f} macro_f1={r['macro_f1']:.4f} "
              f"weighted_f1={r['weighted_f1']:.4f}")


if __name__ == "__main__":
    main()
