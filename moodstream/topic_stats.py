"""Topic statistics read from the broker: the sum of a topic's end offsets (messages ever written)."""

from __future__ import annotations

import asyncio


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
