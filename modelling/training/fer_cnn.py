"""Train the compact VGG-style expression net (``serving.fer_cnn.FerCNN``) on the FER-2013 train split.

Augmentation (per batch, on the fly): random affine resample of the 48×48 face to the net's input (rotation
±``ROTATE`` degrees, the output covering a random 80–100 % of the face side, shifted up to 10 %), mirror with
probability ½, and one random erased rectangle with probability ½. AdamW with a one-cycle learning-rate schedule,
label smoothing 0.05, bf16 autocast on CPU where supported (``--no-bf16`` to train in fp32). After every epoch the
net is scored on val (PublicTest) as served (48 → 64 bilinear, ``serving.expression.member_input``, mirror-averaged),
and a checkpoint is written; ``--resume`` continues from it (with another ``--epochs``, the one-cycle schedule of
the new length takes over at the steps done). The epoch best on val accuracy is kept. ``--init`` warm-starts from
the weights of an earlier run (e.g. the pack's own ``fer_cnn.safetensors``: a longer training in a new schedule).

Run: ``python -m modelling.training.fer_cnn --data ../shared/data --out serving/pack --epochs 30 --seed 0``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modelling.training.data import read_fer
from serving.expression import member_input
from serving.fer_cnn import FerCNN, load_fer_cnn, save_fer_cnn
from serving.fer_net import FER_INPUT, normalise_faces

CNN_WEIGHTS = "fer_cnn.safetensors"
WORK_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "fer_cnn"
ROTATE = 12.0
SCALE = (0.8, 1.0)
TRANSLATE = 0.1
ERASE_P = 0.5
LABEL_SMOOTHING = 0.05
EVAL_CROP = 0.9  # the central share of the face the net sees when served (the middle of SCALE)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Random affine + mirror + erase of normalised (N, 1, 48, 48) faces → (N, 1, size, size)."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(ROTATE)
    s = SCALE[0] + torch.rand(n, generator=g) * (SCALE[1] - SCALE[0])
    tx, ty = ((torch.rand(2, n, generator=g) * 2 - 1) * TRANSLATE)
    mirror = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(ang) * s, torch.sin(ang) * s
    theta = torch.stack([torch.stack([cos * mirror, -sin, tx], 1), torch.stack([sin * mirror, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Random erasing: one rectangle of 2–25 % of the area, aspect 0.3–3.3, filled with noise, per picked item.
    area = (0.02 + torch.rand(n, generator=g) * 0.23) * size * size
    aspect = torch.exp((torch.rand(n, generator=g) * 2 - 1) * math.log(3.3))
    h = (area * aspect).sqrt().clamp(1, size).long()
    w = (area / aspect).sqrt().clamp(1, size).long()
    top = (torch.rand(n, generator=g) * (size - h + 1)).long()
    left = (torch.rand(n, generator=g) * (size - w + 1)).long()
    ys, xs = torch.arange(size).view(1, size, 1), torch.arange(size).view(1, 1, size)
    box = ((ys >= top.view(-1, 1, 1)) & (ys < (top + h).view(-1, 1, 1)) & (xs >= left.view(-1, 1, 1))
           & (xs < (left + w).view(-1, 1, 1)) & (torch.rand(n, generator=g) < ERASE_P).view(-1, 1, 1))
    noise = torch.rand(out.shape, generator=g) * 2 - 1
    return torch.where(box.unsqueeze(1), noise, out)


def served_input(images: np.ndarray, size: int, crop: float = EVAL_CROP) -> torch.Tensor:
    """uint8 (N, 48, 48) FER faces → the member input the served ``ExpressionNet`` gives the net."""
    x = F.interpolate(normalise_faces(images), size=(FER_INPUT, FER_INPUT), mode="bilinear", align_corners=False)
    return member_input(x, size, crop)


@torch.inference_mode()
def predict_probs(model: torch.nn.Module, x: torch.Tensor, *, batch: int = 256, bf16: bool = False,
                  flip: bool = True) -> np.ndarray:
    """Mirror-averaged softmax of ``model`` over prepared inputs (N, 1, S, S)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            p = model(xb).float().softmax(1)
            if flip:
                p = (p + model(xb.flip(-1)).float().softmax(1)) / 2
        out.append(p.numpy())
    return np.concatenate(out)


def _bar(it: Any, progress: bool, **kw: Any) -> Any:
    if not progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, **kw)


