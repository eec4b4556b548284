"""`moodstream bench models`: batched throughput of the text model, the vision model and the full pipeline.

Inputs are MVSA-Single test captions and images (``settings.datasets``). For each batch size and each runtime
(PyTorch, ONNX Runtime: ``MOODSTREAM_RUNTIME``) it reports items/s (wall clock) and CPU ms per item (process CPU time
over all threads, divided by items), and the onnx / torch ratio.
"images" covers decode + backbone + face detection + expression; "posts" the whole text + image + fusion path.

Rows: ``torch`` is today's PyTorch path (the detector on every image), ``onnx-all`` ONNX Runtime with the detector
on every image, ``onnx`` the default path (ONNX Runtime and the pack's face gate, ``serving.face_gate``). The ratio
row is ``onnx`` over ``torch``; ``onnx-all`` shows what the runtime alone gives. Every row is timed on the same
inputs: the torch row runs for its time budget, and the other rows then run exactly the calls it ran.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moodstream.config import Settings

BATCHES = (1, 16, 32, 64)


def measure(fn: Callable[[int], int], budget_s: float, min_calls: int = 2, calls: int | None = None
            ) -> dict[str, float]:
    """Call ``fn(call_index)`` (returns items done) after one warm-up (index 0): with ``calls``, exactly calls
    1..``calls``; otherwise until ``budget_s`` passes (at least ``min_calls``). ``calls`` in the result says how many
    ran, so that another row can be timed on exactly the same inputs."""
    fn(0)
    done = items = 0
    w0, c0 = time.perf_counter(), time.process_time()
    while (done < calls) if calls is not None else (done < min_calls or time.perf_counter() - w0 < budget_s):
        done += 1
        items += fn(done)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"items": items, "calls": done, "wall_s": round(wall, 3), "per_s": round(items / wall, 2),
            "cpu_ms_per_item": round(1000 * cpu / max(items, 1), 2), "wall_ms_per_item": round(1000 * wall / items, 2)}


RUNTIMES = ("torch", "onnx")
# row name → (runtime, face gate)
ROWS = {"torch": ("torch", False), "onnx-all": ("onnx", False), "onnx": ("onnx", True)}


def run(settings: Settings, json_path: Path | None = None, seconds: float = 60.0, soak: bool = False,
        baseline_pack: Path | None = None) -> dict[str, Any]:
    """Measure texts/s, images/s and posts/s at batch 1/16/32/64 on PyTorch and on ONNX Runtime, side by side and
    interleaved batch size by batch size, for about ``seconds`` in all; print a table with the onnx / torch ratio.

    ``baseline_pack``: another pack directory, loaded beside the current one on the default runtime; its posts/s
    and CPU ms per post are measured in the same run, interleaved batch by batch, and reported with the ratio."""
    import torch

    from modelling.training.data import read_mvsa
    from moodstream.types import ClassifyItem
    from serving.pipeline import load_pipeline

    pipes = {row: load_pipeline(settings.model_copy(update={"runtime": rt, "face_gate": gate}))
             for row, (rt, gate) in ROWS.items()}
    pipe = pipes[settings.runtime]
    base = (load_pipeline(settings.model_copy(update={"model_dir": Path(baseline_pack)})) if baseline_pack
            else None)
    data = read_mvsa("test", settings.datasets)
    rows = data.rows
    texts = [r["text"] for r in rows]
    images = [data.image_bytes(r["id"]) for r in rows]
    now = datetime.now(UTC)
    items = [ClassifyItem(post_id=r["id"], created_at=now, text=t, image=b) for r, t, b in zip(rows, texts, images,
                                                                                                strict=True)]
    n = len(rows)

    def window(seq: list, batch: int, k: int) -> list:
        start = (k * batch) % n
        out = seq[start : start + batch]
        return out + seq[: batch - len(out)]

    budget = max(0.5, seconds / (3 * len(BATCHES) * 2))  # the torch row's budget; the faster rows follow it
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "n_inputs": n,
                               "text_parallel_to_vision": pipe.parallel, "default_runtime": settings.runtime,
                               "model_version": pipe.version, "fusion": pipe.fusion.strategy,
                               "face_gate": pipe.vision.face_gate is not None,
                               "rows": {row: {"runtime": rt, "face_gate": gate} for row, (rt, gate) in ROWS.items()},
                               "batches": {}}
    if base is not None:
        results["baseline"] = {"pack": str(baseline_pack), "model_version": base.version,
                               "fusion": base.fusion.strategy}
    print(f"moodstream bench models — pack {pipe.version}, fusion {pipe.fusion.strategy}, "
          f"torch threads {torch.get_num_threads()}{' (text ∥ vision)' if pipe.parallel else ''}, "
          f"{os.cpu_count()} CPUs, {n} MVSA test posts; default runtime {settings.runtime}, face gate "
          f"{'in the pack' if pipes['onnx'].vision.face_gate is not None else 'absent from the pack'}")
    print(f"{'batch':>5} {'row':>8} | {'texts/s':>8} {'cpu ms':>7} | {'images/s':>8} {'cpu ms':>7} | "
          f"{'posts/s':>8} {'cpu ms':>7}")
    for b in BATCHES:
        results["batches"][b] = {}
        # The first row (torch, the slowest) runs for the budget; every other row then runs exactly the same calls,
        # so all rows see the same captions and images (the face gate's savings depend on which images they are).
        same: dict[str, int | None] = {"texts": None, "images": None, "posts": None}
        for rt, p_ in pipes.items():
            t = measure(lambda k, b=b, p_=p_: len(p_.text.predict(window(texts, b, k))), budget, calls=same["texts"])
            i = measure(lambda k, b=b, p_=p_: len(p_.vision.predict(window(images, b, k))), budget,
                        calls=same["images"])
            p = measure(lambda k, b=b, p_=p_: len(p_.classify(window(items, b, k))), budget, calls=same["posts"])
            same = {"texts": int(t["calls"]), "images": int(i["calls"]), "posts": int(p["calls"])}
            results["batches"][b][rt] = {"texts": t, "images": i, "posts": p}
            print(f"{b:>5} {rt:>8} | {t['per_s']:>8.1f} {t['cpu_ms_per_item']:>7.1f} | {i['per_s']:>8.1f} "
                  f"{i['cpu_ms_per_item']:>7.1f} | {p['per_s']:>8.1f} {p['cpu_ms_per_item']:>7.1f}")
        r = results["batches"][b]
        ratio = {k: round(r["onnx"][k]["per_s"] / max(r["torch"][k]["per_s"], 1e-9), 2)
                 for k in ("texts", "images", "posts")}
        cpu = round(r["torch"]["posts"]["cpu_ms_per_item"] / max(r["onnx"]["posts"]["cpu_ms_per_item"], 1e-9), 2)
        r["onnx_over_torch"] = {**ratio, "posts_cpu": cpu}
        r.update(r[settings.runtime])  # the default runtime's figures at the top level, as before
        print(f"{b:>5} {'ratio':>8} | {ratio['texts']:>7.2f}× {'':>7} | {ratio['images']:>7.2f}× {'':>7} | "
              f"{ratio['posts']:>7.2f}× {'':>7}   onnx / torch (posts CPU: {cpu:.2f}× less)")
        if base is not None:
            q = measure(lambda k, b=b: len(base.classify(window(items, b, k))), budget, calls=same["posts"])
            p2 = measure(lambda k, b=b: len(pipe.classify(window(items, b, k))), budget,
                         calls=same["posts"])  # again, after the baseline
            cpu_new = (r["posts"]["cpu_ms_per_item"] + p2["cpu_ms_per_item"]) / 2
            r.update(posts_again=p2, baseline_posts=q,
                     cpu_ratio_vs_baseline=round(cpu_new / max(q["cpu_ms_per_item"], 1e-9), 3))
            print(f"{b:>5} {'base':>8} | baseline {q['per_s']:>6.1f}/s {q['cpu_ms_per_item']:>7.1f} ms"
                  f" | cpu ratio {r['cpu_ratio_vs_baseline']:.3f}")
    data.close()
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results
