"""Publish messages to a topic with aiokafka: key = post id, an optional rate limit and a progress bar."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

Message = tuple[bytes | None, bytes]


def to_message(item: dict[str, Any] | bytes | tuple[bytes | None, bytes], stamp: bool = False) -> Message:
    """(key, value) from a post dict (``stamp`` sets ``created_at`` to now), raw bytes, or a (key, value) pair."""
    if isinstance(item, tuple):
        return item
    if isinstance(item, bytes):
        return None, item
    if stamp:
        item = {**item, "created_at": datetime.now(UTC).isoformat()}
    pid = item.get("id")
    return (pid.encode() if isinstance(pid, str) else None), json.dumps(item, separators=(",", ":")).encode()


async def _paced(items: Iterable[Any], rate: float) -> AsyncIterator[Any]:
    start = time.monotonic()
    for i, item in enumerate(items):
        if rate > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield item


async def publish(items: Iterable[Any], client_config: dict[str, Any], topic: str, *, rate: float = 0.0,
                  total: int | None = None, progress: bool = True, stamp: bool = False,
                  max_request_size: int = 32 * 1024 * 1024) -> int:
    """Send every item (see ``to_message``); waits for the broker to acknowledge all. Returns the count sent."""
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    producer = AIOKafkaProducer(**client_config, acks="all", linger_ms=5, max_request_size=max_request_size)
    await producer.start()
    bar = tqdm(total=total, unit="post", desc=f"publish → {topic}", disable=not progress, dynamic_ncols=True)
    pending: list[asyncio.Future[Any]] = []
    sent = 0
    try:
        async for item in _paced(items, rate):
            key, value = to_message(item, stamp)
            fut = await producer.send(topic, value=value, key=key)
            fut.add_done_callback(lambda _f: bar.update(1))
            pending.append(fut)
            sent += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
        bar.close()
    return sent
