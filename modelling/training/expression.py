"""Choose the served face-expression settings on FER-2013 val (PublicTest) and write the pack's ``expression.json``.

For every member net (the mini-Xception; each FerCNN whose weights are in the pack) and every TTA view of
``serving.expression.TTA_VIEWS``, the view's probabilities on val and test are computed once through
``ExpressionNet`` itself (the served code path; cached under ``.cache/expression``). A setting is then only numpy:
mean over its views, weighted sum over its members, then per-class logit offsets and a temperature. Chosen on val:
each member's view set (``VIEW_SETS``, best val accuracy), the ensemble weights (0.05 grid over the simplex; a
member weighted 0 is left out), the offsets (coordinate ascent on val accuracy; kept only where 5-fold
cross-validation within val shows a held-out gain) and the temperature (val NLL,
``serving.calibration.fit_temperature``). Test is only reported.

Run: ``python -m modelling.training.expression --data ../shared/data --pack serving/pack``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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
VIEW_SETS: dict[str, tuple[str, ...]] = {  # candidate TTA view sets of a member
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
def view_probs(pack: Path, member: dict[str, Any], images: np.ndarray, views: tuple[str, ...] = tuple(TTA_VIEWS), *,
               batch: int = 512) -> dict[str, np.ndarray]:
    """{view: (N, 7) probabilities} of one member net over FER faces, each view through ``ExpressionNet`` as served
    (``torch_opt.for_inference``), cached by the weights' bytes, the member spec and the images (views already in
    the cache are not computed again)."""
    from serving.torch_opt import for_inference

    path = pack / member["file"]
    h = hashlib.sha256(path.read_bytes() if path.is_file() else b"h5")
    h.update(json.dumps({k: member[k] for k in ("file", "size", "crop")}, sort_keys=True).encode() + images.tobytes())
    cache = CACHE_DIR / f"{h.hexdigest()[:20]}.npz"
    out: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as z:
            out = {k: z[k] for k in z.files}
    missing = [v for v in views if v not in out]
    if missing:
        net = _load_member(pack, member["file"])
        spec = MemberSpec(member["size"], member["crop"])
        x = _faces64(images)
        for view in missing:
            model = for_inference(ExpressionNet([net], [spec], (view,)).eval(), x[:2])
            out[view] = np.concatenate([model(x[i:i + batch]).exp().numpy() for i in range(0, len(x), batch)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **out)
    return {v: out[v] for v in views}


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


def offsets_cv_gain(probs: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Held-out accuracy gain of tuned offsets, by ``folds``-fold cross-validation within val: tune on the other
    folds, score the held-out one with and without them (a gain ≤ 0: the offsets only fit val's noise)."""
    parts = np.array_split(np.random.default_rng(seed).permutation(len(y)), folds)
    gain = 0.0
    for k, held in enumerate(parts):
        fit = np.concatenate(parts[:k] + parts[k + 1:])
        off = tune_offsets(probs[fit], y[fit])
        gain += (accuracy(probs[held], y[held], off) - accuracy(probs[held], y[held])) * len(held)
    return gain / len(y)


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


def _setting(members: list[dict[str, Any]], weights: list[float], probs_val: np.ndarray, yv: np.ndarray,
             tune: bool) -> dict[str, Any]:
    gain = offsets_cv_gain(probs_val, yv) if tune else 0.0
    offsets = tune_offsets(probs_val, yv) if gain > 0 else np.zeros(probs_val.shape[1])
    z = np.log(np.clip(probs_val, 1e-12, 1.0)) + offsets
    p = np.exp(z - z.max(1, keepdims=True))
    t = fit_temperature(p / p.sum(1, keepdims=True), yv)
    views = members[0]["views"]
    return {"members": [{**m, "weight": round(w, 4)} for m, w in zip(members, weights, strict=True)],
            "views": views, "offsets": [round(float(o), 4) for o in offsets], "temperature": t,
            **({"offsets_cv_gain": round(gain, 4)} if tune else {})}


