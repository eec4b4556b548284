"""`moodstream bench e2e` (also `make bench`): the whole stack against its limit and a naive peer, in one run.

Rows, all on MVSA-Single captions + images (every split; each caption/image pair sent once per run, so nothing
hits the cache unless the row is about reposts):

* ``limit``      the same models in-process on batches of 32: no Kafka, Serve or database (best of 1 and N threads);
  extra: ``limit_all_cores``, one such single-threaded process per CPU side by side (Serve's layout, no Serve);
* ``naive``      a plain consumer, one post at a time, same models in-process, one row per post (``naive.py``);
* ``plain``      the per-message consumer of the Quix/Bytewax samples: stock fp32 PyTorch models once per message,
  one INSERT per post, no cache, no batching (``plain.py``);
* ``moodstream`` Tansu → Faust worker → Ray Serve → PostgreSQL (+ Redis cache), fed as fast as it takes posts;
* ``reposts``    the same, on a feed where half the posts repeat an earlier post's caption and image;
* ``half_load``  the same, fed at 50 % of the ``moodstream`` rate: the latency a user sees at normal load.

Throughput counts committed rows per second of steady state (after a warm-up); latency is publish → row committed
(a PostgreSQL trigger NOTIFYs each commit). The naive peer uses the torch thread count that won the ``limit`` row.
``MOODSTREAM_BENCH_ROWS`` (e.g. ``moodstream,half_load``) runs a subset while tuning. ``--soak`` instead runs the
moodstream row at full load for 10 minutes and compares the worker's memory after 1 and after 10 minutes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moodstream.config import Settings
from ops.bench.commits import CommitLog
from ops.bench.drive import Load, drive
from ops.bench.feed import Content, fresh, mvsa_pairs, with_reposts
from ops.bench.procs import ProcessWatch, Sample
from ops.bench.stack import BenchStack
from ops.bench.worker_stats import scrape, summarise
from ops.launcher import Child
from ops.progress import duration

# issue 18's targets (the naive row keeps issue 8's)
TARGETS = {"moodstream_over_limit": 0.90, "moodstream_over_naive": 4.0, "moodstream_over_plain": 5.0,
           "reposts_over_moodstream": 1.8}
HALF_LOAD_P99_TARGET_MS = 1000.0
SOAK_S = 600.0
SOAK_MARK_S = 60.0
NAIVE_WINDOW = 16
ROW_KEYS = ("posts_per_s", "p50_ms", "p95_ms", "p99_ms", "peak_rss_mb")


def _limit(settings: Settings, seconds: float) -> dict[str, Any]:
    """Row 1: ``Pipeline.classify`` on batches of 32 in this process (the faster of 1 and N torch threads)."""
    import torch

    from ops.bench.serve import measure_limit, workload
    from serving.pipeline import load_pipeline

    cpus = os.cpu_count() or 1
    items = workload(settings.datasets)
    pipe = load_pipeline(settings)
    runs = [measure_limit(items, seconds, pipe, 1)]
    if cpus > 1:
        runs.append(measure_limit(items, seconds, pipe, cpus, give_up_after_s=1.5 * runs[0]["p50_ms"] / 1e3))
    best = max(runs, key=lambda r: r["posts_per_s"])
    del pipe
    gc.collect()
    torch.set_num_threads(cpus)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"posts_per_s": best["posts_per_s"], "p50_ms": None, "p95_ms": None, "p99_ms": None,
            "peak_rss_mb": round(peak, 1), "torch_threads": best["threads"],
            "by_threads": {str(r["threads"]): r["posts_per_s"] for r in runs},
            "batch_p50_ms": best["p50_ms"]}


def _wanted() -> set[str]:
    raw = os.environ.get("MOODSTREAM_BENCH_ROWS", "")
    return {r.strip() for r in raw.split(",") if r.strip()} or {"limit", "naive", "plain", "moodstream", "reposts",
                                                                 "half_load"}


def _with_procs(row: dict[str, Any], sample: Sample, worker_group: str = "worker") -> dict[str, Any]:
    """Add memory and CPU-per-post figures from a process sample to a row."""
    row["peak_rss_mb"] = sample.peak_rss_mb.get(worker_group)
    replicas = {k.split(":", 1)[1]: v for k, v in sample.peak_proc_rss_mb.items() if k.startswith("replica:")}
    if replicas:
        row["replica_peak_rss_mb"] = replicas
    n = max(1, row.get("committed", 0))
    row["cpu_ms_per_post"] = {k: round(1000 * v / n, 1) for k, v in sorted(sample.cpu_s.items()) if v > 0}
    return row


def _alive(child: Child) -> Callable[[], str | None]:
    return lambda: None if child.alive() else f"{child.name} died; last lines of {child.log_path}:\n{child.tail()}"


async def _session(settings: Settings, dsn: str, body: Callable[[Any, CommitLog], Any]) -> Any:
    """A producer and a commit listener around ``body(producer, log)``."""
    from aiokafka import AIOKafkaProducer

    from moodstream.kafka import aiokafka_config

    producer = AIOKafkaProducer(**aiokafka_config(settings), acks="all", linger_ms=5,
                                max_request_size=max(1_048_576, settings.image_max_bytes * 2))
    await producer.start()
    log = await CommitLog().start(dsn)
    try:
        return await body(producer, log)
    finally:
        await log.stop()
        await producer.stop()


def _print_rows(rows: dict[str, dict[str, Any] | None], ratios: dict[str, float | None]) -> None:
    what = {"limit": "models in-process, batches of 32", "naive": "1 post at a time, 1 row per post",
            "plain": "per-message consumer, stock fp32 PyTorch, 1 INSERT per post",
            "moodstream": "Kafka → worker → Serve → PostgreSQL", "reposts": "same, half the posts are reposts",
            "half_load": "same, fed at 50 % of the moodstream rate"}

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    print("\n| row | posts/s | p50 ms | p95 ms | p99 ms | peak RSS MB | what |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        if r is not None:
            print(f"| {name} | {f(r['posts_per_s'])} | {f(r['p50_ms'])} | {f(r['p95_ms'])} | {f(r['p99_ms'])} | "
                  f"{f(r['peak_rss_mb'])} | {what.get(name, '')} |")
    print()
    for k, v in ratios.items():
        t = TARGETS.get(k)
        print(f"{k} = {'-' if v is None else f'{v:.2f}'}" + (f"  (target ≥ {t})" if t else ""))
    half = rows.get("half_load")
    if half and half.get("p99_ms") is not None:
        print(f"half_load p99 = {half['p99_ms']:.0f} ms  (target ≤ {HALF_LOAD_P99_TARGET_MS:.0f})")
    mood = rows.get("moodstream")
    if mood and mood.get("cpu_ms_per_post"):
        print("moodstream CPU ms per post: " + ", ".join(f"{k} {v}" for k, v in mood["cpu_ms_per_post"].items()))
        if mood.get("worker"):
            w = mood["worker"]
            print(f"moodstream worker: mean batch {w['mean_batch_size']} posts, {w['mean_batch_ms']} ms; per stage "
                  + ", ".join(f"{k} {v}" for k, v in w["stage_ms_per_batch"].items()) + " ms/batch")
        if mood.get("replica_peak_rss_mb"):
            print("replica peak RSS MB: " + ", ".join(f"{k} {v}" for k, v in mood["replica_peak_rss_mb"].items()))


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not b.get("posts_per_s"):
        return None
    return round(a["posts_per_s"] / b["posts_per_s"], 3)


_T0 = [time.monotonic()]


def _stage(line: str, flush: bool = True) -> None:
    """A numbered stage line with the time since the benchmark started."""
    print(f"{line}  (at {duration(time.monotonic() - _T0[0])})", flush=flush)


def run(settings: Settings, json_path: Path | None = None, seconds: float = 60.0, soak: bool = False) -> dict[str, Any]:
    """Run every row (or the soak), print the table and ratios, write ``json_path``."""
    _T0[0] = time.monotonic()
    cpus = os.cpu_count() or 1
    warm = min(10.0, max(3.0, seconds / 4))
    window = 2 * settings.stream_batch_max * settings.worker_concurrency
    content = Content(mvsa_pairs(settings.datasets))
    run_dir = Path(tempfile.mkdtemp(prefix="moodstream-bench-"))
    print(f"moodstream bench e2e — {len(content.pairs)} MVSA-Single posts, {cpus} CPUs, "
          f"{'soak ' + str(int(max(SOAK_S, seconds))) + 's' if soak else f'{seconds:.0f}s per row'}; logs in {run_dir}")
    result: dict[str, Any] = {"config": {"cpus": cpus, "seconds": seconds, "warmup_s": warm, "window": window,
                                         "naive_window": NAIVE_WINDOW, "posts": len(content.pairs),
                                         "stream_batch_max": settings.stream_batch_max,
                                         "worker_concurrency": settings.worker_concurrency}}
    rows: dict[str, dict[str, Any] | None] = {k: None for k in ("limit", "moodstream", "naive", "plain", "reposts",
                                                                  "half_load")}
    wanted = _wanted()
    extra: dict[str, dict[str, Any]] = {}
    naive_threads = settings.torch_threads
    if not soak and "limit" in wanted:
        from ops.bench.limit_procs import measure_limit_processes

        _stage("[1/5] limit: models in-process on batches of 32 ...", flush=True)
        rows["limit"] = _limit(settings, min(seconds / 2, 30.0))
        naive_threads = naive_threads or rows["limit"]["torch_threads"]
        print(f"    {rows['limit']['posts_per_s']:.1f} posts/s (threads: {rows['limit']['by_threads']})", flush=True)
        extra["limit_all_cores"] = measure_limit_processes(settings, min(seconds / 2, 30.0), cpus)
        print(f"    all cores ({cpus} single-threaded processes): "
              f"{extra['limit_all_cores']['posts_per_s']:.1f} posts/s", flush=True)
    stack = BenchStack(settings, run_dir)
    watch: ProcessWatch | None = None
    try:
        s = stack.start_base()
        workers: set[int] = set()
        watch = ProcessWatch(lambda: workers, stack.broker.proc.pid if stack.broker and stack.broker.proc else None)
        watch.start()
        peers = (("naive", "naive peer", lambda: stack.start_naive(naive_threads), stack.naive_topic, "nv"),
                 ("plain", "plain peer (per-message consumer, stock fp32 PyTorch)", stack.start_plain,
                  stack.plain_topic, "pl"))
        for name, title, start, topic, prefix in peers:
            if soak or name not in wanted:
                continue
            _stage(f"[2/5] {title} ...", flush=True)
            peer = start()
            workers.add(peer.proc.pid)

            async def peer_row(producer: Any, log: CommitLog, peer: Any = peer, name: str = name, topic: str = topic,
                               prefix: str = prefix) -> dict[str, Any]:
                r = await drive(producer, topic, fresh(content.replay(), prefix), log, Load(window=NAIVE_WINDOW),
                                warm_s=warm, seconds=seconds, on_begin=watch.begin, alive=_alive(peer), label=name,
                                drain_s=60)
                return _with_procs(r, watch.end())

            rows[name] = asyncio.run(_session(s, stack.dsn, peer_row))
            peer.stop(30.0)
            workers.discard(peer.proc.pid)
        _stage(f"[{'3/5' if not soak else '1/2'}] starting Ray Serve and the worker ...", flush=True)
        result["config"]["serve"] = stack.start_serve(cpus)
        worker = stack.start_worker()
        workers.add(worker.proc.pid)
        if soak:
            result["soak"] = asyncio.run(_session(s, stack.dsn, lambda p, lg: _soak(
                p, lg, s, content, window, warm, max(SOAK_S, seconds), watch, worker)))
        else:
            asyncio.run(_session(s, stack.dsn, lambda p, lg: _stack_rows(
                p, lg, s, content, window, warm, seconds, watch, worker, stack.worker_port, rows, wanted)))
    finally:
        if watch is not None:
            watch.close()
        stack.close()
    if not soak:
        ratios = {"moodstream_over_limit": _ratio(rows["moodstream"], rows["limit"]),
                  "moodstream_over_naive": _ratio(rows["moodstream"], rows["naive"]),
                  "moodstream_over_plain": _ratio(rows["moodstream"], rows["plain"]),
                  "reposts_over_moodstream": _ratio(rows["reposts"], rows["moodstream"])}
        result["rows"], result["ratios"] = rows, ratios
        result["extra_rows"] = extra
        result["extra_ratios"] = {"moodstream_over_limit_all_cores": _ratio(rows["moodstream"],
                                                                            extra.get("limit_all_cores"))}
        _print_rows(rows, ratios)
        if extra.get("limit_all_cores"):
            print(f"extra: limit_all_cores = {extra['limit_all_cores']['posts_per_s']:.1f} posts/s; "
                  f"moodstream / limit_all_cores = {result['extra_ratios']['moodstream_over_limit_all_cores']}")
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return result


async def _stack_rows(producer: Any, log: CommitLog, s: Settings, content: Content, window: int, warm: float,
                      seconds: float, watch: ProcessWatch, worker: Child, worker_port: int,
                      rows: dict[str, dict[str, Any] | None], wanted: set[str]) -> None:
    topic = s.topic_posts
    alive = _alive(worker)

    async def row(name: str, posts: Any, load: Load) -> dict[str, Any]:
        before: dict[str, float] = {}

        def begin() -> None:
            watch.begin()
            before.update(scrape(worker_port))

        r = await drive(producer, topic, posts, log, load, warm_s=warm, seconds=seconds, on_begin=begin,
                        alive=alive, label=name)
        r = _with_procs(r, watch.end())
        r["worker"] = summarise(before, scrape(worker_port))
        w = r["worker"]
        print(f"    {name}: {r['posts_per_s']:.1f} posts/s, p50 {r['p50_ms']} / p99 {r['p99_ms']} ms; "
              f"batches of {w.get('mean_batch_size')}, ms/batch by stage {w.get('stage_ms_per_batch')}", flush=True)
        return r

    _stage("[4/5] moodstream ...", flush=True)
    rows["moodstream"] = await row("moodstream", fresh(content, "ms"), Load(window=window))
    if "reposts" in wanted:
        _stage("[4/5] reposts ...", flush=True)
        rows["reposts"] = await row("reposts", with_reposts(fresh(content, "rp"), "rp", lag=2 * window),
                                    Load(window=window))
    if "half_load" in wanted:
        rate = max(0.5, rows["moodstream"]["posts_per_s"] / 2)
        _stage(f"[5/5] half load ({rate:.1f} posts/s) ...", flush=True)
        rows["half_load"] = await row("half_load", fresh(content, "hl"), Load(rate=rate))


async def _soak(producer: Any, log: CommitLog, s: Settings, content: Content, window: int, warm: float,
                seconds: float, watch: ProcessWatch, worker: Child) -> dict[str, Any]:
    rss: dict[str, float] = {}

    def mark(label: str) -> Callable[[], None]:
        def record() -> None:
            rss[label] = watch.current_rss_mb("worker")
            print(f"    worker RSS at {label}: {rss[label]:.1f} MB", flush=True)
        return record

    _stage(f"[2/2] soak: full load for {seconds:.0f}s ...", flush=True)
    r = await drive(producer, s.topic_posts, fresh(content, "sk"), log, Load(window=window), warm_s=warm,
                    seconds=seconds, on_begin=watch.begin, marks={SOAK_MARK_S: mark("1min"), seconds: mark("end")},
                    alive=_alive(worker), label="soak")
    r = _with_procs(r, watch.end())
    early, late = rss.get("1min"), rss.get("end")
    growth = round(100 * (late - early) / early, 1) if early and late else None
    r.update({"rss_mb_1min": early, "rss_mb_end": late, "growth_pct": growth})
    print(f"\nsoak: {r['posts_per_s']:.1f} posts/s for {seconds:.0f}s; worker RSS {early} MB after 1 min, "
          f"{late} MB at the end: {growth:+.1f} % (target within ±10 %)" if growth is not None else
          "\nsoak: RSS not sampled")
    return r
