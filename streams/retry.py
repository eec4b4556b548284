"""Capped exponential backoff: the delays, and a loop for dependencies that must come back (database, broker)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def backoff_delays(base_s: float = 0.2, cap_s: float = 30.0) -> Iterator[float]:
    """0.2, 0.4, 0.8, ... seconds, capped, with +-25% jitter (infinite)."""
    delay = base_s
    while True:
        yield delay * (0.75 + random.random() / 2)
        delay = min(cap_s, delay * 2)


async def retry_forever(fn: Callable[[], Awaitable[T]], what: str, *, transient: Callable[[BaseException], bool],
                        cap_s: float = 30.0, on_retry: Callable[[], None] | None = None) -> T:
    """Await ``fn()`` until it succeeds; transient errors are retried with backoff, others raised.

    Logs once when ``what`` becomes unavailable and once when it recovers.
    """
    delays = backoff_delays(cap_s=cap_s)
    failures = 0
    while True:
        try:
            result = await fn()
        except Exception as e:
            if not transient(e):
                raise
            failures += 1
            if on_retry:
                on_retry()
            if failures == 1:
                log.warning("%s unavailable, retrying with backoff (nothing is acknowledged meanwhile): %s",
                            what, str(e).splitlines()[0][:300] if str(e) else type(e).__name__)
            await asyncio.sleep(next(delays))
            continue
        if failures:
            log.info("%s is back after %d retries", what, failures)
        return result
