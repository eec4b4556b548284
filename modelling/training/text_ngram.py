"""Blend each text head with a hashed n-gram linear model (``serving.ngram``), chosen on val (issue #17).

The frozen MiniLM reads meaning; a bag of word and character n-grams reads the surface: words the encoder's
vocabulary splits, hashtags, emoticons, elongations. Their errors differ, so the sum of their logits beats either.
For each head of ``--tasks``:

1. fit a logistic regression (class-balanced, L2, scikit-learn ``lbfgs``) on the n-gram features of the head's own
   training data, once per ``--C``: sentiment on TweetEval sentiment train; emotion on GoEmotions train (the
   single-label read-out) + TweetEval emotion train (optimism → joy), as the emotion head is trained;
2. for each blend ``weight`` of ``--weights`` (0 keeps the head alone), tune per-class offsets on val
   (``modelling.training.text.tune_bias``) over ``head logits + weight × n-gram logits``;
3. keep the (C, weight) with the best val score after the offsets: sentiment — the mean of TweetEval val macro-F1
   and MVSA-Single val ``text_label`` accuracy (the sentiment head's own rule, ``text_tweets``), among those whose
   TweetEval val macro-F1 is no lower than the head's alone; emotion — GoEmotions val macro-F1, among those whose
   TweetEval emotion val macro-F1 is within 0.005 of the head's alone.

The chosen model is written to the pack (``text_<task>_ngram.safetensors``, its weight inside), the offsets into
the head's ``bias_adjust``, every trial into ``text_meta.json`` → ``ngram``; then the text temperatures are refit
(``modelling.training.calibrate``). Retrain fusion afterwards (``moodstream train fusion``): its inputs changed.

Run: ``python -m modelling.training.text_ngram --data ../shared/data --pack serving/pack`` (about 15 minutes on
two cores; the val captions' encoder views come from the embedding cache).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelling.metrics import macro_f1
from modelling.training.text import tune_bias
from moodstream import labels
from serving.heads import read_head_meta, save_head
from serving.ngram import NgramConfig, NgramModel, hashed_counts, save_ngram, tfidf_rows
from serving.text_model import EMOTION_HEAD, META, NGRAM, SENTIMENT_HEAD, TextModel

TASKS = ("sentiment", "emotion")
HEAD_FILES = {"sentiment": SENTIMENT_HEAD, "emotion": EMOTION_HEAD}
CS = (0.5, 1.0, 2.0)
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
TWEETEVAL_EMOTION_CLASSES = [labels.EMOTION_INDEX[c] for c in ("anger", "joy", "sadness")]
EMOTION_SLACK = 0.005


def _bar(it, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, leave=False)


def fit_idf(counts: Any, min_df: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept bucket indices, their smoothed idf ``ln((1+n)/(1+df)) + 1``) for buckets in ≥ ``min_df`` texts."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    index = np.flatnonzero(df >= min_df)
    n = counts.shape[0]
    return index, (np.log((1.0 + n) / (1.0 + df[index])) + 1.0).astype(np.float32)


def fit_linear(x: Any, y: np.ndarray, n_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef (K, n_classes), intercept) of a class-balanced multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    m.fit(x, y)
    coef = np.zeros((x.shape[1], n_classes), np.float32)
    intercept = np.zeros(n_classes, np.float32)
    if len(m.classes_) == 2:  # a binary fit has one row of weights: the logit of the second class over the first
        coef[:, m.classes_[1]] = m.coef_[0]
        intercept[m.classes_[1]] = m.intercept_[0]
    else:
        coef[:, m.classes_] = m.coef_.T
        intercept[m.classes_] = m.intercept_
    absent = np.setdiff1d(np.arange(n_classes), m.classes_)
    intercept[absent] = -1e4  # a class with no training row is never predicted
    return coef, intercept


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _tweeteval_emotion_f1(z: np.ndarray, y: np.ndarray) -> float:
    cls = TWEETEVAL_EMOTION_CLASSES
    return macro_f1(y, np.asarray(cls)[z[:, cls].argmax(1)])


def _head_logits(model: TextModel, task: str, texts: list[str], tag: str, progress: bool) -> np.ndarray:
    """The head's raw log-probabilities (no offsets, no temperature, no blend) on ``texts``."""
    from modelling.training.embed_cache import cached_embed

    emb = cached_embed(model.encoder, texts, tag, progress=progress, pools=model.pools)
    sent, emo = model.heads(emb, texts)
    return np.log(np.clip(sent if task == "sentiment" else emo, 1e-9, 1.0))


