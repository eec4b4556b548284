"""A text sentiment head that reads tweets with images well (issue #14): TweetEval train + MVSA-Single train captions.

The pack's sentiment head was trained on TweetEval alone (45 % neutral); on MVSA captions it calls a third of the
clearly polar ones neutral and scores ~0.60 against MVSA's own ``text_label``. This retrains only the sentiment head,
same input (the four pooled views of the frozen MiniLM + VADER, ``PACK_POOLS``/``PACK_FEATURES``) and same MLP, on
TweetEval sentiment train plus MVSA-Single train captions with their ``text_label``, the MVSA rows repeated
``mvsa_repeat`` times. Choices on val only:

* the epoch: best ``score`` = mean of TweetEval val macro-F1 and MVSA val ``text_label`` accuracy;
* the per-class logit offsets (``bias_adjust``): coordinate search on the same mean score;
* ``mvsa_repeat`` (the CLI's ``--repeats`` grid): the best val score among those whose TweetEval val macro-F1 is
  not below the current pack head's by more than 0.005.

Modes: ``finetune`` (the pack head, further on MVSA train only), ``retrain`` (from scratch on TweetEval train + MVSA;
optionally other ``--pools`` and a merged seed ``--ensemble``), ``top`` (only the MLP's output layer, over the pack
head's hidden activations: minutes, and a TweetEval train subset suffices, ``--tweeteval-subset``). Run ``top`` on a
pack whose sentiment head came from ``moodstream train text`` (it starts from that head).

The emotion head is untouched. Run: ``python -m modelling.training.text_tweets --data ../shared/data --out runs/pack``.
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
from modelling.training.text import PACK_FEATURES, PACK_HEADS, PACK_POOLS, class_weights, seed_everything
from moodstream import labels
from serving.heads import Head, load_head, save_head
from serving.text_model import META, SENTIMENT_HEAD

REPEATS = (0, 3, 6, 10)
TWEETEVAL_SLACK = 0.005


def _bar(it, progress: bool, desc: str):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


def load_features(data_dir: str | Path, progress: bool = True, tweeteval_train: bool = True,
                  pools: list[str] | None = None,
                  tweeteval_subset: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) of TweetEval sentiment train/val and MVSA-Single train/val captions (``text_label``): the cached pooled
    views (``pools``, default ``PACK_POOLS``) plus VADER features, exactly the sentiment head's input.
    ``tweeteval_subset``: a seeded random subset (seed 0) of that many TweetEval train rows."""
    from modelling.training.data import read_mvsa, read_text_dataset
    from modelling.training.embed_cache import cached_embed
    from serving.encoders import TextEncoder
    from serving.text_features import extra_features

    enc = TextEncoder.load(None, max_tokens=128)
    out = {}
    sets = [("tweeteval", "train")] if tweeteval_train else []
    for name, split in (*sets, ("tweeteval", "val"), ("mvsa", "train"), ("mvsa", "val")):
        if name == "tweeteval":
            ds = read_text_dataset("tweeteval-sentiment", split, data_dir)
            if split == "train":
                ds = ds.sample(tweeteval_subset, 0)
            texts, y = ds.texts, ds.labels
        else:
            d = read_mvsa(split, data_dir)
            texts = [r["text"] for r in d.rows]
            y = np.asarray([labels.SENTIMENT_INDEX[r["text_label"]] for r in d.rows], np.int64)
            d.close()
        emb = cached_embed(enc, texts, f"{name}-{split}", progress=progress, pools=pools or PACK_POOLS)
        x = np.hstack([emb, extra_features(PACK_FEATURES["sentiment"], texts)]).astype(np.float32)
        out[f"{name}_{split}"] = (x, np.asarray(y, np.int64))
    return out


