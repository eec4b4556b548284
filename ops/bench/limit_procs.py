"""The models' ceiling on every core: one process per CPU, each with one torch thread, batches of 32.

``measure_limit`` (ops/bench/serve.py) is one process; on a CPU machine one single-threaded process uses
one core, and intra-op threads scale poorly on these small models. Serve runs one replica per core, so this is
the fair ceiling to hold the whole pipeline against. All processes load, warm up, meet at a barrier, then count
posts for the same ``seconds``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

WARMUP_S = 3.0


def _child(settings: Any, rank: int, procs: int, seconds: float, barrier: Any, out: Any) -> None:  # pragma: no cover
    import torch

    from ops.bench.serve import BATCH, batches, workload
    from serving.pipeline import load_pipeline

    torch.set_num_threads(1)
    items = workload(settings.datasets)
    items = items[rank::procs] + items[:rank:procs]  # different posts per process, same mix
    window = batches(items, BATCH)
    pipe = load_pipeline(settings)
    torch.set_num_threads(1)
    k, t_end = 0, time.perf_counter() + WARMUP_S
    while time.perf_counter() < t_end:
        pipe.classify(window(k))
        k += 1
    barrier.wait()
    posts, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        posts += len(pipe.classify(window(k)))
        k += 1
    out.put((rank, posts, time.perf_counter() - t0))


def measure_limit_processes(settings: Any, seconds: float, procs: int | None = None,
                            timeout_s: float = 600.0) -> dict[str, Any]:
    """posts/s of ``procs`` (default: CPU count) single-threaded in-process pipelines running side by side."""
    procs = procs or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    children = [ctx.Process(target=_child, args=(settings, r, procs, seconds, barrier, out), daemon=True)
                for r in range(procs)]
    for c in children:
        c.start()
    results = []
    try:
        for _ in range(procs):
            results.append(out.get(timeout=timeout_s))
    finally:
        for c in children:
            c.join(10)
            if c.is_alive():
                c.kill()
    rate = sum(p / w for _, p, w in results)
    return {"posts_per_s": round(rate, 2), "processes": procs, "torch_threads": 1,
            "posts": sum(p for _, p, _ in results)}
