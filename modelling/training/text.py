"""Training of the text model: sentiment head (TweetEval sentiment) and emotion head (GoEmotions Ekman, plus
TweetEval emotion mapped through ``labels.py``), on a frozen encoder or with a LoRA adapter on the encoder.

Run: ``python -m modelling.training.text --data ../shared/data --out serving/pack --seed 0 --mode frozen``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from modelling.metrics import macro_f1
from modelling.training.data import TextSet, read_goemotions, read_tweeteval_emotion, read_tweeteval_sentiment
from modelling.training.embed_cache import cached_embed
from moodstream import labels
from serving.encoders import DEFAULT_TEXT_ENCODER, EMBEDDING_POOL, TextEncoder
from serving.heads import Head, save_head
from serving.text_features import extra_features
from serving.text_model import EMOTION_HEAD, LORA_CONFIG, LORA_WEIGHTS, META, SENTIMENT_HEAD

Mode = Literal["frozen", "lora"]
LORA_TARGETS = ["query", "key", "value", "dense"]

# The committed pack's frozen-mode configuration, chosen on val (MODEL_CARD.md, text_meta.json "attempts"):
# ``moodstream train text`` and ``train_text`` with no overrides train exactly this.
PACK_POOLS = ["mean", "mean@4", "mean@2", "max"]  # last-layer mean (the embedding), layer-4 and -2 means, max
PACK_FEATURES = {"sentiment": ["vader"], "emotion": ["vader"]}
PACK_HEADS: dict[str, dict[str, Any]] = {
    "sentiment": {"hidden": 256, "epochs": 60, "lr": 1e-3, "weight_power": 0.5, "dropout": 0.5,
                  "weight_decay": 1e-2},
    "emotion": {"hidden": None, "epochs": 40, "lr": 3e-3, "weight_power": 0.5, "dropout": 0.0,
                "weight_decay": 1e-4},
}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(y: np.ndarray, n_classes: int, power: float = 0.5) -> torch.Tensor:
    """Inverse-frequency weights to the ``power`` (0.5: square-root balancing), mean 1 over present classes."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


