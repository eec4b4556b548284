"""Train the fusion strategies on MVSA-Single (fused ``label``): fit on train, tune and pick the default on val.

The per-item text and image model outputs of each MVSA split are computed once with the pack's TextModel and
VisionModel and cached under ``.cache/fusion/`` (keyed by the pack's text/vision weights and the split's rows).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from serving.calibration import fit_temperature
from serving.fusion import (
    CONFIG_FILE,
    N_SENT,
    NETWORK_STRATEGIES,
    STRATEGIES,
    Averaged,
    FusionModel,
    build_network,
    late_probs,
    run_network,
    weights_file,
)

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "fusion"
ARCH: dict[str, dict[str, Any]] = {
    "stacked": {"hidden": 32, "dropout": 0.1},
    "concat": {"hidden": 128, "dropout": 0.5, "probs": True},
    "attention": {"d": 64, "layers": 1, "heads": 4, "dropout": 0.2},
}
# ``--structure rule``: MVSA's labelling rule as the output structure, per strategy the variant best on val
# weighted-F1 (MODEL_CARD.md): ``factored`` (text- and image-label outputs fused by the rule) or ``joint`` (the
# (text_label, image_label) pair, fused by the rule); ``stacked`` kept plain (its plain net was best on val).
STRUCTURES: dict[str, dict[str, dict[str, Any]]] = {
    "plain": {},
    "rule": {"concat": {"factored": True}, "attention": {"joint": True}},
}
TRAIN: dict[str, dict[str, Any]] = {
    "stacked": {"epochs": 150, "lr": 3e-3, "weight_decay": 1e-4, "batch": 128},
    "concat": {"epochs": 60, "lr": 1e-3, "weight_decay": 1e-2, "batch": 64},
    "attention": {"epochs": 60, "lr": 1e-3, "weight_decay": 1e-2, "batch": 64},
}
MEMBERS = 3  # seeds per network strategy, averaged
AUX_WEIGHT = 0.5  # factored nets: weight of the text_label / image_label cross-entropies
MODALITY_DROPOUT = 0.15  # per item and epoch: drop text or image (never both) so the nets learn the mask
IMAGE_HEAD = "vision_sentiment.safetensors"  # the pack's image-sentiment head (trained on MVSA train image_label)
LATE_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
# Per epoch, the share of train captions paired with an uninformative image / another item's image (issue #14;
# modelling.training.augment). Chosen on val (MODEL_CARD.md).
AUG_UNINFORMATIVE = 0.5
AUG_MISMATCHED = 0.5
AUG_CONFLICTS = "drop"  # a positive/negative mismatched pair: dropped, or ("text") target the caption's label
IGNORE = -100


# --------------------------------------------------------------------------------------------------
# Per-item features of an MVSA split
# --------------------------------------------------------------------------------------------------


# Pack files the fusion inputs depend on, by the part of the name before the first "_" or ".": the text and vision
# heads (and the text heads' n-gram blends), the face-expression nets and their settings (``expression.json``).
MODALITY_FILES = {"text", "vision", "fer", "face", "faces", "expression"}


def _modality_hash(pack_dir: Path) -> str:
    """Hash of the text and vision weight files of a pack (what the cached features depend on)."""
    h = hashlib.sha256()
    for p in sorted(pack_dir.iterdir()):
        if p.is_file() and p.name.split("_")[0].split(".")[0] in MODALITY_FILES:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _rows_hash(rows: list[dict[str, str]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r['id']}\t{r['text']}\t{r['label']}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def compute_features(split: str, data_dir: str | Path, rows: list[dict[str, str]], text_model, vision_model, *,
                     limit: int | None, progress: bool = True) -> dict[str, np.ndarray]:
    """Text and image model outputs of MVSA rows: arrays tp/tq/te, ip/iq/ie, faces, mask.

    Only what sentiment fusion consumes is computed exactly as the models do at serving time: text embeddings
    (cached by the text engineer's ``cached_embed``) through the pack's text heads, and MobileNetV2 features (the
    vision training cache) through the pack's image-sentiment head, L2-normalised like ``VisionModel.predict``.
    Face detection is skipped (it does not enter sentiment fusion and costs ~50 ms/image): ``faces`` is 0 and
    ``iq`` the vision model's no-face emotion.
    """
    from modelling.training.embed_cache import cached_embed
    from modelling.training.vision import mvsa_features as vision_features
    from serving.vision_model import no_face_emotion

    texts = [r["text"] for r in rows]
    rep = cached_embed(text_model.encoder, texts, tag=f"mvsa-{split}", progress=progress, pools=text_model.pools)
    tp, tq = text_model.heads(rep, texts)
    te = np.ascontiguousarray(rep[:, : text_model.dim])
    if getattr(vision_model, "runtime", "torch") == "torch":
        raw, _ = vision_features(data_dir, split, limit=limit, progress=progress)
    else:  # another runtime's backbone (ONNX, int8): its own features, not the torch feature cache
        raw = runtime_features(data_dir, split, rows, vision_model)
    ip = vision_model.sentiment_head.predict_proba(raw)
    ie = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    mask = np.stack([[1.0 if t.strip() else 0.0 for t in texts], np.ones(len(rows))], 1)
    return {"tp": tp.astype(np.float32), "tq": tq.astype(np.float32), "te": te.astype(np.float32),
            "ip": ip.astype(np.float32), "iq": no_face_emotion(ip).astype(np.float32), "ie": ie.astype(np.float32),
            "faces": np.zeros(len(rows), np.int64), "mask": mask.astype(np.float32)}


def runtime_features(data_dir: str | Path, split: str, rows: list[dict[str, str]], vision_model) -> np.ndarray:
    """Raw backbone features of MVSA rows from ``vision_model.features`` (decoded as the vision training cache
    decodes them), for a model whose backbone runs on another runtime than torch."""
    from modelling.training.data import read_mvsa
    from serving.image_decode import decode_image

    data = read_mvsa(split, data_dir)
    out = [vision_model.features([decode_image(data.image_bytes(r["id"])) for r in rows[i:i + 32]])
           for i in range(0, len(rows), 32)]
    data.close()
    return np.concatenate(out).astype(np.float32)


class ModelCache:
    """Lazily loaded TextModel/VisionModel of one pack (loaded only on a feature-cache miss)."""

    def __init__(self, pack_dir: Path, runtime: str = "torch", onnx_cache: Path | None = None) -> None:
        self.pack_dir, self.runtime, self.onnx_cache = pack_dir, runtime, onnx_cache
        self._text = self._vision = None

    @property
    def text(self):
        if self._text is None:
            from serving.text_model import TextModel

            self._text = TextModel.load(pack_dir=self.pack_dir, runtime=self.runtime, onnx_cache=self.onnx_cache)
        return self._text

    @property
    def vision(self):
        if self._vision is None:
            from serving.vision_model import VisionModel

            self._vision = VisionModel.load(pack_dir=self.pack_dir, runtime=self.runtime,
                                            onnx_cache=self.onnx_cache)
        return self._vision


def mvsa_features(split: str, data_dir: str | Path, pack_dir: Path | None = None, *, limit: int | None = None,
                  progress: bool = True, models: ModelCache | None = None) -> dict[str, Any]:
    """Cached per-item model outputs of an MVSA split (+ ``y`` fused, ``y_text``, ``y_image``, ``texts``, ``ids``).
    ``models`` on another runtime than torch (``ModelCache.runtime``) are cached apart."""
    from modelling.training.data import read_mvsa
    from serving.pack import load_pack

    pack_dir = load_pack(pack_dir).dir
    data = read_mvsa(split, data_dir)
    rows = data.rows[:limit] if limit else data.rows
    runtime = models.runtime if models is not None else "torch"
    path = CACHE_DIR / (f"mvsa-{split}-{len(rows)}-{_rows_hash(rows)}-{_modality_hash(pack_dir)}"
                        + ("" if runtime == "torch" else f"-{runtime}") + ".npz")
    if path.exists():
        with np.load(path) as z:
            feats = {k: z[k] for k in z.files}
    else:
        models = models or ModelCache(pack_dir)
        feats = compute_features(split, data_dir, rows, models.text, models.vision, limit=limit, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **feats)
        tmp.replace(path)
    data.close()
    from moodstream.labels import SENTIMENT_INDEX

    feats["y"] = np.asarray([SENTIMENT_INDEX[r["label"]] for r in rows], np.int64)
    feats["y_text"] = np.asarray([SENTIMENT_INDEX[r["text_label"]] for r in rows], np.int64)
    feats["y_image"] = np.asarray([SENTIMENT_INDEX[r["image_label"]] for r in rows], np.int64)
    feats["texts"] = [r["text"] for r in rows]
    feats["ids"] = [r["id"] for r in rows]
    return feats


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """accuracy, macro-F1, weighted-F1 over the three sentiment classes."""
    labels = list(range(N_SENT))
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
            "weighted_f1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0))}


def _key(s: dict[str, float]) -> tuple[float, float]:
    """Model selection on val: weighted-F1, then accuracy."""
    return (round(s["weighted_f1"], 6), round(s["accuracy"], 6))


def tune_late(val: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """The text weight of late fusion that maximises val weighted-F1 (ties: closest to 0.5)."""
    best = None
    for w in sorted(LATE_GRID, key=lambda v: abs(v - 0.5)):
        s = scores(val["y"], late_probs(val["tp"], val["ip"], val["mask"], float(w)).argmax(1))
        if best is None or _key(s) > _key(best[1]):
            best = (float(w), s)
    assert best is not None
    return best


def _tensors(feats: dict[str, Any]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(feats[k])) for k in ("tp", "ip", "te", "ie", "mask")]


def _loss(net: torch.nn.Module, args: list[torch.Tensor], y: torch.Tensor, y_text: torch.Tensor,
          y_image: torch.Tensor, aux: float) -> torch.Tensor:
    """Cross-entropy of the fused output on ``y``; a factored net adds ``aux`` × the cross-entropies of its text and
    image outputs on ``text_label`` / ``image_label`` (over the items where that modality is present); a joint net
    adds ``aux`` × the negative log-likelihood of the (text_label, image_label) pair (items with both)."""
    fused, zt, zi = net.parts(*args)
    loss = torch.nn.functional.cross_entropy(fused, y)
    mask = args[-1]
    if getattr(net, "joint", False) and aux > 0:  # zt: log P(text_label, image_label) of the 9 pairs
        both = (mask[:, 0] > 0) & (mask[:, 1] > 0)
        if both.any():
            pair = torch.where(y_image >= 0, N_SENT * y_text + y_image, torch.full_like(y_image, IGNORE))
            if (pair[both] >= 0).any():
                loss = loss + aux * torch.nn.functional.nll_loss(zt[both], pair[both])
        return loss
    if zt is None or zi is None or aux <= 0:
        return loss
    for z, target, col in ((zt, y_text, 0), (zi, y_image, 1)):
        present = (mask[:, col] > 0) & (target >= 0)
        if present.any():
            loss = loss + aux * torch.nn.functional.cross_entropy(z[present], target[present])
    return loss


def train_network(strategy: str, train: dict[str, Any], val: dict[str, Any], *, seed: int,
                  progress: bool = False, augmenter: Any = None, arch: dict[str, Any] | None = None,
                  aux: float = AUX_WEIGHT) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train one network on train (modality dropout; plus, per epoch, ``augmenter.sample`` rows:
    ``modelling.training.augment``), keep the epoch that is best on val. A factored net (``arch["factored"]``) is
    also trained on ``text_label``/``image_label`` (weight ``aux``), and a row whose image (text) is dropped gets
    the text (image) label as its fused target, as a one-modality post is served."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    hp = TRAIN[strategy]
    arch = ARCH[strategy] if arch is None else arch
    net = build_network(strategy, arch)
    factored = bool(arch.get("factored") or arch.get("joint"))
    tp, ip, te, ie, mask = _tensors(train)
    for norm, x, col in (("norm_t", te, 0), ("norm_i", ie, 1)):
        if hasattr(net, norm):
            present = mask[:, col] > 0
            getattr(net, norm).fit(x[present] if present.any() else x)
    y, y_text, y_image = (torch.from_numpy(train[k]) for k in ("y", "y_text", "y_image"))
    opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    both_val = val["mask"].sum(1) == 2
    best: tuple[tuple[float, float], dict[str, Any], int, dict[str, float]] | None = None
    epochs = range(hp["epochs"])
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"fusion {strategy}", unit="epoch")
    for epoch in epochs:
        net.train()
        order = rng.permutation(len(y))
        drop = rng.random(len(y)) < MODALITY_DROPOUT
        which = rng.integers(0, 2, len(y))
        m = mask.clone()
        full = (m.sum(1) == 2).numpy()
        e_y = y.clone()
        for k in np.flatnonzero(drop & full):
            m[k, which[k]] = 0.0
            if factored:  # served as a one-modality post: the remaining modality's own label
                e_y[k] = y_image[k] if which[k] == 0 else y_text[k]
        e_tp, e_ip, e_te, e_ie, e_m, e_yt, e_yi = tp, ip, te, ie, m, y_text, y_image
        if augmenter is not None:
            extra = augmenter.sample(rng)
            e_tp, e_ip, e_te, e_ie, e_m = (torch.cat([a, torch.from_numpy(extra[k])])
                                           for a, k in ((tp, "tp"), (ip, "ip"), (te, "te"), (ie, "ie"), (m, "mask")))
            e_y, e_yt, e_yi = (torch.cat([a, torch.from_numpy(extra[k])])
                               for a, k in ((e_y, "y"), (y_text, "y_text"), (y_image, "y_image")))
            order = rng.permutation(len(e_y))
        for s in range(0, len(e_y), hp["batch"]):
            idx = torch.from_numpy(order[s : s + hp["batch"]])
            loss = _loss(net, [e_tp[idx], e_ip[idx], e_te[idx], e_ie[idx], e_m[idx]], e_y[idx], e_yt[idx],
                         e_yi[idx], aux)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        rows = np.flatnonzero(both_val)
        s_val = scores(val["y"][rows], run_network(net, val, rows).argmax(1))
        if best is None or _key(s_val) > best[0]:
            best = (_key(s_val), copy.deepcopy(net.state_dict()), epoch + 1, s_val)
    assert best is not None
    net.load_state_dict(best[1])
    return net.eval(), {"arch": arch, "train": {**hp, "best_epoch": best[2]}, "val": best[3]}


def prepare_out_dir(out_dir: Path, source: Path) -> None:
    """Make ``out_dir`` a complete pack: copy every non-fusion file of ``source`` that it lacks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if out_dir.resolve() == source.resolve():
        return
    for p in source.iterdir():
        if p.is_file() and not p.name.startswith(("fusion", "manifest")) and not (out_dir / p.name).exists():
            shutil.copy2(p, out_dir / p.name)


OOF_FOLDS = 5


def _fit_image_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, config: dict[str, Any],
                    seed: int, epochs: int = 30) -> tuple[Any, np.ndarray, np.ndarray]:
    """A ``Head`` like the pack's image-sentiment head (same config), fit on standardised (x, y), epoch picked on
    val; returns (head, mean, std) of the standardisation."""
    from serving.heads import Head

    torch.manual_seed(seed)
    head = Head(**config)
    counts = np.bincount(y, minlength=N_SENT).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** 0.5, 0.0)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, xv = (x - mu) / sd, (xv - mu) / sd
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    best = (-1.0, copy.deepcopy(head.state_dict()))
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(xt), generator=g).split(64):
            opt.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            opt.step()
        f1 = scores(yv, head.predict_proba(xv).argmax(1))["macro_f1"]
        if f1 > best[0]:
            best = (f1, copy.deepcopy(head.state_dict()))
    head.load_state_dict(best[1])
    return head.eval(), mu, sd


