"""InOrderBatches: batches run together, acknowledged in read order, bounded in number."""

from __future__ import annotations

import asyncio

import pytest

from streams.inflight import InOrderBatches


def _run(coro):
    return asyncio.run(coro)


def test_a_later_batch_that_finishes_first_waits_for_the_earlier_one() -> None:
    async def main() -> list[tuple[list[int], str]]:
        acked: list[tuple[list[int], str]] = []
        first_may_finish = asyncio.Event()

        async def on_done(events, result) -> None:
            acked.append((list(events), result))

        async def slow() -> str:
            await first_may_finish.wait()
            return "first"

        async def fast() -> str:
            return "second"

        batches: InOrderBatches[str] = InOrderBatches(2, on_done)
        await batches.submit([0, 1, 2], slow())
        await batches.submit([3, 4], fast())
        for _ in range(20):  # let the fast batch finish
            await asyncio.sleep(0)
        assert acked == [], "the second batch was acknowledged while the first was still running"
        assert batches.in_flight == 2
        first_may_finish.set()
        await batches.drain()
        await batches.close()
        return acked

    assert _run(main()) == [([0, 1, 2], "first"), ([3, 4], "second")]


def test_no_more_than_depth_batches_run_at_once() -> None:
    async def main() -> tuple[int, list[int]]:
        running = peak = 0
        seen: list[int] = []
        gauge: list[int] = []

        async def on_done(events, result) -> None:
            seen.extend(events)

        async def work() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

        batches: InOrderBatches[None] = InOrderBatches(3, on_done, gauge.append)
        for i in range(12):
            await batches.submit([i], work())
        await batches.drain()
        await batches.close()
        assert max(gauge) == 3 and gauge[-1] == 0
        return peak, seen

    peak, seen = _run(main())
    assert peak == 3
    assert seen == list(range(12))


def test_close_cancels_unfinished_batches_without_acknowledging_them() -> None:
    async def main() -> tuple[list[int], bool]:
        acked: list[int] = []
        never = asyncio.Event()

        async def on_done(events, result) -> None:
            acked.extend(events)

        async def stuck() -> None:
            await never.wait()

        batches: InOrderBatches[None] = InOrderBatches(2, on_done)
        await batches.submit([1], stuck())
        await batches.submit([2], stuck())
        await asyncio.sleep(0)
        await batches.close()
        return acked, batches.in_flight == 0

    acked, empty = _run(main())
    assert acked == []
    assert empty


def test_a_failing_acknowledgement_stops_further_submissions() -> None:
    async def main() -> None:
        async def on_done(events, result) -> None:
            raise OSError("broker gone")

        async def work() -> None:
            return None

        batches: InOrderBatches[None] = InOrderBatches(1, on_done)
        await batches.submit([1], work())
        with pytest.raises(RuntimeError, match="acknowledging"):
            await batches.submit([2], work())
        await batches.close()

    _run(main())


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InOrderBatches(0, lambda events, result: asyncio.sleep(0))
