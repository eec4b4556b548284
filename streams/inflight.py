"""Several batches in flight, acknowledged strictly in the order they were read.

Why not Faust's own ``concurrency=N``: N actors ack their batches in whatever order they finish, and faust-streaming
commits past an unacknowledged offset when they do. ``Consumer.perform_seek`` stores a committed offset of 0 as
``None`` and ``Consumer._new_offset`` skips its head-gap test when the committed offset is falsy (and lets a head gap
of one offset through otherwise): with actor A still on offsets 0-9 and actor B done with 10-19, the next commit is
20. A worker killed before A finishes loses 0-9; the partition's next owner starts at 20 (issue #606 upstream). The
rebalance loss once put down to this (29 posts with no fate at concurrency 2) most likely had another cause, fixed
in ``streams.app.rewind_uncommitted_partitions``.

So the worker runs one Faust actor and keeps up to ``depth`` batches in flight itself: each batch runs as its own
task, and one acknowledger awaits them in read order, so on every partition the acked offsets stay contiguous from
the committed one and no commit can pass a batch that is still running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

OnDone = Callable[[Sequence[Any], T], Awaitable[None]]


class InOrderBatches(Generic[T]):
    """Run up to ``depth`` batches at once; call ``on_done(events, result)`` for each in submission order."""

    def __init__(self, depth: int, on_done: OnDone[T],
                 on_change: Callable[[int], None] | None = None) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self._on_done = on_done
        self._on_change = on_change or (lambda n: None)
        self._slots = asyncio.Semaphore(depth)
        self._order: asyncio.Queue[tuple[asyncio.Future[T], Sequence[Any]]] = asyncio.Queue()
        self._acker: asyncio.Task[None] | None = None
        self.in_flight = 0

    async def submit(self, events: Sequence[Any], work: Awaitable[T]) -> None:
        """Start ``work`` for ``events`` once a slot is free (back-pressure on the reader)."""
        try:
            self._raise_if_acker_failed()
            await self._slots.acquire()
            self._raise_if_acker_failed()
        except BaseException:
            if asyncio.iscoroutine(work):
                work.close()  # never started; no "was never awaited" warning
            raise
        if self._acker is None:
            self._acker = asyncio.ensure_future(self._acknowledge())
        self.in_flight += 1
        self._on_change(self.in_flight)
        self._order.put_nowait((asyncio.ensure_future(work), events))

    async def drain(self) -> None:
        """Wait until every submitted batch is done and acknowledged."""
        await self._order.join()
        self._raise_if_acker_failed()

    async def close(self) -> None:
        """Cancel what is still running; nothing unfinished is acknowledged (it is read again after a restart)."""
        while not self._order.empty():
            task, _ = self._order.get_nowait()
            task.cancel()
            self._order.task_done()
            self.in_flight -= 1
        if self._acker is not None:
            self._acker.cancel()
            await asyncio.gather(self._acker, return_exceptions=True)
            self._acker = None
        self._on_change(self.in_flight)

    def _raise_if_acker_failed(self) -> None:
        if self._acker is not None and self._acker.done() and not self._acker.cancelled():
            exc = self._acker.exception()
            if exc is not None:
                raise RuntimeError("acknowledging a finished batch failed") from exc

    async def _acknowledge(self) -> None:
        while True:
            task, events = await self._order.get()
            try:
                result = await task
                await self._on_done(events, result)
            finally:
                self.in_flight -= 1
                self._on_change(self.in_flight)
                self._slots.release()
                self._order.task_done()
