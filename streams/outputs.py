"""Publishing results (predictions, dead letters, trends, alerts) with an aiokafka producer.

``send_many`` returns only once the broker acknowledged every message, so the agent acks its input after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol


def max_message_bytes(image_max_bytes: int) -> int:
    """The producer's request size limit: room for the largest accepted image (twice), at least 1 MiB."""
    return max(1_048_576, image_max_bytes * 2)


class Outputs(Protocol):
    async def send_many(self, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> None: ...

    async def close(self) -> None: ...


class KafkaOutputs:
    """An idempotence-free, ``acks=all`` producer (Tansu has no transactions; sinks downstream are keyed)."""

    def __init__(self, client_config: dict[str, Any], max_request_size: int = 32 * 1024 * 1024) -> None:
        self._config = {**client_config, "acks": "all", "linger_ms": 5, "max_request_size": max_request_size,
                        "compression_type": None}
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        async with self._lock:
            if self._producer is None:
                p = AIOKafkaProducer(**self._config)
                await p.start()
                self._producer = p

    async def send_many(self, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> None:
        await self.start()
        futures = [await self._producer.send(topic, value=v, key=k) for k, v in messages]
        if futures:
            await asyncio.gather(*futures)

    async def close(self) -> None:
        p, self._producer = self._producer, None
        if p is not None:
            await p.stop()