def val_score(head: Head, feats: dict[str, tuple[np.ndarray, np.ndarray]],
              bias: np.ndarray | None = None) -> dict[str, float]:
    """TweetEval val macro-F1, MVSA val ``text_label`` accuracy and their mean (``score``)."""
    out = {}
    for key, name in (("tweeteval_val", "tweeteval_macro_f1"), ("mvsa_val", "mvsa_text_accuracy")):
        x, y = feats[key]
        logp = np.log(np.clip(head.predict_proba(x), 1e-9, 1.0)) + (0 if bias is None else bias)
        pred = logp.argmax(1)
        out[name] = macro_f1(y, pred) if name.startswith("tweeteval") else float((pred == y).mean())
    out["score"] = (out["tweeteval_macro_f1"] + out["mvsa_text_accuracy"]) / 2
    return out


def tune_bias(head: Head, feats: dict[str, tuple[np.ndarray, np.ndarray]], rounds: int = 3) -> np.ndarray:
    """Per-class log-prob offsets maximising the mean val score (coordinate search, as ``text.tune_bias``)."""
    grid = np.linspace(-1.5, 1.5, 31)
    bias = np.zeros(len(labels.SENTIMENTS))
    best = val_score(head, feats, bias)["score"]
    for _ in range(rounds):
        improved = False
        for c in range(len(bias)):
            for g in grid:
                trial = bias.copy()
                trial[c] = g
                s = val_score(head, feats, trial)["score"]
                if s > best + 1e-6:
                    best, bias, improved = s, trial, True
        if not improved:
            break
    return bias


def fit(feats: dict[str, tuple[np.ndarray, np.ndarray]], mvsa_repeat: int, *, seed: int = 0,
        progress: bool = True) -> tuple[Head, dict[str, Any]]:
    """Train the sentiment MLP (``PACK_HEADS["sentiment"]``) on TweetEval train + ``mvsa_repeat``× MVSA train."""
    cfg = PACK_HEADS["sentiment"]
    seed_everything(seed)
    xt, yt = feats["tweeteval_train"]
    xm, ym = feats["mvsa_train"]
    x = np.concatenate([xt, *([xm] * mvsa_repeat)])
    y = np.concatenate([yt, *([ym] * mvsa_repeat)])
    head = Head(x.shape[1], len(labels.SENTIMENTS), hidden=cfg["hidden"], dropout=cfg["dropout"])
    opt = torch.optim.AdamW(head.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(y, len(labels.SENTIMENTS), cfg["weight_power"]))
    head, info = _train_choose_epoch(head, feats, head, torch.from_numpy(x), torch.from_numpy(y), opt, loss_fn,
                                     epochs=cfg["epochs"], batch=256, seed=seed, progress=progress,
                                     desc=f"sentiment head (mvsa x{mvsa_repeat})")
    return head, {"mvsa_repeat": mvsa_repeat, **info}


def _train_choose_epoch(head: Head, feats: dict[str, tuple[np.ndarray, np.ndarray]], trained: nn.Module,
                        x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, loss_fn: nn.Module, *,
                        epochs: int, batch: int, seed: int, progress: bool, desc: str) -> tuple[Head, dict[str, Any]]:
    """Train ``trained`` (the head or a part of it) on ``(x, y)``; keep the epoch with the best val ``score`` of the
    whole ``head``, then tune its per-class offsets on val. Returns the head and what was chosen."""
    g = torch.Generator().manual_seed(seed)
    best: tuple[float, dict[str, Any], int] = (-1.0, copy.deepcopy(head.state_dict()), 0)
    bar = _bar(range(epochs), progress, desc)
    for epoch in bar:
        trained.train()
        for idx in torch.randperm(len(x), generator=g).split(batch):
            opt.zero_grad()
            loss_fn(trained(x[idx]), y[idx]).backward()
            opt.step()
        s = val_score(head, feats)["score"]  # predict_proba runs in eval mode
        if s > best[0]:
            best = (s, copy.deepcopy(head.state_dict()), epoch + 1)
        if progress:
            bar.set_postfix(val=f"{s:.4f}", best=f"{best[0]:.4f}")
    head.load_state_dict(best[1])
    head.eval()
    before = val_score(head, feats)
    bias = tune_bias(head, feats)
    head.bias_adjust.copy_(torch.tensor(bias, dtype=torch.float32))
    return head, {"epochs": best[2], "val": before, "val_bias_tuned": val_score(head, feats),
                  "bias_adjust": [round(float(b), 3) for b in bias]}


