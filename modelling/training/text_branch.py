"""Blend a fine-tuned top layer with the pack's own: a two-branch text path (issues #14, #17).

``modelling.training.text_top`` fine-tunes MiniLM's top layer and both heads on TweetEval + MVSA captions and
GoEmotions + TweetEval emotion. Swapped in for the pack's own layer, it reads MVSA captions and emotions better but
TweetEval sentiment worse (the features move). Here the fine-tuned layer runs *beside* the pack's own instead
(``serving.top_layers``: ``text_branch_layer_5.safetensors``, views ``mean+ft`` / ``max+ft``), and each task's head
becomes one blended head, ``w · pack head(plain views) + (1 − w) · tuned head(branch views)``
(``modelling.training.head_ensemble.blend_heads``): one extra layer per caption, the lower five shared.

Choices on val only (cached activations, as ``text_top``): per task the weight ``w`` on a grid and then per-class
logit offsets. Sentiment: the mean of TweetEval sentiment val macro-F1 and MVSA val ``text_label`` accuracy, among
the weights whose TweetEval val macro-F1 (after offsets) is at least that of the pack's own head (``w`` = 1) with
offsets chosen by the same rule; emotion: GoEmotions val
macro-F1 (TweetEval emotion within 0.005 of its value without offsets, as ``text_top``).

Run: ``python -m modelling.training.text_branch --data ../shared/data --cache runs/top_cache --pack serving/pack
--run runs/top/run0 --out runs/pack_branch`` (``--out``: a new pack directory, copied from ``--pack``; then
``calibrate --parts text``, ``text_ngram --tasks emotion`` and ``train fusion`` on it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelling.training.head_ensemble import blend_heads
from modelling.training.text_top import SPLITS, TopTuner, features, load_part, offsets_for, restore, scores
from moodstream import labels
from serving.heads import Head, save_head
from serving.text_features import extra_features
from serving.text_model import EMOTION_HEAD, META, SENTIMENT_HEAD
from serving.top_layers import save_branch

WEIGHTS = [round(w, 2) for w in np.linspace(0.0, 1.0, 11)]
PLAIN = ["mean", "mean@4", "mean@2", "max"]  # the pack heads' views (text_top keeps this contract) + VADER
BRANCH = ["mean+ft", "mean@4", "mean@2", "max+ft"]
POOLS = ["mean", "mean@4", "mean@2", "max", "mean+ft", "max+ft"]  # the blended heads' views, then VADER


def columns(views: list[str], dim: int, n_extra: int) -> list[int]:
    """Column of each input of a head reading ``views`` + ``n_extra`` features, in the blended input (``POOLS`` +
    the same features)."""
    cols = [POOLS.index(v) * dim + j for v in views for j in range(dim)]
    return cols + [len(POOLS) * dim + j for j in range(n_extra)]


def raw_logp(head: Head, x: np.ndarray) -> np.ndarray:
    """Log-softmax of the head's logits without its offsets or temperature."""
    with torch.inference_mode():
        logits = head.net(torch.from_numpy(np.asarray(x, np.float32)))
    return torch.log_softmax(logits, -1).numpy()


def choose(base: dict[str, np.ndarray], tuned: dict[str, np.ndarray], val: dict, task: str) -> dict[str, Any]:
    """Weight and offsets for ``task`` on val; every weight's val scores in ``trials``. Sentiment: only weights whose
    TweetEval val macro-F1 is at least that of the pack's head alone (``w`` = 1) with offsets tuned by the same
    rule (``floor``)."""
    keys = ("sent", "mvsa") if task == "sentiment" else ("go", "te")
    trials = []
    for w in WEIGHTS:
        lp = {k: w * base[k] + (1 - w) * tuned[k] for k in keys}
        bias = offsets_for(lp, val, tasks=(task,))[task]
        got = {k: lp[k] + bias for k in keys}
        if task == "sentiment":
            s = scores(got["sent"], got["mvsa"], None, None, val)
            s["score"] = round((s["tweeteval_sentiment_macro_f1"] + s["mvsa_text_accuracy"]) / 2, 4)
        else:
            s = scores(None, None, got["go"], got["te"], val)
            s["score"], s["allowed"] = s["goemotions_macro_f1"], True
        trials.append({"w": w, "offsets": bias.tolist(), "val": s})
    floor = None
    if task == "sentiment":
        floor = next(t for t in trials if t["w"] == 1.0)["val"]["tweeteval_sentiment_macro_f1"]
        for t in trials:
            t["val"]["allowed"] = t["val"]["tweeteval_sentiment_macro_f1"] >= floor
    best = max((t for t in trials if t["val"]["allowed"]), key=lambda t: (t["val"]["score"], t["w"]))
    return {"w": best["w"], "offsets": best["offsets"], "val": best["val"], "floor": floor, "trials": trials}


