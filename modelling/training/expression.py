"""Choose the served face-expression settings on FER-2013 val (PublicTest) and write the pack's ``expression.json``.

For every member net (the mini-Xception; the FerCNN when its weights are in the pack) and every TTA view of
``serving.expression.TTA_VIEWS``, the view's probabilities on val and test are computed once through
``ExpressionNet`` itself (the served code path; cached under ``.cache/expression``). A setting is then only numpy:
mean over its views, weighted sum over its members, then per-class logit offsets and a temperature. Chosen on val:
the view set (``VIEW_SETS``, best val accuracy), the ensemble weight (0.05 grid), the offsets (coordinate ascent on
val accuracy) and the temperature (val NLL, ``serving.calibration.fit_temperature``). Test is only reported.

Run: ``python -m modelling.training.expression --data ../shared/data --pack serving/pack``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelling.training.data import read_fer
from serving.calibration import apply_temperature, calibration_summary, fit_temperature
from serving.expression import CONFIG, TTA_VIEWS, ExpressionNet, MemberSpec, _load_member
from serving.fer_net import FER_INPUT, normalise_faces

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "expression"
VIEW_SETS: dict[str, tuple[str, ...]] = {
    "flip": ("id", "flip"),
    "flip+shift4": ("id", "flip", "l", "r", "u", "d"),
    "flip+shift4+mirrored": tuple(TTA_VIEWS),
}
OFFSET_GRID = np.round(np.arange(-1.0, 1.0001, 0.05), 2)
MINI_XCEPTION = {"file": "fer_mini_xception.safetensors", "size": FER_INPUT, "crop": 1.0}
FER_CNN = {"file": "fer_cnn.safetensors", "size": 40, "crop": 0.9}


def _faces64(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 48, 48) FER faces → the served input (N, 1, 64, 64) (bilinear upscale, as ``fer_probs``)."""
    return torch.nn.functional.interpolate(normalise_faces(images), size=(FER_INPUT, FER_INPUT), mode="bilinear",
                                           align_corners=False)


@torch.inference_mode()
def view_probs(pack: Path, member: dict[str, Any], images: np.ndarray, *, batch: int = 512) -> dict[str, np.ndarray]:
    """{view: (N, 7) probabilities} of one member net over FER faces, each view through ``ExpressionNet``
    (cached by the weights' bytes, the member spec and the images)."""
    path = pack / member["file"]
    h = hashlib.sha256(path.read_bytes() if path.is_file() else b"h5")
    h.update(json.dumps(member, sort_keys=True).encode() + images.tobytes())
    cache = CACHE_DIR / f"{h.hexdigest()[:20]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    net = _load_member(pack, member["file"])
    spec = MemberSpec(member["size"], member["crop"])
    x = _faces64(images)
    out = {}
    for view in TTA_VIEWS:
        model = ExpressionNet([net], [spec], (view,)).eval()
        out[view] = np.concatenate([model(x[i:i + batch]).exp().numpy() for i in range(0, len(x), batch)])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def combine(members: list[dict[str, np.ndarray]], weights: list[float], views: tuple[str, ...]) -> np.ndarray:
    """Weighted sum over members of the mean over ``views`` (what ``ExpressionNet.forward`` exponentiates)."""
    total = sum(weights)
    return sum(w / total * np.mean([m[v] for v in views], axis=0) for m, w in zip(members, weights, strict=True))


def accuracy(probs: np.ndarray, y: np.ndarray, offsets: np.ndarray | None = None) -> float:
    z = np.log(np.clip(probs, 1e-12, 1.0)) + (0.0 if offsets is None else offsets)
    return float((z.argmax(1) == y).mean())


def tune_offsets(probs: np.ndarray, y: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Per-class logit offsets maximising accuracy: coordinate ascent over ``OFFSET_GRID`` (ties → the smaller
    offset), class 0 fixed at 0 (offsets are shift-invariant)."""
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    off = np.zeros(probs.shape[1])
    best = float((logp.argmax(1) == y).mean())
    for _ in range(rounds):
        changed = False
        for c in range(1, probs.shape[1]):
            for v in sorted(OFFSET_GRID, key=abs):
                trial = off.copy()
                trial[c] = v
                acc = float(((logp + trial).argmax(1) == y).mean())
                if acc > best + 1e-12:
                    best, off, changed = acc, trial, True
        if not changed:
            break
    return off


def evaluate(probs: np.ndarray, y: np.ndarray, offsets: np.ndarray, temperature: float) -> dict[str, Any]:
    """Accuracy and calibration of a setting's final probabilities."""
    from modelling.metrics import classification_metrics
    from moodstream import labels

    z = np.log(np.clip(probs, 1e-12, 1.0)) + offsets
    p = np.exp(z - z.max(1, keepdims=True))
    p = apply_temperature(p / p.sum(1, keepdims=True), temperature)
    m = classification_metrics(y, p.argmax(1), labels.EMOTIONS)
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
            "ece": calibration_summary(p, y)["ece"], "n": len(y)}