TOP = {"epochs": 30, "lr": 1e-3, "weight_decay": 1e-2, "batch": 256}


@torch.no_grad()
def hidden_features(head: Head, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """The MLP head's hidden activations (after GELU), (N, hidden) float32."""
    body = nn.Sequential(head.net[0], head.net[1]).eval()
    return np.concatenate([body(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def fit_top(feats: dict[str, tuple[np.ndarray, np.ndarray]], start: Head, mvsa_repeat: int, *, seed: int = 0,
            progress: bool = True) -> tuple[Head, dict[str, Any]]:
    """Retrain only the output layer of the pack's MLP head (its hidden layer kept, so its hidden activations are
    computed once) on TweetEval train + ``mvsa_repeat``× MVSA train captions; epoch and offsets chosen on val as in
    ``fit``. Minutes on a shared CPU where a full retrain takes an hour."""
    seed_everything(seed)
    head = copy.deepcopy(start).eval()
    head.bias_adjust.zero_()
    ht, yt = hidden_features(head, feats["tweeteval_train"][0]), feats["tweeteval_train"][1]
    hm, ym = hidden_features(head, feats["mvsa_train"][0]), feats["mvsa_train"][1]
    x = torch.from_numpy(np.concatenate([ht, *([hm] * mvsa_repeat)]))
    y = np.concatenate([yt, *([ym] * mvsa_repeat)])
    layer = head.net[3]
    opt = torch.optim.AdamW(layer.parameters(), lr=TOP["lr"], weight_decay=TOP["weight_decay"])
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(y, len(labels.SENTIMENTS),
                                                       PACK_HEADS["sentiment"]["weight_power"]))
    head, info = _train_choose_epoch(head, feats, layer, x, torch.from_numpy(y), opt, loss_fn, epochs=TOP["epochs"],
                                     batch=TOP["batch"], seed=seed, progress=progress,
                                     desc=f"sentiment output layer (mvsa x{mvsa_repeat})")
    return head, {"mode": "top", "mvsa_repeat": mvsa_repeat, **info}


FINETUNE = {"epochs": 30, "lr": 2e-4, "weight_decay": 1e-2, "batch": 64}
FINETUNE_LRS = (1e-4, 3e-4, 1e-3)


def finetune(feats: dict[str, tuple[np.ndarray, np.ndarray]], start: Head, floor: float, *, lr: float,
             seed: int = 0, progress: bool = True) -> tuple[Head, dict[str, Any]]:
    """Continue training the pack's sentiment head on MVSA train captions (``text_label``) only; keep the epoch with
    the best mean val score among those whose TweetEval val macro-F1 stays ≥ ``floor`` (epoch 0 = the start head)."""
    seed_everything(seed)
    head = copy.deepcopy(start)  # its val-tuned bias_adjust stays in the per-epoch val scores (eval mode only)
    x, y = feats["mvsa_train"]
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=FINETUNE["weight_decay"])
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(y, len(labels.SENTIMENTS), PACK_HEADS["sentiment"]
                                                       ["weight_power"]))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)

    def ok(s: dict[str, float]) -> bool:
        return s["tweeteval_macro_f1"] >= floor

    s0 = val_score(head, feats)
    best: tuple[float, dict[str, Any], int] = (s0["score"] if ok(s0) else -1.0, copy.deepcopy(head.state_dict()), 0)
    bar = _bar(range(FINETUNE["epochs"]), progress, f"sentiment head fine-tune (lr {lr:g})")
    for epoch in bar:
        head.train()
        for idx in torch.randperm(len(tx), generator=g).split(FINETUNE["batch"]):
            opt.zero_grad()
            loss_fn(head(tx[idx]), ty[idx]).backward()
            opt.step()
        s = val_score(head, feats)
        if ok(s) and s["score"] > best[0]:
            best = (s["score"], copy.deepcopy(head.state_dict()), epoch + 1)
        if progress:
            bar.set_postfix(val=f"{s['score']:.4f}", best=f"{best[0]:.4f}")
    head.load_state_dict(best[1])
    head.eval()
    before = val_score(head, feats)
    bias = tune_bias(head, feats)
    if val_score(head, feats, bias)["tweeteval_macro_f1"] < floor:
        bias = np.zeros_like(bias)
    head.bias_adjust.copy_(torch.tensor(bias, dtype=torch.float32))
    return head, {"mode": "finetune", "lr": lr, "epochs": best[2], "val": before,
                  "val_bias_tuned": val_score(head, feats), "bias_adjust": [round(float(b), 3) for b in bias]}