def out_of_fold_image_probs(train: dict[str, Any], val: dict[str, Any], head_path: Path, *, seed: int,
                            folds: int = OOF_FOLDS) -> np.ndarray:
    """Image-sentiment probabilities of MVSA train items from heads that did not see them (k-fold).

    The pack's image head was trained on MVSA train ``image_label``, so its outputs on train items are
    over-confident; fusion learned on them would over-trust the image. Each fold's head has the pack head's
    config, is fit on the other folds' embeddings (``image_label``), and its epoch is picked on MVSA val.
    """
    from serving.heads import read_head_meta

    config, _ = read_head_meta(head_path)
    out = train["ip"].copy()
    present = np.flatnonzero(train["mask"][:, 1] > 0)
    vrows = np.flatnonzero(val["mask"][:, 1] > 0)
    if len(present) < 2 * folds:
        return out
    order = np.random.default_rng(seed).permutation(present)
    for k, held in enumerate(np.array_split(order, folds)):
        fit = np.setdiff1d(present, held)
        head, mu, sd = _fit_image_head(train["ie"][fit], train["y_image"][fit], val["ie"][vrows], val["y_image"][vrows],
                               config, seed + k)
        out[held] = head.predict_proba((train["ie"][held] - mu) / sd)
    return out


def _val_choice(config: dict[str, Any], networks: dict[str, torch.nn.Module], val: dict[str, Any],
                vision_model: Any) -> tuple[str, dict[str, Any]]:
    """The default strategy on val: best weighted-F1 among those meeting every robustness target on val (flip rates
    ≤ 0.10, subsets ≥ 0.78...); if none does, among those meeting the caption-row targets (flip rate, balanced
    accuracy, label mix of the blank-image and unrelated-photo rows); else overall. Returns (strategy, val
    robustness per strategy)."""
    from modelling.robustness import evaluate_robustness

    model = FusionModel(config, networks, strategy="late")
    rob = evaluate_robustness(val, model, vision_model, tuple(STRATEGIES))["by_strategy"]
    ok = [s for s in STRATEGIES if all(rob[s]["targets"].values())]
    ok = ok or [s for s in STRATEGIES if all(v for k, v in rob[s]["targets"].items() if k.startswith("caption_"))]
    return max(ok or STRATEGIES, key=lambda s: _key(config[s]["val"])), rob