def _setting(members: list[dict[str, Any]], weights: list[float], views: tuple[str, ...], probs_val: np.ndarray,
             yv: np.ndarray, tune: bool) -> dict[str, Any]:
    offsets = tune_offsets(probs_val, yv) if tune else np.zeros(probs_val.shape[1])
    z = np.log(np.clip(probs_val, 1e-12, 1.0)) + offsets
    p = np.exp(z - z.max(1, keepdims=True))
    t = fit_temperature(p / p.sum(1, keepdims=True), yv)
    return {"members": [{**m, "weight": round(w, 4)} for m, w in zip(members, weights, strict=True)],
            "views": list(views), "offsets": [round(float(o), 4) for o in offsets], "temperature": t}


def choose(data_dir: str | Path, pack_dir: str | Path, *, limit: int | None = None) -> dict[str, Any]:
    """Build the settings on val, score them on val and test, write ``expression.json``; returns it."""
    pack = Path(pack_dir)
    xv, yv = read_fer("val", data_dir)
    xt, yt = read_fer("test", data_dir)
    if limit:
        xv, yv, xt, yt = xv[:limit], yv[:limit], xt[:limit], yt[:limit]
    specs = [MINI_XCEPTION] + ([FER_CNN] if (pack / FER_CNN["file"]).is_file() else [])
    val = [view_probs(pack, m, xv) for m in specs]
    test = [view_probs(pack, m, xt) for m in specs]
    log: dict[str, Any] = {"view_sets": {}}
    for k, m in enumerate(specs):
        for name, views in VIEW_SETS.items():
            log["view_sets"][f"{m['file']}:{name}"] = {"val": accuracy(combine([val[k]], [1.0], views), yv),
                                                       "test": accuracy(combine([test[k]], [1.0], views), yt)}
    best_views = max(VIEW_SETS.values(), key=lambda v: (accuracy(combine(val, [1.0] * len(val), v), yv), -len(v)))
    settings: dict[str, Any] = {
        "mini_xception": _setting([specs[0]], [1.0], VIEW_SETS["flip"], combine(val[:1], [1.0], VIEW_SETS["flip"]),
                                  yv, tune=False),
        "mini_xception_tta": _setting([specs[0]], [1.0], best_views, combine(val[:1], [1.0], best_views), yv, True),
    }
    if len(specs) == 2:
        grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
        accs = {float(w): accuracy(combine(val, [1 - w, w], best_views), yv) for w in grid}
        log["cnn_weight_val_accuracy"] = accs
        w = max(accs, key=lambda k: (accs[k], -abs(k - 0.5)))
        settings["fer_cnn_tta"] = _setting([specs[1]], [1.0], best_views, combine(val[1:], [1.0], best_views), yv,
                                           True)
        settings["ensemble"] = _setting(specs, [1 - w, w], best_views, combine(val, [1 - w, w], best_views), yv, True)
    scores = {}
    for name, s in settings.items():
        idx = [specs.index({k: v for k, v in m.items() if k != "weight"}) for m in s["members"]]
        weights = [m["weight"] for m in s["members"]]
        views = tuple(s["views"])
        off = np.asarray(s["offsets"])
        scores[name] = {
            "val": evaluate(combine([val[i] for i in idx], weights, views), yv, off, s["temperature"]),
            "test": evaluate(combine([test[i] for i in idx], weights, views), yt, off, s["temperature"]),
            "val_no_offsets": accuracy(combine([val[i] for i in idx], weights, views), yv),
            "test_no_offsets": accuracy(combine([test[i] for i in idx], weights, views), yt),
        }
        s["val"], s["test"] = scores[name]["val"], scores[name]["test"]
    default = max(settings, key=lambda n: scores[n]["val"]["accuracy"])
    config = {"default": default, "chosen_on": "fer2013 val (PublicTest) accuracy; test (PrivateTest) only reported",
              "settings": settings, "search": log, "limit": limit,
              "command": f"python -m modelling.training.expression --data {data_dir} --pack {pack_dir}"}
    (pack / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def faces_per_second(pack_dir: str | Path, name: str, batch: int, seconds: float = 3.0) -> float:
    """Faces/s of one setting as served (``torch_opt.for_inference`` module, softmax), on random faces."""
    import time

    from serving.expression import load_expression
    from serving.torch_opt import for_inference

    net, _, _ = load_expression(pack_dir, name)
    fast = for_inference(net, torch.zeros(2, 1, FER_INPUT, FER_INPUT))
    x = torch.rand(batch, 1, FER_INPUT, FER_INPUT) * 2 - 1
    with torch.inference_mode():
        fast(x).softmax(1)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fast(x).softmax(1)
            n += batch
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--pack", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--bench", action="store_true", help="only measure each setting's faces/s (batch 1 and 8)")
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("MOODSTREAM_TORCH_THREADS", "1")))
    if a.bench:
        from serving.expression import read_config

        for name in read_config(a.pack)["settings"]:
            rates = [faces_per_second(a.pack, name, b) for b in (1, 8)]
            print(f"{name:18s} faces/s batch 1: {rates[0]:7.1f}  batch 8: {rates[1]:7.1f}")
        return
    if not a.data:
        p.error("--data is required")
    config = choose(a.data, a.pack, limit=a.limit)
    for name, s in config["settings"].items():
        star = " (default)" if name == config["default"] else ""
        print(f"{name:18s} views={len(s['views']):2d}  val acc {s['val']['accuracy']:.4f} ECE {s['val']['ece']:.4f}"
              f"  | test acc {s['test']['accuracy']:.4f} ECE {s['test']['ece']:.4f}{star}")


if __name__ == "__main__":
    main()
