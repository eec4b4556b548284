"""Drive one benchmark row: publish a feed, wait out the warm-up, measure a steady-state window, drain.

Two kinds of load: closed loop (``window``: publish as fast as the pipeline takes posts, keeping at most that many
sent and not yet committed) and open loop (``rate``: posts/s, whatever the pipeline does). Throughput is the
number of rows committed inside the window divided by its length; latency is send → commit of the posts sent
inside the window.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ops.bench.commits import CommitLog


@dataclass(frozen=True)
class Load:
    """Closed loop (``window`` posts outstanding at most) or open loop (``rate`` posts/s)."""

    window: int | None = None
    rate: float | None = None

    def describe(self) -> str:
        return f"{self.rate:.1f} posts/s offered" if self.rate else f"as fast as taken ({self.window} in flight)"


class NoProgress(RuntimeError):
    """Nothing was committed in time (the consumer is stuck or dead)."""


def percentiles(lat_ms: np.ndarray) -> dict[str, float | None]:
    if lat_ms.size == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(lat_ms, [50, 95, 99])
    return {"p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "p99_ms": round(float(p99), 1)}


async def _publish(producer: Any, topic: str, posts: Iterator[dict[str, Any]], log: CommitLog, load: Load,
                   stop: asyncio.Event) -> None:
    start = time.monotonic()
    for i, post in enumerate(posts):
        if stop.is_set():
            return
        if load.window:
            while log.outstanding >= load.window and not stop.is_set():
                await log.wait_change(0.5)
        if load.rate:
            delay = start + i / load.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if stop.is_set():
            return
        msg = {**post, "created_at": datetime.now(UTC).isoformat()}
        log.mark_sent(post["id"])
        await producer.send(topic, value=json.dumps(msg, separators=(",", ":")).encode(), key=post["id"].encode())


async def drive(producer: Any, topic: str, posts: Iterator[dict[str, Any]], log: CommitLog, load: Load, *,
                warm_s: float, seconds: float, on_begin: Callable[[], None] = lambda: None,
                marks: dict[float, Callable[[], None]] | None = None, alive: Callable[[], str | None] = lambda: None,
                first_timeout_s: float = 300.0, drain_s: float = 120.0, label: str = "") -> dict[str, Any]:
    """Run one row; returns posts/s, p50/p95/p99 (ms), sent/committed counts. ``marks``: callbacks at those
    seconds into the window (soak checkpoints). ``alive`` returns an error text once the consumer has died."""
    log.reset()
    stop = asyncio.Event()
    pub = asyncio.create_task(_publish(producer, topic, posts, log, load, stop))
    try:
        deadline = time.time() + first_timeout_s
        while log.first_commit() is None:
            _check(pub, alive)
            if time.time() > deadline:
                raise NoProgress(f"{label}: nothing committed within {first_timeout_s:.0f}s of the first post")
            await log.wait_change(0.5)
        t0 = (log.first_commit() or time.time()) + warm_s
        await _sleep_until(t0, pub, alive)
        on_begin()
        t1 = t0 + seconds
        pending = sorted((marks or {}).items())
        next_print = t0 + 15
        while time.time() < t1:
            _check(pub, alive)
            now = time.time()
            while pending and now >= t0 + pending[0][0]:
                pending.pop(0)[1]()
            if now >= next_print:
                done = log.commits_between(t0, now)
                print(f"    {label}: {now - t0:4.0f}s  {done / (now - t0):6.1f} posts/s  "
                      f"in flight {log.outstanding}", flush=True)
                next_print += 15
            await asyncio.sleep(0.2)
        for _, fn in pending:
            fn()
    finally:
        stop.set()
        await asyncio.gather(pub, return_exceptions=True)
    committed = log.commits_between(t0, t1)
    ids = log.sent_between(t0, t1)
    end = time.time() + drain_s
    while log.outstanding and time.time() < end:  # let the backlog finish so the next row starts clean
        await log.wait_change(0.5)
    lat = log.latencies_ms(ids)
    return {"posts_per_s": round(committed / seconds, 2), **percentiles(lat), "committed": committed,
            "measured_s": seconds, "sent_in_window": len(ids), "not_committed": len(ids) - int(lat.size),
            "load": load.describe()}


def _check(pub: asyncio.Task[None], alive: Callable[[], str | None]) -> None:
    if pub.done() and not pub.cancelled() and pub.exception() is not None:
        raise RuntimeError(f"publishing failed: {pub.exception()}") from pub.exception()
    err = alive()
    if err:
        raise NoProgress(err)


async def _sleep_until(t: float, pub: asyncio.Task[None], alive: Callable[[], str | None]) -> None:
    while time.time() < t:
        _check(pub, alive)
        await asyncio.sleep(min(0.5, max(0.0, t - time.time())))
