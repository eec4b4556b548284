"""`moodstream bench serve`: the Serve app against the models it hosts, side by side, in one run.

Rows (MVSA-Single test captions + images as the workload):

* ``limit``   — ``Pipeline.classify`` in this process on batches of 32 (no Ray): the ceiling. Measured with one
  torch thread and with one per CPU; the faster counts (on a busy machine, multi-threaded torch can be far slower);
* ``batched`` — the Serve app through a DeploymentHandle, ``classify_batch`` with batches of 32, 3 in flight;
* ``single``  — the Serve app with one post per request: one client per Kafka partition (``kafka_partitions``,
  default 4), each sending its next post when the last returns — the worker without client batching. The model
  deployments still batch across concurrent requests with ``@serve.batch``; extra rows with 32 clients (how far
  server-side batching alone gets) and with 1 client (strictly one post at a time).

Serve layout: one replica per deployment, except VisionModel with one replica per CPU (up to 4): the image path
is most of the compute per post, and one single-threaded replica per core beats one multi-threaded replica.

Targets: batched ≥ 0.85 × limit and batched ≥ 3 × single (posts/s). ``--json OUT`` writes
``{"rows": {name: {"posts_per_s", "p50_ms", "p99_ms"}}, "ratios": {"batched_over_limit", "batched_over_single"},
"config": {...}}``. ``--seconds`` is the measured length of each row; ``--soak`` makes each row 10× longer.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from moodstream.config import Settings
from ops.localhost import free_port

BATCH = 32
BATCHED_IN_FLIGHT = 3
MANY_IN_FLIGHT = 32
WARMUP_S = 3.0


def workload(data_dir: Path) -> list[Any]:
    """MVSA-Single test posts (caption + image) as ``ClassifyItem``s."""
    from modelling.training.data import read_mvsa
    from moodstream.types import ClassifyItem

    data = read_mvsa("test", data_dir)
    now = datetime.now(UTC)
    items = [ClassifyItem(post_id=r["id"], created_at=now, text=r["text"], image=data.image_bytes(r["id"]))
             for r in data.rows]
    data.close()
    return items


def row(posts: int, wall_s: float, latencies_s: list[float]) -> dict[str, float]:
    """posts/s and per-request p50/p99 (ms)."""
    lat = np.asarray(latencies_s) * 1000.0
    return {"posts_per_s": round(posts / wall_s, 2), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "requests": len(lat), "posts": posts,
            "wall_s": round(wall_s, 2)}


def batches(items: list[Any], size: int) -> Callable[[int], list[Any]]:
    """``k`` → the k-th window of ``size`` items, cycling over the workload."""
    n = len(items)

    def window(k: int) -> list[Any]:
        start = (k * size) % n
        out = items[start:start + size]
        return out + items[:size - len(out)]

    return window


def measure_limit(items: list[Any], seconds: float, pipe: Any, threads: int,
                  give_up_after_s: float | None = None, batch: int = BATCH) -> dict[str, float]:
    """(a) ``Pipeline.classify`` in-process on batches of 32 with ``threads`` torch threads; stops early when one
    batch takes longer than ``give_up_after_s`` (a configuration already known to be slower)."""
    import torch

    torch.set_num_threads(threads)
    window = batches(items, batch)
    pipe.classify(window(0))
    k = 1
    t_end = time.perf_counter() + WARMUP_S
    while time.perf_counter() < t_end:
        pipe.classify(window(k))
        k += 1
    lat: list[float] = []
    posts = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(lat) < 3:
        t = time.perf_counter()
        posts += len(pipe.classify(window(k)))
        lat.append(time.perf_counter() - t)
        k += 1
        if give_up_after_s is not None and lat[-1] > give_up_after_s:
            break
    return {**row(posts, time.perf_counter() - t0, lat), "threads": threads}


async def closed_loop(call: Callable[[list[Any]], Awaitable[list[Any]]], window: Callable[[int], list[Any]],
                      in_flight: int, seconds: float) -> dict[str, float]:
    """``in_flight`` clients, each sending its next request as soon as the last one returns."""
    counter = iter(range(1 << 62))
    lat: list[float] = []
    posts = 0

    async def client(until: float, record: bool) -> None:
        nonlocal posts
        while time.perf_counter() < until:
            req = window(next(counter))
            t = time.perf_counter()
            out = await call(req)
            if record:
                lat.append(time.perf_counter() - t)
                posts += len(out)

    await asyncio.gather(*(client(time.perf_counter() + WARMUP_S, False) for _ in range(in_flight)))
    t0 = time.perf_counter()
    await asyncio.gather(*(client(t0 + seconds, True) for _ in range(in_flight)))
    return row(posts, time.perf_counter() - t0, lat)


def measure_serve(items: list[Any], seconds: float, settings: Any, single_in_flight: int
                  ) -> dict[str, dict[str, float]]:
    """(b), (c) and the 32-client single row against one deployment of the app on a local Ray."""
    from serving.runner import ServeRunner

    cpus = os.cpu_count() or 1
    vision_replicas = max(1, min(cpus, 4))
    # one Classifier (0 CPU) + TextModel + FusionModel + VisionModel replicas must fit the local Ray's CPUs
    per_replica = min(settings.serve_num_cpus, cpus / (2 + vision_replicas))
    settings = settings.model_copy(update={"serve_port": free_port(), "serve_num_cpus": per_replica})
    with ServeRunner(settings, num_cpus=cpus) as runner:
        handle = runner.deploy(wait=True, timeout_s=600, overrides={"VisionModel": {"num_replicas": vision_replicas}})

        async def call(req: list[Any]) -> list[Any]:
            return await handle.classify_batch.remote(req)

        async def rows() -> dict[str, dict[str, float]]:
            return {
                "batched": await closed_loop(call, batches(items, BATCH), BATCHED_IN_FLIGHT, seconds),
                "single": await closed_loop(call, batches(items, 1), single_in_flight, seconds),
                f"single_{MANY_IN_FLIGHT}": await closed_loop(call, batches(items, 1), MANY_IN_FLIGHT, seconds / 2),
                "single_1": await closed_loop(call, batches(items, 1), 1, seconds / 2),
            }

        out = asyncio.run(rows())
        out["batched"]["vision_replicas"] = vision_replicas
        return out


def run(settings: Settings, json_path: Path | None = None, seconds: float = 60.0, soak: bool = False) -> dict[str, Any]:
    """Measure the rows for ``seconds`` each (10× with ``soak``); print them and the ratios."""
    from serving.pipeline import load_pipeline

    seconds = seconds * 10 if soak else seconds
    cpus = os.cpu_count() or 1
    single_in_flight = settings.kafka_partitions
    items = workload(settings.datasets)
    print(f"moodstream bench serve — {len(items)} MVSA test posts, batch {BATCH}, {seconds:.0f}s per row, {cpus} CPUs")
    pipe = load_pipeline(settings)
    limits = [measure_limit(items, seconds / 2, pipe, 1)]
    if cpus > 1:
        limits.append(measure_limit(items, seconds / 2, pipe, cpus, give_up_after_s=1.5 * limits[0]["p50_ms"] / 1e3))
    for lim in limits:
        print(f"  in-process, {lim['threads']} torch thread(s): {lim['posts_per_s']:.1f} posts/s")
    limit = max(limits, key=lambda r: r["posts_per_s"])
    # the most batching can gain in compute: the same models on one post per call, same threads
    limit_1 = measure_limit(items, seconds / 2, pipe, limit["threads"], batch=1)
    print(f"  in-process, 1 post per call: {limit_1['posts_per_s']:.1f} posts/s → batching alone gains "
          f"{limit['posts_per_s'] / limit_1['posts_per_s']:.2f}× in compute")
    del pipe
    serve_rows = measure_serve(items, seconds, settings, single_in_flight)
    rows = {"limit": limit, "batched": serve_rows["batched"], "single": serve_rows["single"]}
    ratios = {"batched_over_limit": round(rows["batched"]["posts_per_s"] / limit["posts_per_s"], 3),
              "batched_over_single": round(rows["batched"]["posts_per_s"] / rows["single"]["posts_per_s"], 3)}
    many = f"single_{MANY_IN_FLIGHT}"
    extra = {many: serve_rows[many], "single_1": serve_rows["single_1"], "limit_1": limit_1}
    config = {"batch": BATCH, "batched_in_flight": BATCHED_IN_FLIGHT, "single_in_flight": single_in_flight,
              "seconds_per_row": seconds, "cpus": cpus, "serve_max_batch_size": settings.serve_max_batch_size,
              "serve_batch_wait_s": settings.serve_batch_wait_s, "posts": len(items),
              "limit_by_threads": {str(r["threads"]): r["posts_per_s"] for r in limits}}
    what = {"limit": f"Pipeline.classify in-process, batches of {BATCH}, {limit['threads']} torch thread(s)",
            "batched": f"Serve handle, batches of {BATCH}, {BATCHED_IN_FLIGHT} in flight",
            "single": f"Serve handle, 1 post/request, {single_in_flight} clients (one per partition)",
            many: f"Serve handle, 1 post/request, {MANY_IN_FLIGHT} clients (extra)",
            "single_1": "Serve handle, 1 post/request, 1 client (extra)",
            "limit_1": f"Pipeline.classify in-process, 1 post per call, {limit['threads']} torch thread(s) (extra)"}
    print(f"{'row':<10} {'posts/s':>9} {'p50 ms':>9} {'p99 ms':>9}   what")
    for name, r in {**rows, **extra}.items():
        print(f"{name:<10} {r['posts_per_s']:>9.1f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}   {what[name]}")
    print(f"batched/limit = {ratios['batched_over_limit']:.2f} (target ≥ 0.85)   "
          f"batched/single = {ratios['batched_over_single']:.2f} (target ≥ 3)")
    ratios_extra = {"inprocess_batch_over_single": round(limit["posts_per_s"] / limit_1["posts_per_s"], 3),
                    "batched_over_single_1": round(rows["batched"]["posts_per_s"]
                                                   / serve_rows["single_1"]["posts_per_s"], 3)}
    print(f"in-process batch {BATCH} / batch 1 = {ratios_extra['inprocess_batch_over_single']:.2f} (the compute "
          f"gain batching can give on this machine)   batched / single_1 = {ratios_extra['batched_over_single_1']:.2f}")
    result = {"rows": rows, "ratios": ratios, "extra_rows": extra, "extra_ratios": ratios_extra, "config": config}
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return result