def tune_bias(probs: np.ndarray, y: np.ndarray, rounds: int = 3, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-class log-prob offsets maximising macro-F1 on (probs, y) by coordinate search; zeros when no gain."""
    grid = np.linspace(-1.5, 1.5, 31) if grid is None else grid
    logp = np.log(np.clip(probs, 1e-9, 1.0))
    present = np.unique(y)
    bias = np.zeros(probs.shape[1])
    best = macro_f1(y, logp.argmax(1))
    for _ in range(rounds):
        improved = False
        for c in present:
            for g in grid:
                trial = bias.copy()
                trial[c] = g
                score = macro_f1(y, (logp + trial).argmax(1))
                if score > best + 1e-6:
                    best, bias, improved = score, trial, True
        if not improved:
            break
    return bias


@dataclass
class HeadFit:
    head: Head
    val_macro_f1: float
    val_macro_f1_tuned: float
    epochs: int


def fit_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, n_classes: int, *, seed: int,
             hidden: int | None = 256, epochs: int = 40, lr: float = 1e-3, batch_size: int = 256,
             weight_power: float = 0.5, max_steps: int | None = None, progress: bool = True, desc: str = "head",
             val_classes: list[int] | None = None, dropout: float | None = None, weight_decay: float = 1e-4,
             tune: bool = True) -> HeadFit:
    """Train a ``Head`` on fixed features; keep the epoch best on val macro-F1, then (``tune``) fit its
    ``bias_adjust`` on val. ``dropout`` defaults to 0.2 for an MLP head and 0 for a linear one."""
    seed_everything(seed)
    dropout = (0.2 if hidden else 0.0) if dropout is None else dropout
    head = Head(x.shape[1], n_classes, hidden=hidden, dropout=dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(y, n_classes, weight_power))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    best_state, best_f1, best_epoch, steps = copy.deepcopy(head.state_dict()), -1.0, 0, 0
    bar = _bar(range(epochs), progress, desc)
    for epoch in bar:
        head.train()
        for idx in torch.randperm(len(xt), generator=g).split(batch_size):
            opt.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            opt.step()
            steps += 1
            if max_steps and steps >= max_steps:
                break
        f1 = _val_f1(head, xv, yv, val_classes)
        if f1 > best_f1:
            best_state, best_f1, best_epoch = copy.deepcopy(head.state_dict()), f1, epoch + 1
        if progress:
            bar.set_postfix(val_macro_f1=f"{f1:.4f}", best=f"{best_f1:.4f}")
        if max_steps and steps >= max_steps:
            break
    head.load_state_dict(best_state)
    return _finish(head, xv, yv, best_f1, best_epoch, val_classes, tune)


def _val_f1(head: Head, xv: np.ndarray, yv: np.ndarray, classes: list[int] | None) -> float:
    p = head.predict_proba(xv)
    if classes is not None:
        mask = np.full(p.shape[1], -np.inf)
        mask[classes] = 0
        p = np.exp(np.log(np.clip(p, 1e-9, 1)) + mask)
    return macro_f1(yv, p.argmax(1))


def _finish(head: Head, xv: np.ndarray, yv: np.ndarray, f1: float, epochs: int, classes: list[int] | None,
            tune: bool = True) -> HeadFit:
    """Set ``bias_adjust``: tuned on val when ``tune`` and every class is scored (``classes`` None), else zeros."""
    head.bias_adjust.zero_()
    bias = tune_bias(head.predict_proba(xv), yv) if tune and classes is None else np.zeros(head.out_dim)
    head.bias_adjust.copy_(torch.tensor(bias, dtype=torch.float32))
    return HeadFit(head.eval(), f1, _val_f1(head, xv, yv, classes), epochs)


def _bar(it, progress: bool, desc: str):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)


def load_training_sets(data_dir: str | Path, limit: int | None = None, tweeteval_emotion: bool = True,
                       train_subset: int | None = None, seed: int = 0) -> dict[str, TextSet]:
    """``sentiment``/``sentiment_val`` (TweetEval) and ``emotion``/``emotion_val`` (GoEmotions Ekman train
    [+ TweetEval emotion train, mapped] / GoEmotions val). ``train_subset``: a seeded random subset of that many
    rows of the TweetEval sentiment and GoEmotions train sets; ``limit`` keeps the first rows of every set."""
    parts = [read_goemotions("train", data_dir).sample(train_subset, seed).head(limit)]
    if tweeteval_emotion:
        parts.append(read_tweeteval_emotion("train", data_dir).head(limit))
    emo = TextSet([t for p in parts for t in p.texts], np.concatenate([p.labels for p in parts]), labels.EMOTIONS)
    return {
        "sentiment": read_tweeteval_sentiment("train", data_dir).sample(train_subset, seed).head(limit),
        "sentiment_val": read_tweeteval_sentiment("val", data_dir).head(limit),
        "emotion": emo,
        "emotion_parts": parts,  # type: ignore[dict-item]
        "emotion_val": read_goemotions("val", data_dir).head(limit),
    }


def train_text(data_dir: str | Path, out_dir: str | Path, *, seed: int = 0, max_steps: int | None = None,
               mode: Mode = "frozen", limit: int | None = None, progress: bool = True,
               encoder: str | None = None, hidden: int | None = 256,
               lora_steps: int = 600, lora_batch: int = 32, lora_r: int = 8, max_tokens: int = 64,
               tweeteval_emotion: bool = True, train_subset: int | None = None,
               features: dict[str, list[str]] | None = None, head_config: dict[str, dict[str, Any]] | None = None,
               pools: list[str] | None = None, command: str | None = None) -> dict[str, Any]:
    """Train the text heads (and, with ``mode="lora"``, a LoRA adapter) and write them to ``out_dir``.

    Writes ``text_sentiment.safetensors``, ``text_emotion.safetensors``, ``text_meta.json`` (and
    ``text_lora_adapter.safetensors`` + ``text_lora_config.json`` in lora mode). Returns the meta dict, whose
    ``val`` holds val macro-F1 before/after the per-class bias tuning. ``max_steps`` caps optimiser steps (of
    each head in frozen mode; of the joint run in lora mode); ``limit`` keeps the first rows of every split;
    ``train_subset`` trains on a seeded random subset of the two large train sets (CPU budget).

    Frozen mode, defaults = the committed pack (``PACK_*``): ``pools``, the encoder's pooled views both heads read
    (``serving.encoders``; ``["mean"]`` is the embedding alone); ``features``, per head, names of
    ``serving.text_features`` appended to them (e.g. ``vader``; a head not named gets none); ``head_config``, per
    head, overrides of ``PACK_HEADS`` (``hidden``/``epochs``/``lr``/``weight_power``/``dropout``/``weight_decay``).
    ``hidden`` is the LoRA mode's head size.
    """
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    seed_everything(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    sets = load_training_sets(data_dir, limit, tweeteval_emotion, train_subset, seed)
    feats = {"sentiment": [], "emotion": [], **(PACK_FEATURES if features is None else features)}
    pools = list(pools or PACK_POOLS)
    if mode == "frozen":
        enc = TextEncoder.load(encoder, max_tokens=128)
        enc.check_pools(pools)
        cfgs = {t: {**PACK_HEADS[t], **(head_config or {}).get(t, {})} for t in ("sentiment", "emotion")}
        fits = _train_frozen(enc, sets, seed=seed, max_steps=max_steps, progress=progress, cache=limit is None,
                             features=feats, configs=cfgs, pools=pools)
        lora_meta = None
        fits_config = cfgs
    elif mode == "lora":
        feats = {"sentiment": [], "emotion": []}
        pools = [EMBEDDING_POOL]
        enc = TextEncoder.load(encoder, max_tokens=max_tokens)
        fits, lora_meta = _train_lora(enc, sets, out, seed=seed, hidden=hidden, steps=max_steps or lora_steps,
                                      batch=lora_batch, r=lora_r, progress=progress)
        fits_config = {}
    else:
        raise ValueError(f"mode must be 'frozen' or 'lora', got {mode!r}")
    sizes = {k: len(v) for k, v in sets.items() if k != "emotion_parts"}
    meta: dict[str, Any] = {
        "encoder": encoder or DEFAULT_TEXT_ENCODER,
        "mode": mode, "seed": seed, "limit": limit, "max_steps": max_steps, "train_subset": train_subset,
        "max_tokens_train": enc.max_tokens, "embedding": "mean-pooled last hidden state, L2-normalised",
        "pools": pools,
        "text_normalisation": "serving.encoders.normalize_text (\\uXXXX escapes and HTML entities decoded)",
        "data": {
            "sentiment": "tweeteval/sentiment train (reconstructed, see data README), tuned on val",
            "emotion": "goemotions Ekman train (first non-neutral label of multi-label rows)"
                       + (" + tweeteval/emotion train (optimism→joy)" if tweeteval_emotion else "")
                       + ", tuned on goemotions val",
            "sizes": sizes,
        },
        "heads": {t: {**_fit_meta(fits[t]), "pools": pools, "features": feats[t],
                      "train_config": fits_config.get(t)} for t in ("sentiment", "emotion")},
        "lora": lora_meta,
        "train_seconds": round(time.time() - t0, 1),
        "command": command,
    }
    label_meta = {"sentiment": list(labels.SENTIMENTS), "emotion": list(labels.EMOTIONS)}
    for task, fname in (("sentiment", SENTIMENT_HEAD), ("emotion", EMOTION_HEAD)):
        save_head(out / fname, fits[task].head,
                  {"labels": label_meta[task], "mode": mode, "pools": pools, "features": feats[task]})
    if mode == "frozen":
        for stale in (LORA_WEIGHTS, LORA_CONFIG):
            (out / stale).unlink(missing_ok=True)
    (out / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _fit_meta(fit: HeadFit) -> dict[str, Any]:
    return {"in_dim": fit.head.in_dim, "hidden": fit.head.hidden, "out_dim": fit.head.out_dim,
            "epochs": fit.epochs, "val_macro_f1": round(fit.val_macro_f1, 4),
            "val_macro_f1_bias_tuned": round(fit.val_macro_f1_tuned, 4),
            "bias_adjust": [round(float(b), 3) for b in fit.head.bias_adjust]}


def _train_frozen(enc: TextEncoder, sets: dict[str, TextSet], *, seed: int, max_steps: int | None, progress: bool,
                  cache: bool, features: dict[str, list[str]], configs: dict[str, dict[str, Any]],
                  pools: list[str] | None = None) -> dict[str, HeadFit]:
    pools = list(pools or [EMBEDDING_POOL])

    def emb(key: str, tag: str) -> np.ndarray:
        if key == "emotion":  # embed each source dataset on its own, so their cached embeddings are reused
            return np.concatenate([embed(p.texts, f"{tag}{i}") for i, p in enumerate(sets["emotion_parts"])])
        return embed(sets[key].texts, tag)

    def embed(texts: list[str], tag: str) -> np.ndarray:
        if cache:
            return cached_embed(enc, texts, tag, progress, pools=pools)
        return enc.encode(texts, pools, progress=progress)

    fits = {}
    for task, n in (("sentiment", len(labels.SENTIMENTS)), ("emotion", len(labels.EMOTIONS))):
        x, xv = emb(task, f"train-{task}"), emb(f"{task}_val", f"val-{task}")
        if features[task]:
            x = np.hstack([x, extra_features(features[task], sets[task].texts)])
            xv = np.hstack([xv, extra_features(features[task], sets[f"{task}_val"].texts)])
        fits[task] = fit_head(x, sets[task].labels, xv, sets[f"{task}_val"].labels, n, seed=seed,
                              max_steps=max_steps, progress=progress, desc=f"{task} head", **configs[task])
    return fits


def _train_lora(enc: TextEncoder, sets: dict[str, TextSet], out: Path, *, seed: int, hidden: int | None,
                steps: int, batch: int, r: int, progress: bool) -> tuple[dict[str, HeadFit], dict[str, Any]]:
    """Multi-task LoRA fine-tuning of the encoder's top half: each step one sentiment and one emotion batch."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file

    n_layers = int(enc.model.config.num_hidden_layers)
    top = list(range(n_layers // 2, n_layers))  # adapt the top half only: backward stops there (CPU budget)
    cfg = {"r": r, "lora_alpha": 2 * r, "lora_dropout": 0.1, "target_modules": LORA_TARGETS, "bias": "none",
           "layers_to_transform": top, "layers_pattern": "layer"}
    model = get_peft_model(enc.model, LoraConfig(**cfg))
    enc.model = model
    heads = {"sentiment": Head(enc.dim, len(labels.SENTIMENTS), hidden=hidden, dropout=0.1),
             "emotion": Head(enc.dim, len(labels.EMOTIONS), hidden=hidden, dropout=0.1)}
    losses = {t: nn.CrossEntropyLoss(weight=class_weights(sets[t].labels, h.out_dim)) for t, h in heads.items()}
    lora_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": lora_params, "lr": 1e-3},
                             {"params": [p for h in heads.values() for p in h.parameters()], "lr": 2e-3}],
                            weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
                                              * max(0.0, (steps - s) / steps))
    rng = np.random.default_rng(seed)
    streams = {t: _index_stream(len(sets[t]), batch, rng) for t in heads}
    model.train()
    for h in heads.values():
        h.train()
    bar = _bar(range(steps), progress, "lora")
    for _ in bar:
        opt.zero_grad()
        total = 0.0
        for task, head in heads.items():
            idx = next(streams[task])
            x = enc.forward(enc.tokenize([sets[task].texts[i] for i in idx]))
            loss = losses[task](head(x), torch.from_numpy(sets[task].labels[idx]).to(x.device))
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
        opt.step()
        sched.step()
        if progress:
            bar.set_postfix(loss=f"{total:.3f}")
    model.eval()
    state = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, str(out / LORA_WEIGHTS))
    (out / LORA_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    fits = {}
    for task, head in heads.items():
        val = sets[f"{task}_val"]
        xv = enc.embed(val.texts, progress=progress)
        head.eval()
        fits[task] = _finish(head, xv, val.labels, _val_f1(head, xv, val.labels, None), 0, None)
    n_params = sum(p.numel() for p in lora_params)
    return fits, {**cfg, "steps": steps, "batch_per_task": batch, "trainable_params": n_params,
                  "max_tokens": enc.max_tokens}


def _index_stream(n: int, batch: int, rng: np.random.Generator):
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1 if n >= batch else 1, batch):
            yield order[i : i + batch]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """CLI: train the text model into ``--out``."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=["frozen", "lora"], default="frozen")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--limit", type=int)
    p.add_argument("--encoder")
    p.add_argument("--hidden", type=int, help="both heads (and LoRA's); 0 → linear; default: PACK_HEADS / 256")
    p.add_argument("--epochs", type=int, help="both heads; default: PACK_HEADS")
    p.add_argument("--lora-steps", type=int, default=600)
    p.add_argument("--lora-batch", type=int, default=32)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--no-tweeteval-emotion", action="store_true")
    p.add_argument("--train-subset", type=int, help="seeded random subset of each large train set")
    p.add_argument("--sentiment-features", nargs="*", help="e.g. vader (default: PACK_FEATURES)")
    p.add_argument("--emotion-features", nargs="*", help="e.g. vader (default: PACK_FEATURES)")
    for task in ("sentiment", "emotion"):
        p.add_argument(f"--{task}-hidden", type=int, help="per-head override; 0 → linear")
        p.add_argument(f"--{task}-epochs", type=int)
        p.add_argument(f"--{task}-lr", type=float)
        p.add_argument(f"--{task}-weight-power", type=float, help="class-weight power (0: none, 1: balanced)")
        p.add_argument(f"--{task}-dropout", type=float)
        p.add_argument(f"--{task}-weight-decay", type=float)
    p.add_argument("--pools", nargs="+", help=f"pooled encoder views the heads read (default: {PACK_POOLS})")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    head_config: dict[str, dict[str, Any]] = {}
    for task in ("sentiment", "emotion"):
        given = {"hidden": a.hidden, "epochs": a.epochs}
        given.update({k: getattr(a, f"{task}_{k}")
                      for k in ("hidden", "epochs", "lr", "weight_power", "dropout", "weight_decay")
                      if getattr(a, f"{task}_{k}") is not None})
        cfg = {k: v for k, v in given.items() if v is not None}
        if "hidden" in cfg:
            cfg["hidden"] = cfg["hidden"] or None
        head_config[task] = cfg
    cmd = "python -m modelling.training.text " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    meta = train_text(a.data, a.out, seed=a.seed, max_steps=a.max_steps, mode=a.mode, limit=a.limit,
                      progress=not a.quiet, encoder=a.encoder, hidden=256 if a.hidden is None else a.hidden or None,
                      lora_steps=a.lora_steps, lora_batch=a.lora_batch, lora_r=a.lora_r,
                      tweeteval_emotion=not a.no_tweeteval_emotion, train_subset=a.train_subset,
                      features={t: PACK_FEATURES[t] if f is None else f
                                for t, f in (("sentiment", a.sentiment_features), ("emotion", a.emotion_features))},
                      head_config=head_config, pools=a.pools, command=cmd)
    print(json.dumps(meta["heads"], indent=2))
    return meta


if __name__ == "__main__":
    main()