def train_fer_cnn(data_dir: str | Path, out_dir: str | Path, *, epochs: int = 30, width: int = 32, size: int = 40,
                  batch: int = 64, lr: float = 3e-3, weight_decay: float = 0.05, seed: int = 0, bf16: bool = True,
                  resume: bool = False, work_dir: str | Path = WORK_DIR, limit: int | None = None,
                  progress: bool = True, threads: int = 1, init: str | Path | None = None) -> dict[str, Any]:
    """Train, keep the epoch best on val accuracy, write ``fer_cnn.safetensors`` (fp16) into ``out_dir``.
    ``init``: warm-start from these ``save_fer_cnn`` weights (same width). Returns the run's record (config,
    per-epoch history, best epoch)."""
    torch.set_num_threads(threads)
    seed_everything(seed)
    x, y = read_fer("train", data_dir)
    xv, yv = read_fer("val", data_dir)
    if limit:
        x, y, xv, yv = x[:limit], y[:limit], xv[:limit], yv[:limit]
    xt, yt = normalise_faces(x), torch.from_numpy(y)
    val_in = served_input(xv, size)
    config = {"epochs": epochs, "width": width, "size": size, "batch": batch, "lr": lr, "weight_decay": weight_decay,
              "seed": seed, "bf16": bf16, "limit": limit, "augment": {"rotate": ROTATE, "scale": SCALE,
                                                                      "translate": TRANSLATE, "erase_p": ERASE_P},
              "label_smoothing": LABEL_SMOOTHING, "eval_crop": EVAL_CROP}
    model = FerCNN(width=width, size=size)
    if init:
        model.load_state_dict(load_fer_cnn(init).state_dict(), strict=True)
        config["init"] = {"file": Path(init).name, "sha256": hashlib.sha256(Path(init).read_bytes()).hexdigest()}
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = -(-len(xt) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps, pct_start=0.2)
    g = torch.Generator().manual_seed(seed)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"ckpt-w{width}-s{size}-seed{seed}{'-init' if init else ''}.pt"
    history: list[dict[str, Any]] = []
    best_acc, best_state, best_epoch, start = -1.0, None, 0, 1
    if resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        same = {k: v for k, v in state["config"].items() if k not in ("epochs", "rescheduled")}
        if same != {k: v for k, v in config.items() if k != "epochs"}:
            raise ValueError(f"{ckpt} was written with another configuration: {state['config']}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        config["rescheduled"] = list(state["config"].get("rescheduled", []))
        if state["config"]["epochs"] == epochs:
            sched.load_state_dict(state["sched"])
        else:  # a new length: the one-cycle schedule for ``epochs`` in all, continued from the steps done
            config["rescheduled"].append({"after_epoch": state["epoch"], "from_epochs": state["config"]["epochs"],
                                          "to_epochs": epochs})
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps,
                                                        pct_start=0.2, last_epoch=state["epoch"] * steps - 1)
        g.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, best_acc, best_state, best_epoch = (state["history"], state["best_acc"], state["best_state"],
                                                     state["best_epoch"])
        start = state["epoch"] + 1
    t0 = time.time()
    for epoch in range(start, epochs + 1):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total, seen = 0.0, 0
        bar = _bar(perm.split(batch), progress, total=steps, desc=f"epoch {epoch}/{epochs}", leave=False)
        for idx in bar:
            xb = augment(xt[idx], size, g).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb).float(), yt[idx], label_smoothing=LABEL_SMOOTHING)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
            if progress:
                bar.set_postfix(loss=f"{total / seen:.3f}")
        acc = float((predict_probs(model, val_in, bf16=bf16).argmax(1) == yv).mean())
        history.append({"epoch": epoch, "train_loss": round(total / max(seen, 1), 4), "val_accuracy": round(acc, 4),
                        "seconds": round(time.time() - t0, 1)})
        print(json.dumps(history[-1]), flush=True)
        if acc > best_acc:
            best_acc, best_state, best_epoch = acc, copy.deepcopy(model.state_dict()), epoch
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"config": config, "model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                    "history": history, "best_acc": best_acc, "best_state": best_state, "best_epoch": best_epoch,
                    "epoch": epoch}, tmp)
        tmp.replace(ckpt)
    model.load_state_dict(best_state)
    record = {"config": config, "history": history, "best_epoch": best_epoch, "val_accuracy": best_acc,
              "params": sum(p.numel() for p in model.parameters())}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_fer_cnn(model.to(memory_format=torch.contiguous_format).eval(), out / CNN_WEIGHTS,
                 meta={k: record[k] for k in ("config", "best_epoch", "val_accuracy")})
    return record


def export_best(checkpoint: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write the best-on-val weights of a (possibly unfinished) run's checkpoint as ``fer_cnn.safetensors``;
    returns the run's record so far."""
    state = torch.load(checkpoint, weights_only=False)
    c = state["config"]
    model = FerCNN(width=c["width"], size=c["size"])
    model.load_state_dict(state["best_state"])
    record = {"config": c, "history": state["history"], "best_epoch": state["best_epoch"],
              "val_accuracy": state["best_acc"], "params": sum(p.numel() for p in model.parameters()),
              "epochs_done": state["epoch"]}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_fer_cnn(model.eval(), Path(out_dir) / CNN_WEIGHTS,
                 meta={k: record[k] for k in ("config", "best_epoch", "val_accuracy", "epochs_done")})
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True, help="pack dir (fer_cnn.safetensors is written there)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=40)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", default=None, metavar="WEIGHTS", help="warm-start from these fer_cnn weights")
    p.add_argument("--record", default=None, help="write the run's record (history, best epoch) as JSON here")
    p.add_argument("--export", default=None, metavar="CHECKPOINT",
                   help="only write the best-on-val weights of this checkpoint (e.g. of an unfinished run) to --out")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if not a.export and not a.data:
        p.error("--data is required to train")
    if a.export:
        record = export_best(a.export, a.out)
    else:
        record = train_fer_cnn(a.data, a.out, epochs=a.epochs, width=a.width, size=a.size, batch=a.batch, lr=a.lr,
                               weight_decay=a.weight_decay, seed=a.seed, bf16=not a.no_bf16, resume=a.resume,
                               limit=a.limit, progress=not a.quiet, threads=a.threads, init=a.init)
    if a.record:
        Path(a.record).parent.mkdir(parents=True, exist_ok=True)
        Path(a.record).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k] for k in ("best_epoch", "val_accuracy", "params")}))


if __name__ == "__main__":
    main()