def _mix(probs: list[dict[str, np.ndarray]], members: list[dict[str, Any]], weights: list[float]) -> np.ndarray:
    """Each member's mean over its own views, weighted (what ``ExpressionNet.forward`` exponentiates)."""
    total = sum(weights)
    return sum(w / total * np.mean([p[v] for v in m["views"]], axis=0)
               for p, m, w in zip(probs, members, weights, strict=True))


def weight_grid(k: int, step: float = 0.05) -> list[tuple[float, ...]]:
    """All weight vectors of ``k`` members on the simplex with the given step (k = 2: (1, 0), (0.95, 0.05), …)."""
    n = round(1 / step)
    return [tuple(round(c * step, 4) for c in (*cut, n - sum(cut)))
            for cut in itertools.product(range(n + 1), repeat=k - 1) if sum(cut) <= n]


def best_weights(val: list[dict[str, np.ndarray]], members: list[dict[str, Any]], y: np.ndarray,
                 top: int = 10) -> tuple[list[float], dict[str, float]]:
    """The member weights best on val accuracy (ties → the most even weights) and the ``top`` scores (for the
    record), keyed by the weights joined with ``/``."""
    k = len(members)
    accs = {w: accuracy(_mix(val, members, list(w)), y) for w in weight_grid(k) if any(w)}
    best = max(accs, key=lambda w: (accs[w], -float(np.sum((np.asarray(w) - 1 / k) ** 2))))
    ranked = sorted(accs, key=lambda w: -accs[w])[:top]
    return list(best), {"/".join(f"{x:g}" for x in w): accs[w] for w in ranked}


def _cnn_spec(pack: Path, file: str) -> dict[str, Any]:
    """A FerCNN member: its input size from the weights' metadata, the central crop it was trained to see."""
    from safetensors import safe_open

    with safe_open(str(pack / file), framework="pt") as f:
        size = json.loads((f.metadata() or {})["fer_cnn"])["config"]["size"]
    return {**FER_CNN, "file": file, "size": int(size)}