def load_task(task: str, data_dir: str | Path, model: TextModel, progress: bool) -> dict[str, Any]:
    """Training texts/labels for the n-gram model and, per val set, (texts, labels, head log-probs)."""
    from modelling.training.data import read_mvsa, read_text_dataset

    def text_set(name: str, split: str) -> tuple[list[str], np.ndarray]:
        d = read_text_dataset(name, split, data_dir)
        return list(d.texts), np.asarray(d.labels)

    if task == "sentiment":
        train = text_set("tweeteval-sentiment", "train")
        mvsa = read_mvsa("val", data_dir)
        vals = {"tweeteval-sentiment": text_set("tweeteval-sentiment", "val"),
                "mvsa-text": ([r["text"] for r in mvsa],
                              np.asarray([labels.SENTIMENT_INDEX[r["text_label"]] for r in mvsa]))}
    else:
        go, te = text_set("goemotions", "train"), text_set("tweeteval-emotion", "train")
        train = (go[0] + te[0], np.concatenate([go[1], te[1]]))
        vals = {"goemotions": text_set("goemotions", "val"), "tweeteval-emotion": text_set("tweeteval-emotion", "val")}
    return {"train": train,
            "val": {k: (t, y, _head_logits(model, task, t, f"{k}-val", progress)) for k, (t, y) in vals.items()}}


def scores(task: str, logits: dict[str, np.ndarray], ys: dict[str, np.ndarray]) -> dict[str, float]:
    """The val figures of one task from blended logits (offsets included)."""
    if task == "sentiment":
        out = {"tweeteval_sentiment_macro_f1": macro_f1(ys["tweeteval-sentiment"],
                                                        logits["tweeteval-sentiment"].argmax(1)),
               "mvsa_text_accuracy": float((ys["mvsa-text"] == logits["mvsa-text"].argmax(1)).mean())}
        out["score"] = (out["tweeteval_sentiment_macro_f1"] + out["mvsa_text_accuracy"]) / 2
    else:
        out = {"goemotions_macro_f1": macro_f1(ys["goemotions"], logits["goemotions"].argmax(1)),
               "tweeteval_emotion_macro_f1": _tweeteval_emotion_f1(logits["tweeteval-emotion"],
                                                                   ys["tweeteval-emotion"])}
        out["score"] = out["goemotions_macro_f1"]
    return {k: round(float(v), 4) for k, v in out.items()}


def _offsets(task: str, z: dict[str, np.ndarray], ys: dict[str, np.ndarray]) -> np.ndarray:
    key = "tweeteval-sentiment" if task == "sentiment" else "goemotions"
    return tune_bias(_softmax(z[key]), ys[key])


def _allowed(task: str, s: dict[str, float], alone: dict[str, float]) -> bool:
    if task == "sentiment":
        return s["tweeteval_sentiment_macro_f1"] >= alone["tweeteval_sentiment_macro_f1"]
    return s["tweeteval_emotion_macro_f1"] >= alone["tweeteval_emotion_macro_f1"] - EMOTION_SLACK


def search(task: str, data: dict[str, Any], n_classes: int, cs: tuple[float, ...], weights: tuple[float, ...],
           config: NgramConfig, min_df: int, progress: bool) -> tuple[NgramModel | None, np.ndarray, dict[str, Any]]:
    """Fit one n-gram model per C, score every (C, weight) on val after offsets; (chosen model or None for the
    head alone, its offsets, the record of every trial)."""
    texts, y = data["train"]
    t0 = time.time()
    counts = hashed_counts(texts, config)
    index, idf = fit_idf(counts, min_df)
    x = tfidf_rows(counts, index, idf)
    val_x = {k: tfidf_rows(hashed_counts(t, config), index, idf) for k, (t, _, _) in data["val"].items()}
    ys = {k: v[1] for k, v in data["val"].items()}
    head = {k: v[2] for k, v in data["val"].items()}
    alone_offsets = _offsets(task, head, ys)
    alone = scores(task, {k: z + alone_offsets for k, z in head.items()}, ys)
    trials: list[dict[str, Any]] = []
    best: tuple[float, Any, np.ndarray, dict[str, Any]] = (alone["score"], None, alone_offsets,
                                                           {"C": None, "weight": 0.0, "val": alone})
    for c in _bar(cs, progress, f"{task}: n-gram fits", total=len(cs)):
        coef, intercept = fit_linear(x, y, n_classes, c)
        ng = {k: np.asarray(v @ coef) + intercept for k, v in val_x.items()}
        trials.append({"C": c, "weight": 1.0, "ngram_alone_val": scores(task, ng, ys)})
        for w in weights:
            if w == 0:
                continue
            z = {k: head[k] + w * ng[k] for k in head}
            off = _offsets(task, z, ys)
            s = scores(task, {k: v + off for k, v in z.items()}, ys)
            ok = _allowed(task, s, alone)
            trials.append({"C": c, "weight": w, "val": s, "allowed": ok})
            if ok and s["score"] > best[0] + 1e-9:
                model = NgramModel(config, index, idf, coef, intercept, float(w))
                best = (s["score"], model, off, {"C": c, "weight": w, "val": s})
    record = {"head_alone_val": alone, "chosen": best[3], "trials": trials, "train_rows": len(texts),
              "kept_buckets": len(index), "min_df": min_df, "seconds": round(time.time() - t0, 1)}
    return best[1], best[2], record


