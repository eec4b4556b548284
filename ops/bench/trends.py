"""`moodstream bench trends`: concurrent writers of posts + trend windows, one global lock vs a lock per window.

Each writer is a process with its own connection that stores batches the way the worker does
(``storage.repository.upsert_predictions`` with the trend windows and summary tables in the same transaction). Two
workloads, each run with both locks, side by side, on a private PostgreSQL database (created, dropped at the end):

* ``live``: every writer's posts were created in the same minute (a live feed): they share that minute's windows, so
  a lock per window cannot let them through together; it should cost nothing either.
* ``backlog``: each writer works through posts of its own minutes (workers draining a backlog, late partitions, a
  replay): a lock per window lets them commit in parallel, the global lock one at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from moodstream.config import Settings
from ops.bench.stack import _server_url, _with_db

LOCKS = ("global", "window")
PLAN_PER_S = 80  # batches built per writer and second of run; a writer that uses them all up stops early (its rate
# is still batches / its own time)
WORKLOADS = ("live", "backlog")


@dataclass
class Row:
    workload: str
    lock: str
    writers: int
    batches: int
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _records(workload: str, writer: int, batch: int, size: int, now: datetime) -> list[Any]:
    """``size`` records for one batch: ``live`` all in the current minute, ``backlog`` in the writer's own minute
    (a new one every batch)."""
    from moodstream.schema import Post
    from ops.demo_seed import prediction_for
    from ops.producers.synthetic import SyntheticFeed
    from storage.records import PostRecord

    if workload == "live":
        base = now.replace(second=0, microsecond=0)
    else:
        base = (now - timedelta(days=1)).replace(second=0, microsecond=0) + timedelta(minutes=1000 * writer + batch)
    rng = random.Random(f"{workload}:{writer}:{batch}")
    feed = SyntheticFeed(size, seed=rng.randrange(1 << 30), id_prefix=f"{workload[0]}{writer}b{batch}")
    out = []
    for k, sp in enumerate(feed.posts()):
        created = base + timedelta(seconds=(k * 59) / max(1, size))
        post = Post.model_validate({**sp.post, "created_at": created.isoformat()})
        out.append(PostRecord(post=post, prediction=prediction_for(post, sp.label, rng, created + timedelta(
            seconds=0.5))))
    return out


def _writer(url: str, workload: str, lock: str, w: int, seconds: float, size: int, now: datetime,
            ready: Any, go: Any, out: Any) -> None:
    """One writer process: builds its batches, waits for ``go``, writes until ``seconds`` are over."""
    from storage.engine import make_engine
    from storage.repository import upsert_predictions

    try:
        engine = make_engine(url)
        plan = [_records(workload, w, b, size, now) for b in range(int(seconds * PLAN_PER_S) + 1)]
        ready.release()
        go.wait()
        t0 = time.perf_counter()
        done = 0
        for batch in plan:
            if time.perf_counter() - t0 >= seconds:
                break
            upsert_predictions(engine, batch, window_s=60, trend_lock=lock)  # type: ignore[arg-type]
            done += 1
        out.put((w, done, time.perf_counter() - t0, None))
        engine.dispose()
    except BaseException as e:  # reported by the parent
        out.put((w, 0, 0.0, repr(e)))
        ready.release()


def _run_one(url: str, workload: str, lock: str, writers: int, seconds: float, size: int) -> Row:
    """``writers`` processes (as separate workers are: no shared interpreter lock), started together."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    now = datetime.now(UTC)
    procs = [ctx.Process(target=_writer, args=(url, workload, lock, w, seconds, size, now, ready, go, out),
                         daemon=True) for w in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:  # every writer has built its batches: only the writes are timed
        ready.acquire()
    go.set()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(30)
    errors = [r[3] for r in results if r[3]]
    if errors:
        raise RuntimeError(f"a writer failed ({workload}, {lock} lock): {errors[0]}")
    batches = sum(r[1] for r in results)
    return Row(workload, lock, writers, batches, batches * size, max(r[2] for r in results))


def _fresh_database(server: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    from storage.engine import normalize_url
    from storage.migrate import upgrade

    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = _with_db(server, name)
    upgrade(url)
    return url


def _drop_database(server: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    from storage.engine import normalize_url

    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    with contextlib.suppress(Exception), admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(settings: Settings, *, json_path: Path | None = None, seconds: float = 10.0, writers: int = 4,
        batch_size: int = 32) -> list[Row]:
    """Every workload × lock for ``seconds`` each, ``writers`` threads; prints the table and the window/global
    ratios. Each pair runs on a fresh database, global lock first, then the same batches with a lock per window."""
    server = _server_url(settings)
    rows: list[Row] = []
    for workload in WORKLOADS:
        for lock in LOCKS:
            name = f"moodstream_bench_trends_{os.getpid()}"
            url = _fresh_database(server, name)
            try:
                rows.append(_run_one(url, workload, lock, writers, seconds, batch_size))
            finally:
                _drop_database(server, name)
            r = rows[-1]
            print(f"  {workload:8} {lock:7} lock: {r.batches:5d} batches, {r.rows_per_s:8.1f} rows/s")
    print(f"\ntrend writes, {writers} concurrent writers, batches of {batch_size}, {seconds:.0f} s each "
          f"(PostgreSQL {server.rsplit('@', 1)[-1]}):")
    print(f"  {'workload':8} | {'global lock rows/s':>18} | {'lock per window rows/s':>22} | ratio")
    for workload in WORKLOADS:
        g, w = (next(r for r in rows if r.workload == workload and r.lock == lk) for lk in LOCKS)
        ratio = w.rows_per_s / g.rows_per_s if g.rows_per_s else float("nan")
        print(f"  {workload:8} | {g.rows_per_s:18.1f} | {w.rows_per_s:22.1f} | {ratio:.2f} ×")
    if json_path is not None:
        json_path.write_text(json.dumps([{**asdict(r), "rows_per_s": r.rows_per_s} for r in rows], indent=2))
    return rows
