"""Fine-tune MiniLM's top layer(s) and both text heads over cached lower-layer activations (issue #17).

The encoder's lower layers stay frozen; their output (the hidden states entering the top ``n_top`` layers) is cached
once per text by ``modelling.training.top_cache`` (fp16, ragged). One multi-task model is trained on it: the top
layer(s) (initialised from MiniLM), the sentiment head (TweetEval sentiment train + MVSA-Single train captions with
``text_label``, the MVSA rows repeated ``mvsa_repeat`` times) and the emotion head (GoEmotions Ekman train, first
non-neutral label, + TweetEval emotion train, optimism → joy), each step one sentiment and one emotion batch,
loss ``CE_sent + emo_weight · CE_emo`` (square-root class weights). With ``sent_distill`` = d > 0 the TweetEval
rows' sentiment loss becomes ``(1 − d) · CE + d · KL(teacher ‖ student)``, the teacher being the starting pack's
own top layer and sentiment head (its logits computed once, before training): the fine-tune is anchored to what the
pack already reads well on TweetEval while it learns MVSA captions and emotions. Both heads keep the pack's input
contract: the pooled views ``mean``, ``mean@4``, ``mean@2``, ``max`` (``mean``/``max`` of the fine-tuned top layer)
+ VADER, so one encoder pass serves both and the per-post cost is unchanged. Heads start from the pack's.

Choices on val only: the epoch (best mean of TweetEval sentiment val macro-F1, MVSA val ``text_label`` accuracy
and GoEmotions val macro-F1), then per-class logit offsets per head (sentiment: the mean of the first two; emotion:
GoEmotions val macro-F1), with the layer weights rounded to fp16 as stored. A checkpoint per epoch (``--resume``).

Run: ``python -m modelling.training.top_cache --data ../shared/data --out runs/top_cache`` then
``python -m modelling.training.text_top --data ../shared/data --cache runs/top_cache --pack serving/pack
--out runs/top``; ``--write-pack DIR`` puts the chosen layers and heads into a copy of the pack.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelling.metrics import macro_f1
from modelling.training.data import read_mvsa, read_text_dataset
from modelling.training.text import class_weights, seed_everything
from modelling.training.top_cache import SplitCache
from moodstream import labels
from serving.encoders import extended_mask
from serving.heads import Head, load_head, save_head
from serving.text_features import extra_features
from serving.text_model import EMOTION_HEAD, META, SENTIMENT_HEAD
from serving.top_layers import apply_top_layers, encoder_layers, save_top_layers

TWEETEVAL_EMOTION_CLASSES = [labels.EMOTION_INDEX[c] for c in ("anger", "joy", "sadness")]
DEFAULTS: dict[str, Any] = {"epochs": 4, "lr": 5e-5, "head_lr": 1e-3, "weight_decay": 0.01, "batch": 32,
                            "mvsa_repeat": 2, "emo_weight": 1.0, "warmup": 0.05, "n_top": 1,
                            "sent_distill": 0.0}


@dataclass
class Part:
    """One dataset split: its activation cache, VADER features and labels (``SENTIMENTS``/``EMOTIONS`` indices)."""

    cache: SplitCache
    vader: np.ndarray
    y: np.ndarray


def load_part(cache_dir: Path, data_dir: Path, dataset: str, split: str) -> Part:
    """The cached split ``dataset_split`` with its labels (MVSA: ``text_label``) and VADER features; ``train@N``:
    the seeded subset of N rows that ``top_cache`` cached (``TextSet.sample(N, 0)``)."""
    cache = SplitCache(cache_dir / f"{dataset}_{split}")
    split, _, n = split.partition("@")
    if dataset == "mvsa":
        d = read_mvsa(split, data_dir)
        texts, y = [r["text"] for r in d.rows], d.labels("text_label")
        d.close()
    else:
        ds = read_text_dataset(dataset, split, data_dir).sample(int(n) if n else None, 0)
        texts, y = ds.texts, ds.labels
    limit = cache.meta.get("limit")
    texts, y = (texts[:limit], y[:limit]) if limit else (texts, y)
    if len(texts) != len(cache):
        raise ValueError(f"{dataset} {split}: {len(texts)} texts, cache has {len(cache)}")
    vpath = cache.path / "vader.npy"
    if vpath.is_file():
        vader = np.load(vpath)
    else:
        vader = extra_features(["vader"], texts)
        np.save(vpath, vader)
    return Part(cache, vader, np.asarray(y, dtype=np.int64))


class TopTuner(nn.Module):
    """The top ``n_top`` encoder layers + the sentiment and emotion heads over the pack's views + VADER."""

    def __init__(self, encoder_model: nn.Module, sentiment: Head, emotion: Head, n_top: int = 1) -> None:
        super().__init__()
        layers = encoder_layers(encoder_model)
        self.first = len(layers) - n_top
        self.layers = nn.ModuleList(copy.deepcopy(layers[self.first:])).float()
        self.sentiment, self.emotion = sentiment, emotion

    def top(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden state (B, T, d) from the hidden states entering the top layers."""
        ext = extended_mask(mask, h.dtype)
        for layer in self.layers:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        return h

    def features(self, h: torch.Tensor, mask: torch.Tensor, views: torch.Tensor, vader: torch.Tensor) -> torch.Tensor:
        """Head input: [mean, mean@4, mean@2, max] (each L2-normalised) + VADER."""
        last = self.top(h, mask)
        m = mask.unsqueeze(-1)
        mean = (last * m).sum(1) / m.sum(1).clamp(min=1e-9)
        mx = last.masked_fill(m == 0, torch.finfo(last.dtype).min).amax(1)
        norm = nn.functional.normalize
        return torch.cat([norm(mean, dim=-1), views, norm(mx, dim=-1), vader], dim=-1)

    def layer_state(self) -> dict[int, nn.Module]:
        """``{encoder layer index: module}`` of the trained layers."""
        return {self.first + k: layer for k, layer in enumerate(self.layers)}


def _inputs(part: Part, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    h, mask = part.cache.batch(idx)
    return (h.to(device), mask.to(device), torch.from_numpy(part.cache.views[idx]).to(device),
            torch.from_numpy(part.vader[idx]).to(device))


@torch.inference_mode()
def head_input(model: TopTuner, part: Part, device: torch.device, batch: int = 256) -> np.ndarray:
    """The heads' input features of every text of ``part`` (length-sorted batches), in order."""
    model.eval()
    order = np.argsort(part.cache.lengths, kind="stable")
    out = None
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        f = model.features(*_inputs(part, idx, device)).float().cpu().numpy()
        out = np.zeros((len(order), f.shape[1]), np.float32) if out is None else out
        out[idx] = f
    return out


def _logp(head: Head, x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    head.bias_adjust.zero_()
    return np.log(np.clip(head.predict_proba(x), 1e-9, 1.0)) + (0 if bias is None else bias)


def scores(sent: np.ndarray | None, mvsa: np.ndarray | None, go: np.ndarray | None, te: np.ndarray | None,
           parts: dict[str, Part]) -> dict[str, float]:
    """Scores from log-probs: TweetEval sentiment macro-F1, MVSA ``text_label`` accuracy, GoEmotions macro-F1,
    TweetEval emotion macro-F1 (anger/joy/sadness read-out, as ``moodstream eval``); keys for the given ones."""
    out = {}
    if sent is not None:
        out["tweeteval_sentiment_macro_f1"] = macro_f1(parts["sent"].y, sent.argmax(1))
    if mvsa is not None:
        out["mvsa_text_accuracy"] = float((mvsa.argmax(1) == parts["mvsa"].y).mean())
    if go is not None:
        out["goemotions_macro_f1"] = macro_f1(parts["go"].y, go.argmax(1))
    if te is not None:
        cls = np.asarray(TWEETEVAL_EMOTION_CLASSES)
        out["tweeteval_emotion_macro_f1"] = macro_f1(parts["te"].y, cls[te[:, cls].argmax(1)])
    return {k: round(v, 4) for k, v in out.items()}


def features(model: TopTuner, parts: dict[str, Part], device: torch.device) -> dict[str, np.ndarray]:
    """``head_input`` of every part."""
    return {k: head_input(model, p, device) for k, p in parts.items()}


def evaluate(model: TopTuner, parts: dict[str, Part], device: torch.device,
             bias: dict[str, np.ndarray] | None = None, x: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Every score on ``parts`` (keys ``sent``, ``mvsa``, ``go``, ``te``) and the selection ``score`` (mean of
    TweetEval sentiment, MVSA text and GoEmotions); ``x``: their ``features`` when already computed."""
    b = bias or {}
    x = x or features(model, parts, device)
    s = scores(_logp(model.sentiment, x["sent"], b.get("sentiment")),
               _logp(model.sentiment, x["mvsa"], b.get("sentiment")),
               _logp(model.emotion, x["go"], b.get("emotion")), _logp(model.emotion, x["te"], b.get("emotion")),
               parts)
    s["score"] = round((s["tweeteval_sentiment_macro_f1"] + s["mvsa_text_accuracy"] + s["goemotions_macro_f1"]) / 3, 4)
    return s


def tune_offsets(model: TopTuner, val: dict[str, Part], device: torch.device, rounds: int = 3,
                 te_slack: float = 0.005, x: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-class log-prob offsets on val: sentiment by the mean of TweetEval macro-F1 and MVSA text accuracy,
    emotion by GoEmotions macro-F1 while TweetEval emotion val macro-F1 stays within ``te_slack`` of its value
    without offsets (coordinate search over −1.5…1.5, step 0.1)."""
    x = x or features(model, val, device)
    lp = {k: _logp(model.sentiment if k in ("sent", "mvsa") else model.emotion, x[k]) for k in val}
    return offsets_for(lp, val, rounds, te_slack)


def offsets_for(lp: dict[str, np.ndarray], val: dict[str, Part], rounds: int = 3, te_slack: float = 0.005,
                tasks: tuple[str, ...] = ("sentiment", "emotion")) -> dict[str, np.ndarray]:
    """``tune_offsets`` from the val log-probs ``lp`` (keys ``sent``, ``mvsa`` for sentiment; ``go``, ``te`` for
    emotion), for the named ``tasks``."""
    grid = np.linspace(-1.5, 1.5, 31)

    def sent_score(b: np.ndarray) -> float:
        s = scores(lp["sent"] + b, lp["mvsa"] + b, None, None, val)
        return (s["tweeteval_sentiment_macro_f1"] + s["mvsa_text_accuracy"]) / 2

    te_floor = scores(None, None, None, lp["te"], val)["tweeteval_emotion_macro_f1"] - te_slack if "te" in lp else 0

    def emo_score(b: np.ndarray) -> float:
        s = scores(None, None, lp["go"] + b, lp["te"] + b, val)
        return s["goemotions_macro_f1"] if s["tweeteval_emotion_macro_f1"] >= te_floor else -1.0

    out = {}
    for name, fn, k in [t for t in (("sentiment", sent_score, len(labels.SENTIMENTS)),
                                    ("emotion", emo_score, len(labels.EMOTIONS))) if t[0] in tasks]:
        bias, best = np.zeros(k), fn(np.zeros(k))
        for _ in range(rounds):
            improved = False
            for c in range(k):
                for g in grid:
                    trial = bias.copy()
                    trial[c] = g
                    s = fn(trial)
                    if s > best + 1e-6:
                        best, bias, improved = s, trial, True
            if not improved:
                break
        out[name] = np.round(bias, 3)
    return out


def round_fp16(model: TopTuner) -> None:
    """Round the trained layers' weights to fp16 and back (as the pack stores them)."""
    with torch.no_grad():
        for p in model.layers.parameters():
            p.copy_(p.half().float())


def length_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Random batches of similar length (less padding): shuffle, sort each run of ``pool`` batches by length, cut,
    shuffle the batch order. Covers every row once."""
    perm = rng.permutation(len(lengths))
    out = []
    for s in range(0, len(perm), batch * pool):
        chunk = perm[s : s + batch * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i : i + batch] for i in range(0, len(chunk), batch)]
    return [out[i] for i in rng.permutation(len(out))]


def _bar(it, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, leave=False)


def train(cfg: dict[str, Any], train_parts: dict[str, Part], val: dict[str, Part], pack: Path, out: Path, *,
          seed: int = 0, device: str = "cpu", resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train one configuration; a checkpoint per epoch in ``out``; returns the history and the best epoch."""
    from serving.encoders import TextEncoder

    dev = torch.device(device)
    if resume and (out / "best.pt").is_file():  # finished: its result (epoch chosen, offsets) as recorded
        done = torch.load(out / "best.pt", weights_only=False)["result"]
        if done["config"] == cfg:
            return done
    seed_everything(seed)
    enc = TextEncoder.load(None)
    enc.model.float()
    apply_top_layers(enc, pack)  # a pack that already has fine-tuned top layers: continue from them
    sent_head, _ = load_head(pack / SENTIMENT_HEAD)
    emo_head, _ = load_head(pack / EMOTION_HEAD)
    model = TopTuner(enc.model, sent_head, emo_head, cfg["n_top"]).to(dev)
    del enc
    if train_parts["sent"].cache.meta["layer"] != model.first:
        raise ValueError(f"the cache holds the input of layer {train_parts['sent'].cache.meta['layer']}, "
                         f"n_top={cfg['n_top']} needs layer {model.first}")
    # the teacher is the model as loaded from the pack, before any checkpoint is restored below
    teacher = teacher_logits(model, train_parts["sent"], dev, progress) if cfg.get("sent_distill", 0.0) > 0 else None
    ys = np.concatenate([train_parts["sent"].y] + [train_parts["mvsa"].y] * cfg["mvsa_repeat"])
    src = np.concatenate([np.zeros(len(train_parts["sent"].y), np.int64)]
                         + [np.ones(len(train_parts["mvsa"].y), np.int64)] * cfg["mvsa_repeat"])
    pos = np.concatenate([np.arange(len(train_parts["sent"].y))]
                         + [np.arange(len(train_parts["mvsa"].y))] * cfg["mvsa_repeat"])
    ye = np.concatenate([train_parts["go"].y, train_parts["te"].y])
    esrc = np.concatenate([np.zeros(len(train_parts["go"].y), np.int64), np.ones(len(train_parts["te"].y), np.int64)])
    epos = np.concatenate([np.arange(len(train_parts["go"].y)), np.arange(len(train_parts["te"].y))])
    ce_s = nn.CrossEntropyLoss(weight=class_weights(ys, len(labels.SENTIMENTS)).to(dev))
    ce_e = nn.CrossEntropyLoss(weight=class_weights(ye, len(labels.EMOTIONS)).to(dev))
    opt = torch.optim.AdamW([
        {"params": model.layers.parameters(), "lr": cfg["lr"]},
        {"params": [*model.sentiment.parameters(), *model.emotion.parameters()], "lr": cfg["head_lr"]},
    ], weight_decay=cfg["weight_decay"])
    steps_per_epoch = -(-len(ys) // cfg["batch"])
    total = steps_per_epoch * cfg["epochs"]
    warm = max(1, int(cfg["warmup"] * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    history: list[dict[str, Any]] = []
    best_state, start = None, 0
    if resume and ckpt.is_file():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        history, best_state, start = st["history"], st["best"], st["epoch"]
    rng = np.random.default_rng([seed, 17])
    slen = np.concatenate([train_parts["sent"].cache.lengths]
                          + [train_parts["mvsa"].cache.lengths] * cfg["mvsa_repeat"])
    elen = np.concatenate([train_parts["go"].cache.lengths, train_parts["te"].cache.lengths])
    for _ in range(start):  # the batches the finished epochs drew
        length_batches(slen, cfg["batch"], rng), length_batches(elen, cfg["batch"], rng)
    parts_s, parts_e = (train_parts["sent"], train_parts["mvsa"]), (train_parts["go"], train_parts["te"])
    for epoch in range(start, cfg["epochs"]):
        model.train()
        sbatches, ebatches = length_batches(slen, cfg["batch"], rng), length_batches(elen, cfg["batch"], rng)
        t0 = time.time()
        for step in _bar(range(steps_per_epoch), progress, f"epoch {epoch + 1}/{cfg['epochs']}"):
            sl, el = sbatches[step], ebatches[step % len(ebatches)]
            loss = torch.zeros((), device=dev)
            for sel, (srcs, poss, yy), parts, head, ce, w in (
                    (sl, (src, pos, ys), parts_s, model.sentiment, ce_s, 1.0),
                    (el, (esrc, epos, ye), parts_e, model.emotion, ce_e, cfg["emo_weight"])):
                for k, part in enumerate(parts):
                    rows = sel[srcs[sel] == k]
                    if len(rows):
                        logits = head(model.features(*_inputs(part, poss[rows], dev)))
                        target = torch.from_numpy(yy[rows]).to(dev)
                        part_loss = ce(logits, target)
                        if teacher is not None and part is train_parts["sent"]:
                            d = cfg["sent_distill"]
                            part_loss = (1 - d) * part_loss + d * distill_loss(logits, teacher[poss[rows]].to(dev))
                        loss = loss + w * part_loss * len(rows) / len(sel)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        s = evaluate(model, val, dev)
        history.append({"epoch": epoch + 1, "val": s, "seconds": round(time.time() - t0, 1)})
        print(json.dumps({"config": cfg, **history[-1]}), flush=True)
        if best_state is None or s["score"] > max(h["val"]["score"] for h in history[:-1]):
            best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "history": history, "best": best_state, "epoch": epoch + 1}, ckpt)
    model.load_state_dict(best_state)
    round_fp16(model)
    best = max(history, key=lambda h: h["val"]["score"])
    x = features(model, val, dev)
    bias = tune_offsets(model, val, dev, x=x)
    result = {"config": cfg, "epoch": best["epoch"], "history": history,
              "val_fp16": evaluate(model, val, dev, x=x), "val_offsets": evaluate(model, val, dev, bias, x),
              "offsets": {k: v.tolist() for k, v in bias.items()}}
    torch.save({"model": model.state_dict(), "result": result}, out / "best.pt")
    return result


@torch.inference_mode()
def teacher_logits(model: TopTuner, part: Part, device: torch.device, progress: bool = True,
                   batch: int = 256) -> torch.Tensor:
    """The untrained model's sentiment logits (no offsets) for every text of ``part``: the distillation teacher."""
    model.eval()
    head = model.sentiment
    order = np.argsort(part.cache.lengths, kind="stable")
    out = torch.zeros(len(order), head.out_dim)
    for s in _bar(range(0, len(order), batch), progress, "teacher logits"):
        idx = order[s : s + batch]
        out[idx] = head.net(model.features(*_inputs(part, idx, device))).float().cpu()
    model.train()
    return out


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean KL(softmax(teacher) ‖ softmax(student)) over the batch."""
    return nn.functional.kl_div(torch.log_softmax(student, -1), torch.log_softmax(teacher, -1), log_target=True,
                                reduction="batchmean")


def baseline(pack: Path, parts: dict[str, Part], device: str = "cpu") -> dict[str, float]:
    """Scores of the pack as it is (its top layer, heads and offsets) on cached ``parts``: the reference."""
    model = restore(None, pack, {"n_top": 6 - parts["sent"].cache.meta["layer"]}, device)
    x = features(model, parts, torch.device(device))
    bias = {t: head.bias_adjust.cpu().numpy().copy() for t, head in (("sentiment", model.sentiment),
                                                                     ("emotion", model.emotion))}
    return evaluate(model, parts, torch.device(device), bias, x)


def write_pack(model: TopTuner, result: dict[str, Any], pack: Path, command: str) -> None:
    """Put the trained layers and heads (with the val offsets) into the pack directory ``pack`` (a copy)."""
    from serving.pack import MANIFEST, write_manifest

    save_top_layers(model.layer_state(), pack)
    meta_path = pack / META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    views = ["mean", "mean@4", "mean@2", "max"]
    for task, head, fname in (("sentiment", model.sentiment, SENTIMENT_HEAD), ("emotion", model.emotion, EMOTION_HEAD)):
        head.bias_adjust.copy_(torch.tensor(result["offsets"][task], dtype=torch.float32))
        save_head(pack / fname, head.cpu(), {"labels": list(labels.SENTIMENTS if task == "sentiment"
                                                              else labels.EMOTIONS),
                                             "mode": "top_layer", "pools": views, "features": ["vader"]})
        meta["heads"][task].update({"bias_adjust": result["offsets"][task], "epochs": result["epoch"],
                                    "train_config": {**result["config"], "trainer": "modelling.training.text_top"}})
    meta["mode"] = "top_layer"
    meta["top_layers"] = {"layers": sorted(model.layer_state()), "files": "text_top_layer_<i>.safetensors (fp16)",
                          "chosen": {k: result[k] for k in ("config", "epoch", "val_fp16", "val_offsets")},
                          "command": command}
    meta.pop("calibration", None)  # new heads: recalibrate (modelling.training.calibrate)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if (pack / MANIFEST).is_file():
        write_manifest(pack)


SPLITS = {"sent": "tweeteval-sentiment", "mvsa": "mvsa", "go": "goemotions", "te": "tweeteval-emotion"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--cache", type=Path, default=Path("runs/top_cache"))
    p.add_argument("--pack", type=Path, default=Path("serving/pack"), help="the heads start from this pack's")
    p.add_argument("--out", type=Path, default=Path("runs/top"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (on a shared 2-core machine 1 ran 4× faster than 2: no spin-waiting)")
    p.add_argument("--grid", type=json.loads, default=[{}],
                   help='JSON list of overrides of DEFAULTS, one run each (e.g. \'[{"lr": 3e-5}, {"lr": 1e-4}]\')')
    p.add_argument("--train-subset", nargs="*", default=[], metavar="DATASET=N",
                   help="train on the cached seeded subset train@N of these datasets (e.g. tweeteval-sentiment=10000)")
    p.add_argument("--test", action="store_true", help="also score each run's chosen model on the test splits")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--write-pack", type=Path, help="a copy of the pack: gets the best run's layers and heads")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    cmd = "python -m modelling.training.text_top " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    torch.set_num_threads(a.threads)
    subset = dict(x.split("=") for x in a.train_subset)
    tr = {k: load_part(a.cache, a.data, d, f"train@{subset[d]}" if d in subset else "train") for k, d in SPLITS.items()}
    val = {k: load_part(a.cache, a.data, d, "val") for k, d in SPLITS.items()}
    test = {k: load_part(a.cache, a.data, d, "test") for k, d in SPLITS.items()} if a.test else None
    ref = {"val": baseline(a.pack, val, a.device), **({"test": baseline(a.pack, test, a.device)} if test else {})}
    print(json.dumps({"pack as is": ref}), flush=True)
    runs = []
    for i, over in enumerate(a.grid):
        cfg = {**DEFAULTS, "n_top": 6 - tr["sent"].cache.meta["layer"], **over}
        r = train(cfg, tr, val, a.pack, a.out / f"run{i}", seed=a.seed, device=a.device, resume=a.resume,
                  progress=not a.quiet)
        if test is not None:
            model = restore(a.out / f"run{i}", a.pack, cfg, a.device)
            xt = features(model, test, torch.device(a.device))
            r["test_fp16"] = evaluate(model, test, torch.device(a.device), x=xt)
            r["test_offsets"] = evaluate(model, test, torch.device(a.device),
                                         {k: np.asarray(v) for k, v in r["offsets"].items()}, xt)
        runs.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "history"}), flush=True)
        k = max(range(len(runs)), key=lambda j: runs[j]["val_offsets"]["score"])
        _record(a.out, cmd, a, k, runs, ref)
    if a.write_pack:
        write_pack(restore(a.out / f"run{k}", a.pack, runs[k]["config"], "cpu"), runs[k], a.write_pack, cmd)


def _record(out: Path, cmd: str, a: argparse.Namespace, k: int, runs: list[dict[str, Any]],
            ref: dict[str, Any]) -> None:
    record = {"command": cmd, "seed": a.seed, "device": a.device, "rule": "epoch by val score, run by val score after "
              "offsets (score = mean of TweetEval sentiment macro-F1, MVSA text accuracy, GoEmotions macro-F1)",
              "pack_as_is": ref, "chosen": k, "runs": runs}
    (out / "record.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def restore(run_dir: Path | None, pack: Path, cfg: dict[str, Any], device: str) -> TopTuner:
    """The pack's top layer(s) and heads, with a run's trained weights (``run_dir/best.pt``) when given."""
    from serving.encoders import TextEncoder

    enc = TextEncoder.load(None)
    apply_top_layers(enc, pack)
    model = TopTuner(enc.model, load_head(pack / SENTIMENT_HEAD)[0], load_head(pack / EMOTION_HEAD)[0], cfg["n_top"])
    if run_dir is not None:
        model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=False)["model"])
    return model.to(device).eval()


if __name__ == "__main__":
    main()