def blended(base: Head, tuned: Head, w: float, offsets: list[float], dim: int, n_extra: int) -> Head:
    """The blended head (``POOLS`` + features in), with the chosen offsets."""
    head = blend_heads([(base, w, columns(PLAIN, dim, n_extra)), (tuned, 1 - w, columns(BRANCH, dim, n_extra))],
                       len(POOLS) * dim + n_extra)
    head.bias_adjust.copy_(torch.tensor(offsets, dtype=torch.float32))
    return head


def write(out: Path, pack: Path, tuned: TopTuner, heads: dict[str, Head], chosen: dict[str, Any],
          command: str) -> None:
    """Copy ``pack`` to ``out`` (unless it is there) and put the branch and the blended heads into it."""
    from serving.pack import MANIFEST, write_manifest

    if not out.exists():
        shutil.copytree(pack, out)
    (index, layer), = tuned.layer_state().items()
    save_branch(layer, index, out)
    meta_path = out / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for task, fname in (("sentiment", SENTIMENT_HEAD), ("emotion", EMOTION_HEAD)):
        save_head(out / fname, heads[task], {"labels": list(labels.SENTIMENTS if task == "sentiment"
                                                            else labels.EMOTIONS),
                                             "mode": "branch_blend", "pools": POOLS, "features": ["vader"]})
        meta["heads"][task].update({"in_dim": heads[task].in_dim, "hidden": heads[task].hidden,
                                    "bias_adjust": chosen[task]["offsets"], "pools": POOLS,
                                    "blend_w_pack_head": chosen[task]["w"]})
    meta["mode"] = "branch_blend"
    meta["branch"] = {"file": f"text_branch_layer_{index}.safetensors (fp16)", "command": command,
                      "chosen": {t: {k: v for k, v in c.items() if k != "trials"} for t, c in chosen.items()},
                      "trials": {t: c["trials"] for t, c in chosen.items()}}
    meta.pop("calibration", None)  # new heads: recalibrate (modelling.training.calibrate)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if (out / MANIFEST).is_file():
        write_manifest(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--cache", type=Path, default=Path("runs/top_cache"))
    p.add_argument("--pack", type=Path, default=Path("serving/pack"), help="the pack whose own top layer stays")
    p.add_argument("--run", required=True, type=Path, help="a text_top run directory (its best.pt)")
    p.add_argument("--out", required=True, type=Path, help="the new pack directory (copied from --pack)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    cmd = "python -m modelling.training.text_branch " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    torch.set_num_threads(a.threads)
    val = {k: load_part(a.cache, a.data, d, "val") for k, d in SPLITS.items()}
    cfg = torch.load(a.run / "best.pt", weights_only=False)["result"]["config"]
    base, tuned = restore(None, a.pack, cfg, "cpu"), restore(a.run, a.pack, cfg, "cpu")
    xb, xt = features(base, val, torch.device("cpu")), features(tuned, val, torch.device("cpu"))
    lb = {k: raw_logp(base.sentiment if k in ("sent", "mvsa") else base.emotion, xb[k]) for k in val}
    lt = {k: raw_logp(tuned.sentiment if k in ("sent", "mvsa") else tuned.emotion, xt[k]) for k in val}
    chosen = {task: choose(lb, lt, val, task) for task in ("sentiment", "emotion")}
    n_extra = extra_features(["vader"], ["x"]).shape[1]
    dim = (xb["sent"].shape[1] - n_extra) // len(PLAIN)
    heads = {"sentiment": blended(base.sentiment, tuned.sentiment, chosen["sentiment"]["w"],
                                  chosen["sentiment"]["offsets"], dim, n_extra),
             "emotion": blended(base.emotion, tuned.emotion, chosen["emotion"]["w"], chosen["emotion"]["offsets"],
                                dim, n_extra)}
    for task, c in chosen.items():
        for t in c["trials"]:
            print(json.dumps({"task": task, "w": t["w"], **t["val"]}), flush=True)
        print(json.dumps({"task": task, "chosen_w": c["w"], "val": c["val"]}), flush=True)
    write(a.out, a.pack, tuned, heads, chosen, cmd)
    print(f"wrote {a.out}", flush=True)


if __name__ == "__main__":
    main()