def train_ngram(data_dir: str | Path, pack_dir: str | Path, *, tasks: tuple[str, ...] = TASKS,
                cs: tuple[float, ...] = CS, weights: tuple[float, ...] = WEIGHTS, min_df: int = 3,
                progress: bool = True, command: str | None = None, calibrate: bool = True) -> dict[str, Any]:
    """Choose, write and record the blend of each head of ``tasks`` in the pack ``pack_dir`` (see the module doc)."""
    pack = Path(pack_dir)
    model = TextModel.load(pack)
    model.ngrams = {}  # the head alone: any earlier blend is replaced
    for h in (model.sentiment_head, model.emotion_head):
        h.temperature = 1.0
        h.bias_adjust.zero_()
    meta_path = pack / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for task in tasks:
        n = len(labels.SENTIMENTS if task == "sentiment" else labels.EMOTIONS)
        data = load_task(task, data_dir, model, progress)
        ngram, offsets, record = search(task, data, n, cs, weights, NgramConfig(), min_df, progress)
        head = model.sentiment_head if task == "sentiment" else model.emotion_head
        head.bias_adjust.copy_(torch.tensor(offsets, dtype=torch.float32))
        _, head_meta = read_head_meta(pack / HEAD_FILES[task])
        save_head(pack / HEAD_FILES[task], head, head_meta)
        target = pack / NGRAM[task]
        if ngram is None:
            target.unlink(missing_ok=True)
        else:
            ngram.meta = {"task": task, "labels": list(labels.SENTIMENTS if task == "sentiment" else labels.EMOTIONS),
                          "C": record["chosen"]["C"], "min_df": min_df, "train_rows": record["train_rows"]}
            save_ngram(target, ngram)
        meta["heads"][task]["bias_adjust"] = [round(float(b), 3) for b in offsets]
        out[task] = record
        print(json.dumps({task: record["chosen"], "head_alone_val": record["head_alone_val"]}), flush=True)
    meta.setdefault("ngram", {}).update(out)
    meta["ngram"]["command"] = command
    meta["ngram"]["rule"] = ("per head, the (C, weight) with the best val score after per-class offsets; sentiment: "
                             "mean(TweetEval val macro-F1, MVSA val text_label accuracy), TweetEval val macro-F1 no "
                             "lower than the head alone; emotion: GoEmotions val macro-F1, TweetEval emotion val "
                             f"macro-F1 within {EMOTION_SLACK} of the head alone")
    meta.pop("calibration", None)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if calibrate:
        from modelling.training.calibrate import calibrate_pack

        calibrate_pack(data_dir, pack, progress=progress, parts=("text",))
    from serving.pack import MANIFEST, write_manifest

    if (pack / MANIFEST).is_file():
        write_manifest(pack)
    return out


def main(argv: list[str] | None = None) -> None:
    """CLI: choose and write the n-gram blends of a pack's text heads."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--pack", required=True, type=Path, help="a complete pack directory, changed in place")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--C", dest="cs", type=float, nargs="+", default=list(CS), help="inverse L2 strengths to try")
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS), help="blend weights to try")
    p.add_argument("--min-df", type=int, default=3, help="keep n-gram buckets seen in at least this many texts")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cmd = "python -m modelling.training.text_ngram " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    train_ngram(a.data, a.pack, tasks=tuple(a.tasks), cs=tuple(a.cs), weights=tuple(a.weights), min_df=a.min_df,
                progress=not a.quiet, command=cmd)


if __name__ == "__main__":
    main()