def choose(data_dir: str | Path, pack_dir: str | Path, *, limit: int | None = None,
           cnn_view_sets: tuple[str, ...] = ("flip",), default: str | None = None,
           cnn_files: tuple[str, ...] = (FER_CNN["file"],)) -> dict[str, Any]:
    """Build the settings on val, score them on val and test, write ``expression.json``; returns it. The default
    setting is the best on val accuracy unless ``default`` names one (e.g. a cheaper one, for the cost per post).

    Per member, the view set best on val among its candidates (the mini-Xception: every ``VIEW_SETS`` entry; the
    costlier FerCNNs, ``cnn_files`` found in the pack: ``cnn_view_sets``); then the ensemble weights, the offsets and
    the temperature, all on val. ``fer_cnn`` is the first FerCNN alone; ``ensemble`` all members with their views,
    ``ensemble_lite`` all members on the face and its mirror only."""
    pack = Path(pack_dir)
    xv, yv = read_fer("val", data_dir)
    xt, yt = read_fer("test", data_dir)
    if limit:
        xv, yv, xt, yt = xv[:limit], yv[:limit], xt[:limit], yt[:limit]
    candidates = [(MINI_XCEPTION, tuple(VIEW_SETS))]
    candidates += [(_cnn_spec(pack, f), cnn_view_sets) for f in cnn_files if (pack / f).is_file()]
    log: dict[str, Any] = {"view_sets": {}}
    members, val, test = [], [], []
    for spec, sets in candidates:
        need = tuple(dict.fromkeys(v for name in sets for v in VIEW_SETS[name]))
        pv, pt = view_probs(pack, spec, xv, need), view_probs(pack, spec, xt, need)
        scores = {}
        for name in sets:
            views = VIEW_SETS[name]
            scores[name] = accuracy(combine([pv], [1.0], views), yv)
            log["view_sets"][f"{spec['file']}:{name}"] = {"val": scores[name],
                                                          "test": accuracy(combine([pt], [1.0], views), yt)}
        best = max(sets, key=lambda n: (scores[n], -len(VIEW_SETS[n])))
        members.append({**spec, "views": list(VIEW_SETS[best])})
        val.append(pv)
        test.append(pt)
    mx_flip = {**MINI_XCEPTION, "views": list(VIEW_SETS["flip"])}
    settings: dict[str, Any] = {
        "mini_xception": _setting([mx_flip], [1.0], _mix(val[:1], [mx_flip], [1.0]), yv, tune=False),
        "mini_xception_tta": _setting(members[:1], [1.0], _mix(val[:1], members[:1], [1.0]), yv, tune=True),
    }
    used: dict[str, tuple[list[int], list[dict[str, Any]]]] = {"mini_xception": ([0], [mx_flip]),
                                                               "mini_xception_tta": ([0], members[:1])}
    if len(members) >= 2:
        settings["fer_cnn"] = _setting(members[1:2], [1.0], _mix(val[1:2], members[1:2], [1.0]), yv, tune=True)
        used["fer_cnn"] = ([1], members[1:2])
        # The cheap ensemble: each member on the face and its mirror only (the per-face cost of the views adds up).
        lite = [{**m, "views": list(VIEW_SETS["flip"])} for m in members]
        for name, ms, key in (("ensemble", members, "ensemble_weights"), ("ensemble_lite", lite,
                                                                          "lite_weights")):
            weights, log[key] = best_weights(val, ms, yv)
            idx = [i for i, w in enumerate(weights) if w > 0]  # a member weighted 0 would only cost time
            ms, weights = [ms[i] for i in idx], [weights[i] for i in idx]
            settings[name] = _setting(ms, weights, _mix([val[i] for i in idx], ms, weights), yv, tune=True)
            used[name] = (idx, ms)
    for name, s in settings.items():
        idx, ms = used[name]
        weights = [m["weight"] for m in s["members"]]
        off = np.asarray(s["offsets"])
        pv, pt = _mix([val[i] for i in idx], ms, weights), _mix([test[i] for i in idx], ms, weights)
        s["val"] = {**evaluate(pv, yv, off, s["temperature"]), "accuracy_no_offsets": round(accuracy(pv, yv), 4)}
        s["test"] = {**evaluate(pt, yt, off, s["temperature"]), "accuracy_no_offsets": round(accuracy(pt, yt), 4)}
    best = max(settings, key=lambda n: settings[n]["val"]["accuracy"])
    if default is None:
        default = best
    elif default not in settings:
        raise ValueError(f"--default {default!r} is not one of {sorted(settings)}")
    files = [m["file"] for m, _ in candidates[1:]]
    config = {"default": default, "best_on_val": best,
              "chosen_on": "fer2013 val (PublicTest) accuracy; test (PrivateTest) only reported",
              "settings": settings, "search": log, "limit": limit,
              "command": f"python -m modelling.training.expression --data {data_dir} --pack {pack_dir} --cnn-views "
                         + " ".join(cnn_view_sets)
                         + (" --cnn " + " ".join(files) if files and files != [FER_CNN["file"]] else "")
                         + (f" --default {default}" if default != best else "")}
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
    p.add_argument("--cnn-views", nargs="+", default=["flip"], choices=list(VIEW_SETS),
                   help="candidate view sets of the FerCNN member")
    p.add_argument("--default", default=None, help="the default setting (unset: the best on val accuracy)")
    p.add_argument("--cnn", nargs="+", default=[FER_CNN["file"]], metavar="FILE",
                   help="the FerCNN weight files of the pack to ensemble (those present)")
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
    config = choose(a.data, a.pack, limit=a.limit, cnn_view_sets=tuple(a.cnn_views), default=a.default,
                    cnn_files=tuple(a.cnn))
    for name, s in config["settings"].items():
        star = " (default)" if name == config["default"] else ""
        print(f"{name:18s} views={len(s['views']):2d}  val acc {s['val']['accuracy']:.4f} ECE {s['val']['ece']:.4f}"
              f"  | test acc {s['test']['accuracy']:.4f} ECE {s['test']['ece']:.4f}{star}")


if __name__ == "__main__":
    main()
