"""The rebalance loss of issue 16/18 against the real broker: records taken from aiokafka and then dropped (what
Faust does with a fetch that returns while the flow is stopped for a rebalance) are only read again if "seek to
committed" also rewinds the partitions that have no commit yet."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytestmark = pytest.mark.integration


def test_dropped_records_of_an_uncommitted_partition_are_read_again(broker: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from streams.app import seek_to_committed_or_reset
    from streams.topics import create_topics

    topic, group = f"rewind-{uuid.uuid4().hex[:8]}", f"rewind-{uuid.uuid4().hex[:8]}"
    create_topics(broker, [topic], 2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    async def go() -> tuple[dict[int, int], dict[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, b"x%d" % i, partition=i % 2)
        finally:
            await producer.stop()
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest")
        await c.start()
        try:
            got = 0
            while got < 10:  # taken from aiokafka and dropped: the positions are at the end now
                got += sum(len(v) for v in (await c.getmany(timeout_ms=2000)).values())
            await c.commit({p1: 3})  # partition 1 has a commit, partition 0 none
            await c.seek_to_committed()  # what Faust's rewind did: partition 0 stays at the end
            plain = {0: await c.position(p0), 1: await c.position(p1)}
            await seek_to_committed_or_reset(c, "earliest")
            fixed = {0: await c.position(p0), 1: await c.position(p1)}
            return plain, fixed
        finally:
            await c.stop()

    plain, fixed = asyncio.run(go())
    assert plain == {0: 5, 1: 3}  # the five records of partition 0 would never be read again
    assert fixed == {0: 0, 1: 3}