def _ensemble(feats: dict[str, tuple[np.ndarray, np.ndarray]], single: tuple[Head, dict[str, Any]], size: int,
              floor: float, *, seed: int, progress: bool) -> tuple[Head, dict[str, Any]]:
    """``size`` seeds of the chosen configuration merged into one head (``head_ensemble.merge_heads``), offsets
    tuned on val; kept only when its mean val score beats the single head's (and TweetEval val stays ≥ ``floor``)."""
    from modelling.training.head_ensemble import merge_heads

    head0, meta0 = single
    heads = [head0] + [fit(feats, meta0["mvsa_repeat"], seed=seed + i, progress=progress)[0] for i in range(1, size)]
    for h in heads:
        h.bias_adjust.zero_()
    merged = merge_heads(heads)
    before = val_score(merged, feats)
    bias = tune_bias(merged, feats)
    merged.bias_adjust.copy_(torch.tensor(bias, dtype=torch.float32))
    after = val_score(merged, feats)
    head0.bias_adjust.copy_(torch.tensor(meta0["bias_adjust"], dtype=torch.float32))
    meta = {**meta0, "ensemble": size, "val": before, "val_bias_tuned": after,
            "bias_adjust": [round(float(b), 3) for b in bias], "single_seed": meta0}
    if after["tweeteval_macro_f1"] >= floor and after["score"] > meta0["val_bias_tuned"]["score"]:
        return merged, meta
    return head0, {**meta0, "ensemble_tried": meta}


