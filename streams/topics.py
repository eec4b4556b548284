"""Topics on any Kafka-protocol broker: create the missing ones, count the messages ever written to one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def _end_offsets_total(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return 0
        return int(sum((await consumer.end_offsets(tps)).values()))
    finally:
        await consumer.stop()


def end_offsets_total(bootstrap: str, topic: str) -> int:
    """How many messages were ever written to ``topic`` (0 if it does not exist)."""
    return asyncio.run(_end_offsets_total(bootstrap, topic))


async def _create_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout: float = 10.0) -> None:
    """Create the topics that do not exist yet (idempotent), on any Kafka-protocol broker."""
    asyncio.run(_create_topics(bootstrap, list(topics), partitions, timeout))