def uncertain_flag(probs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The ``uncertain`` threshold chosen on val fused probabilities of the default strategy (``fusion.json`` →
    ``flags``; ``DEFAULT_UNCERTAIN_BELOW`` in ``moodstream/config.py`` must carry the same value)."""
    from moodstream.config import DEFAULT_CONFLICT_MIN_CONFIDENCE
    from serving.flags import MAX_FLAGGED_SHARE, MIN_ERROR_RATIO, choose_uncertain_threshold, error_rates

    t = choose_uncertain_threshold(probs, y)
    r = error_rates(probs, y, t)
    return {"uncertain_below": t, "conflict_min_confidence": DEFAULT_CONFLICT_MIN_CONFIDENCE,
            "rule": "serving.flags.choose_uncertain_threshold on MVSA val fused probabilities "
                    f"of the default strategy: largest threshold flagging <= {MAX_FLAGGED_SHARE:.0%} of posts whose "
                    f"flagged posts are wrong >= {MIN_ERROR_RATIO:g}x as often as the rest",
            "val": {k: r[k] for k in ("n_flagged", "n", "error_rate_flagged", "error_rate_rest")}}


def train_fusion(data_dir: str | Path, out_dir: str | Path, *, seed: int = 0, limit: int | None = None,
                 progress: bool = True, uninformative: float = AUG_UNINFORMATIVE,
                 mismatched: float = AUG_MISMATCHED, conflicts: str = AUG_CONFLICTS,
                 structure: str = "plain") -> dict[str, Any]:
    """Train every strategy on MVSA train, tune on val, write ``fusion*`` files and the manifest into ``out_dir``.

    ``structure``: ``STRUCTURES`` key (``plain`` fused logits, or ``rule``: MVSA's labelling rule as the output
    structure); ``conflicts``: what a positive/negative mismatched augmentation pair becomes (``drop`` / ``text``).

    The text/vision models used for features come from ``out_dir`` when it already is a pack with them, else from
    the packaged pack (whose files are then copied in, so ``out_dir`` is a complete pack). Returns the config.
    """
    from safetensors.torch import save_file

    from serving.pack import DEFAULT_PACK_DIR, write_manifest

    if structure not in STRUCTURES:
        raise ValueError(f"unknown structure {structure!r}; one of {', '.join(STRUCTURES)}")
    torch.set_num_threads(1)  # the nets are tiny; on a shared 2-core box 2 threads were 12× slower per step
    out_dir = Path(out_dir)
    has_models = out_dir.is_dir() and (out_dir / "manifest.json").is_file() and any(
        p.name.startswith("text_") for p in out_dir.iterdir())
    source = out_dir if has_models else DEFAULT_PACK_DIR
    prepare_out_dir(out_dir, source)
    write_manifest(out_dir)  # (re)list the files actually present
    models = ModelCache(out_dir)
    train = mvsa_features("train", data_dir, out_dir, limit=limit, progress=progress, models=models)
    val = mvsa_features("val", data_dir, out_dir, limit=limit, progress=progress, models=models)

    image_head = out_dir / IMAGE_HEAD
    oof = image_head.is_file() and limit is None
    if oof:
        from serving.calibration import apply_temperature
        from serving.vision_model import read_calibration

        # the OOF heads are calibrated like the pack's image head (its val temperature)
        t_img = float(read_calibration(out_dir).get("sentiment", 1.0))
        train["ip"] = apply_temperature(out_of_fold_image_probs(train, val, image_head, seed=seed), t_img)
    augmenter = None
    if uninformative > 0 or mismatched > 0:
        from modelling.training.augment import Augmenter, training_images

        augmenter = Augmenter(train, training_images(models.vision), uninformative=uninformative,
                              mismatched=mismatched, conflicts=conflicts)
    w_text, late_val = tune_late(val)
    both_val = np.flatnonzero(val["mask"].sum(1) == 2)
    config: dict[str, Any] = {"late": {"w_text": w_text, "val": late_val}, "seed": seed,
                              "single_modality": "fallback", "modality_dropout": MODALITY_DROPOUT,
                              "structure": structure,
                              "augmentation": augmenter.config() if augmenter is not None else None,
                              "train_image_probs": f"out-of-fold ({OOF_FOLDS} folds)" if oof else "pack image head",
                              "trained_on": {"train": len(train["y"]), "val": len(val["y"]), "limit": limit}}
    config["late"]["temperature"] = fit_temperature(late_probs(val["tp"], val["ip"], val["mask"], w_text)[both_val],
                                                    val["y"][both_val])
    networks: dict[str, torch.nn.Module] = {}
    arch = {s: {**ARCH[s], **STRUCTURES[structure].get(s, {})} for s in NETWORK_STRATEGIES}
    for strategy in NETWORK_STRATEGIES:
        fits = [train_network(strategy, train, val, seed=seed + 1000 * k, progress=progress, augmenter=augmenter,
                              arch=arch[strategy]) for k in range(MEMBERS)]
        net = Averaged([f[0] for f in fits]).eval()
        networks[strategy] = net
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out_dir / weights_file(strategy)))
        p_val = run_network(net, val, both_val)
        config[strategy] = {"arch": arch[strategy], "members": MEMBERS,
                            "train": {**TRAIN[strategy], "aux_weight": AUX_WEIGHT,
                                      "best_epochs": [f[1]["train"]["best_epoch"] for f in fits]},
                            "member_val": [f[1]["val"] for f in fits],
                            "val": scores(val["y"][both_val], p_val.argmax(1)),
                            "temperature": fit_temperature(p_val, val["y"][both_val])}
    config["default"], rob = _val_choice(config, networks, val, models.vision)
    config["flags"] = uncertain_flag(FusionModel(config, networks).sentiment(val), val["y"])
    for s in STRATEGIES:
        config[s]["val_robustness"] = {k: {m: v[m] for m in ("accuracy", "balanced_accuracy", "flip_rate")
                                           if m in v} for k, v in rob[s]["rows"].items()}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_manifest(out_dir, fusion={"default": config["default"],
                                    "val": {s: config[s]["val"] for s in STRATEGIES}})
    return config