def train_sentiment(data_dir: str | Path, out_dir: str | Path, *, repeats: tuple[int, ...] = REPEATS, seed: int = 0,
                    progress: bool = True, command: str | None = None, mode: str = "finetune",
                    pools: list[str] | None = None, ensemble: int = 1,
                    tweeteval_subset: int | None = None) -> dict[str, Any]:
    """Fit one head per ``repeats`` value, choose on val, write ``text_sentiment.safetensors`` and record the run in
    ``text_meta.json`` (``heads.sentiment``, ``sentiment_tweets``) of ``out_dir`` (a complete pack). ``pools``: the
    pooled views the new head reads (retrain mode; default ``PACK_POOLS``). ``ensemble`` > 1 (retrain mode): that
    many seeds of the chosen configuration merged into one head, kept when better on val. ``tweeteval_subset``: train
    on a seeded random subset of TweetEval train (enough for ``top`` mode's output layer; ``encode_texts`` encodes
    it as ``tweeteval-sentiment:train@N``)."""
    torch.set_num_threads(1)
    t0 = time.time()
    out = Path(out_dir)
    current, current_meta = load_head(out / SENTIMENT_HEAD)
    reference = val_score(current, load_features(data_dir, progress, tweeteval_train=False,
                                                 pools=current_meta.get("pools", PACK_POOLS)))
    if mode != "retrain":
        pools = None
    feats = load_features(data_dir, progress, tweeteval_train=mode in ("retrain", "top"), pools=pools,
                          tweeteval_subset=tweeteval_subset)
    floor = reference["tweeteval_macro_f1"] - TWEETEVAL_SLACK
    if mode == "retrain":
        runs = [fit(feats, r, seed=seed, progress=progress) for r in repeats]
    elif mode == "top":
        runs = [fit_top(feats, current, r, seed=seed, progress=progress) for r in repeats]
    else:
        runs = [finetune(feats, current, floor, lr=lr, seed=seed, progress=progress) for lr in FINETUNE_LRS]
    ok = [k for k, (_, m) in enumerate(runs) if m["val_bias_tuned"]["tweeteval_macro_f1"] >= floor]
    k = max(ok or range(len(runs)), key=lambda i: runs[i][1]["val_bias_tuned"]["score"])
    head, chosen = runs[k]
    if mode == "retrain" and ensemble > 1:
        head, chosen = _ensemble(feats, runs[k], ensemble, floor, seed=seed, progress=progress)
    data = ("tweeteval sentiment train; then fine-tuned on mvsa_single train text_label" if mode == "finetune" else
            f"tweeteval sentiment train{f' (random {tweeteval_subset})' if tweeteval_subset else ''} + mvsa_single "
            f"train text_label x{chosen['mvsa_repeat']}"
            + ("; output layer only, over the previous head's hidden layer" if mode == "top" else ""))
    new_pools = list(pools or current_meta.get("pools", PACK_POOLS))
    save_head(out / SENTIMENT_HEAD, head, {**current_meta, "data": data, "pools": new_pools})
    meta_path = out / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["heads"]["sentiment"].update({"epochs": chosen["epochs"], "bias_adjust": chosen["bias_adjust"],
                                       "pools": new_pools, "in_dim": head.in_dim, "hidden": head.hidden,
                                       "val_macro_f1_bias_tuned": round(chosen["val_bias_tuned"]
                                                                        ["tweeteval_macro_f1"], 4)})
    meta["data"]["sentiment"] = (f"{data}; chosen on tweeteval val macro-F1 + mvsa_single val text_label accuracy "
                                 f"(modelling.training.text_tweets, mode {mode})")
    meta["sentiment_tweets"] = {"chosen": chosen, "runs": [m for _, m in runs], "previous_head_val": reference,
                                "rule": f"best mean val score with tweeteval val macro-F1 >= previous - "
                                        f"{TWEETEVAL_SLACK}", "seed": seed, "seconds": round(time.time() - t0, 1),
                                "command": command}
    meta.pop("calibration", None)  # the new head needs its own temperature (modelling.training.calibrate)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    _relist(out)
    return meta["sentiment_tweets"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="a complete pack directory (its sentiment head is replaced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=["finetune", "retrain", "top"], default="finetune",
                   help="finetune: the pack head on MVSA train (grid FINETUNE_LRS); retrain: TweetEval train + "
                        "--repeats x MVSA train from scratch (needs the TweetEval train embeddings, ~30 min here); "
                        "top: the same data, only the MLP's output layer retrained (minutes)")
    p.add_argument("--repeats", type=int, nargs="+", default=list(REPEATS))
    p.add_argument("--pools", nargs="+", help=f"retrain mode: the pooled views the head reads (default: {PACK_POOLS})")
    p.add_argument("--tweeteval-subset", type=int, help="a seeded random subset of TweetEval train (top mode)")
    p.add_argument("--ensemble", type=int, default=1, help="retrain mode: seeds merged into one head (kept if "
                   "better on val)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cmd = "python -m modelling.training.text_tweets " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    r = train_sentiment(a.data, a.out, repeats=tuple(a.repeats), seed=a.seed, progress=not a.quiet, command=cmd,
                        mode=a.mode, pools=a.pools, ensemble=a.ensemble, tweeteval_subset=a.tweeteval_subset)
    print(json.dumps({"previous_head_val": r["previous_head_val"], "runs": r["runs"]}, indent=1))


def _relist(pack_dir: Path) -> None:
    """Re-list the pack's files in its manifest (the pack version hashes them), when it has one."""
    from serving.pack import MANIFEST, write_manifest

    if (pack_dir / MANIFEST).is_file():
        write_manifest(pack_dir)


if __name__ == "__main__":
    main()
