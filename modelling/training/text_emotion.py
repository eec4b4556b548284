"""The text emotion head, trained with GoEmotions' multi-label rows (issue #17), single-label read-out.

GoEmotions rows carry up to several Ekman labels; the pack's head so far trained on one of them (the first
non-neutral one). Here each variant of ``VARIANTS`` trains a head over the frozen MiniLM's pooled views (+ VADER)
on GoEmotions train + TweetEval emotion train (optimism → joy), with a target per row:

* ``single``: one-hot of the read-out label (first non-neutral Ekman label, else neutral): the current pack;
* ``soft``: softmax cross-entropy against the row's labels spread evenly (every label of the row);
* ``bce``: one sigmoid per class against the row's multi-hot labels (logits used as they are: softmax read-out).

The read-out is ``argmax`` of the head's probabilities (+ ``bias_adjust`` tuned on val), scored like ``moodstream
eval goemotions``. Choices on GoEmotions val macro-F1 (after the offsets): the epoch per run, then the variant,
head size and view set (``POOL_SETS``) across runs. TweetEval emotion val is recorded beside each run.

Run: ``python -m modelling.training.text_emotion --data ../shared/data --out serving/pack`` (the pack's emotion
head and ``text_meta.json`` → ``heads.emotion``, ``emotion_multilabel`` are replaced; a few minutes once the texts
are encoded by ``modelling.training.encode_texts``).
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelling.metrics import macro_f1
from modelling.training.text import PACK_FEATURES, PACK_POOLS, seed_everything, tune_bias
from moodstream import labels
from serving.heads import Head, save_head
from serving.text_model import EMOTION_HEAD, META

VARIANTS = ("single", "soft", "bce")
ALL_VIEWS = ["mean", "mean@4", "mean@2", "max", "mean@0", "mean@1", "mean@3", "mean@5", "cls"]
POOL_SETS = {"pack": PACK_POOLS, "all": ALL_VIEWS}
TRAIN = {"epochs": 40, "lr": 3e-3, "weight_decay": 1e-4, "batch": 256, "weight_power": 0.5}
TWEETEVAL_EMOTION_CLASSES = [labels.EMOTION_INDEX[c] for c in ("anger", "joy", "sadness")]
K = len(labels.EMOTIONS)


def _bar(it, progress: bool, desc: str):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


def targets(y: np.ndarray, multi: list[tuple[int, ...]] | None, variant: str) -> np.ndarray:
    """(N, K) float targets of one variant: one-hot of ``y`` (``single``), the row's labels spread evenly
    (``soft``) or multi-hot (``bce``)."""
    t = np.zeros((len(y), K), np.float32)
    if variant == "single" or multi is None:
        t[np.arange(len(y)), y] = 1.0
        return t
    for i, ids in enumerate(multi):
        t[i, list(ids)] = 1.0
    return t / t.sum(1, keepdims=True) if variant == "soft" else t


def load_sets(data_dir: str | Path, pools: list[str], progress: bool = True) -> dict[str, Any]:
    """Features (views + VADER) and labels of GoEmotions train/val and TweetEval emotion train/val."""
    from modelling.training.data import read_goemotions, read_tweeteval_emotion
    from modelling.training.embed_cache import cached_embed
    from serving.encoders import TextEncoder
    from serving.text_features import extra_features

    enc = TextEncoder.load(None, max_tokens=128)
    out: dict[str, Any] = {}
    for name, reader in (("goemotions", read_goemotions), ("tweeteval_emotion", read_tweeteval_emotion)):
        for split in ("train", "val"):
            ds = reader(split, data_dir)
            emb = cached_embed(enc, ds.texts, f"{name}-{split}", progress=progress, pools=pools)
            x = np.hstack([emb, extra_features(PACK_FEATURES["emotion"], ds.texts)]).astype(np.float32)
            out[f"{name}_{split}"] = (x, ds.labels, ds.multi if name == "goemotions" else None)
    return out


def _scores(head: Head, sets: dict[str, Any], bias: np.ndarray | None = None) -> dict[str, float]:
    """GoEmotions val macro-F1 (all 7 classes) and TweetEval emotion val macro-F1 (anger/joy/sadness)."""
    b = 0 if bias is None else bias
    x, y, _ = sets["goemotions_val"]
    go = macro_f1(y, (np.log(np.clip(head.predict_proba(x), 1e-9, 1)) + b).argmax(1))
    x, y, _ = sets["tweeteval_emotion_val"]
    lp = np.log(np.clip(head.predict_proba(x), 1e-9, 1)) + b
    cls = np.asarray(TWEETEVAL_EMOTION_CLASSES)
    te = macro_f1(y, cls[lp[:, cls].argmax(1)])
    return {"goemotions_macro_f1": round(go, 4), "tweeteval_emotion_macro_f1": round(te, 4)}


def fit(sets: dict[str, Any], variant: str, hidden: int | None, *, seed: int = 0,
        progress: bool = True) -> tuple[Head, dict[str, Any]]:
    """One head: keep the epoch best on GoEmotions val macro-F1, then tune its offsets on GoEmotions val."""
    seed_everything(seed)
    xg, yg, mg = sets["goemotions_train"]
    xt, yt, _ = sets["tweeteval_emotion_train"]
    x = np.concatenate([xg, xt])
    t = np.concatenate([targets(yg, mg, variant), targets(yt, None, variant)])
    counts = t.sum(0).astype(np.float64)
    w = (counts.sum() / np.maximum(counts, 1)) ** TRAIN["weight_power"]
    w = torch.tensor(w / w.mean(), dtype=torch.float32)
    head = Head(x.shape[1], K, hidden=hidden, dropout=0.2 if hidden else 0.0)
    opt = torch.optim.AdamW(head.parameters(), lr=TRAIN["lr"] / (3 if hidden else 1),
                            weight_decay=TRAIN["weight_decay"])
    bce = nn.BCEWithLogitsLoss(pos_weight=w, reduction="none")
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    g = torch.Generator().manual_seed(seed)
    best: tuple[float, dict[str, Any], int] = (-1.0, copy.deepcopy(head.state_dict()), 0)
    bar = _bar(range(TRAIN["epochs"]), progress, f"emotion head ({variant}, hidden {hidden})")
    for epoch in bar:
        head.train()
        for idx in torch.randperm(len(tx), generator=g).split(TRAIN["batch"]):
            opt.zero_grad()
            logits, tgt = head(tx[idx]), tt[idx]
            if variant == "bce":
                loss = bce(logits, tgt).mean()
            else:  # soft-target cross-entropy, each row weighted by its targets' class weights
                loss = (-(tgt * torch.log_softmax(logits, 1)).sum(1) * (tgt * w).sum(1)).mean()
            loss.backward()
            opt.step()
        f1 = _scores(head, sets)["goemotions_macro_f1"]
        if f1 > best[0]:
            best = (f1, copy.deepcopy(head.state_dict()), epoch + 1)
        if progress:
            bar.set_postfix(val=f"{f1:.4f}", best=f"{best[0]:.4f}")
    head.load_state_dict(best[1])
    head.eval()
    before = _scores(head, sets)
    xv, yv, _ = sets["goemotions_val"]
    head.bias_adjust.zero_()
    bias = tune_bias(head.predict_proba(xv), yv)
    head.bias_adjust.copy_(torch.tensor(bias, dtype=torch.float32))
    return head, {"variant": variant, "hidden": hidden, "epochs": best[2], "val": before,
                  "val_bias_tuned": _scores(head, sets), "bias_adjust": [round(float(b), 3) for b in bias]}


def train_emotion(data_dir: str | Path, out_dir: str | Path, *, variants: tuple[str, ...] = VARIANTS,
                  hiddens: tuple[int, ...] = (0,), pool_sets: tuple[str, ...] = ("pack",), seed: int = 0,
                  progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """Fit one head per (view set, variant, head size), keep the best on GoEmotions val macro-F1, write it into
    the pack ``out_dir`` and record every run in ``text_meta.json`` → ``emotion_multilabel``."""
    torch.set_num_threads(1)
    t0 = time.time()
    out = Path(out_dir)
    runs: list[tuple[Head, dict[str, Any]]] = []
    for ps in pool_sets:
        sets = load_sets(data_dir, POOL_SETS[ps], progress)
        for v in variants:
            for h in hiddens:
                head, m = fit(sets, v, h or None, seed=seed, progress=progress)
                runs.append((head, {"pools": ps, **m}))
                print(json.dumps(runs[-1][1]), flush=True)
    k = max(range(len(runs)), key=lambda i: runs[i][1]["val_bias_tuned"]["goemotions_macro_f1"])
    head, chosen = runs[k]
    pools = POOL_SETS[chosen["pools"]]
    save_head(out / EMOTION_HEAD, head, {"labels": list(labels.EMOTIONS), "mode": "frozen", "pools": pools,
                                         "features": PACK_FEATURES["emotion"]})
    meta_path = out / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["heads"]["emotion"] = {"in_dim": head.in_dim, "hidden": head.hidden, "out_dim": head.out_dim,
                                "epochs": chosen["epochs"],
                                "val_macro_f1": chosen["val"]["goemotions_macro_f1"],
                                "val_macro_f1_bias_tuned": chosen["val_bias_tuned"]["goemotions_macro_f1"],
                                "bias_adjust": chosen["bias_adjust"], "pools": pools,
                                "features": PACK_FEATURES["emotion"],
                                "train_config": {**TRAIN, "variant": chosen["variant"], "hidden": head.hidden}}
    meta["data"]["emotion"] = ("goemotions Ekman train (every label of multi-label rows: variant "
                               f"{chosen['variant']}) + tweeteval/emotion train (optimism→joy), tuned on goemotions "
                               "val (modelling.training.text_emotion)")
    meta["emotion_multilabel"] = {"chosen": chosen, "runs": [m for _, m in runs], "seed": seed,
                                  "rule": "best goemotions val macro-F1 after the per-class offsets",
                                  "seconds": round(time.time() - t0, 1), "command": command}
    meta.pop("calibration", None)  # the new head needs its own temperature (modelling.training.calibrate)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    _relist(out)
    return meta["emotion_multilabel"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="a complete pack directory (its emotion head is replaced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--hidden", type=int, nargs="+", default=[0], help="head sizes to try; 0 → linear")
    p.add_argument("--pools", nargs="+", choices=sorted(POOL_SETS), default=["pack"], help="view sets to try")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cmd = "python -m modelling.training.text_emotion " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    r = train_emotion(a.data, a.out, variants=tuple(a.variants), hiddens=tuple(a.hidden), pool_sets=tuple(a.pools),
                      seed=a.seed, progress=not a.quiet, command=cmd)
    print(json.dumps(r["chosen"], indent=1))


def _relist(pack_dir: Path) -> None:
    """Re-list the pack's files in its manifest (the pack version hashes them), when it has one."""
    from serving.pack import MANIFEST, write_manifest

    if (pack_dir / MANIFEST).is_file():
        write_manifest(pack_dir)


if __name__ == "__main__":
    main()
