"""The naive peer: the common design the benchmark compares against.

A plain Kafka consumer that takes one post at a time, classifies it with the same models in-process, and
inserts one row per post in its own transaction; offsets auto-committed. No batching, no cache, no dead-letter
topic (a bad post is logged and skipped). Run as ``python -m ops.bench.naive`` with the usual
``MOODSTREAM_*`` settings; it prints ``ready`` once the models are loaded and the consumer has joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("naive")


async def per_message(settings: object, pipe: Any, store: Callable[[Any], None]) -> None:
    """The per-message loop both peers share: read a message, parse it, classify that one post with ``pipe``,
    ``store`` its ``PostRecord``; offsets auto-committed, a bad post logged and skipped."""
    from aiokafka import AIOKafkaConsumer

    from moodstream.config import Settings
    from moodstream.kafka import aiokafka_config
    from moodstream.schema import PostError, parse_post
    from moodstream.types import ClassifyItem, ItemError
    from storage.records import PostRecord

    assert isinstance(settings, Settings)
    consumer = AIOKafkaConsumer(settings.topic_posts, **aiokafka_config(settings), group_id=settings.consumer_group,
                                auto_offset_reset="earliest", enable_auto_commit=True,
                                fetch_max_wait_ms=settings.broker_fetch_max_wait_ms,
                                max_partition_fetch_bytes=max(1_048_576, settings.image_max_bytes * 2),
                                fetch_max_bytes=max(4_194_304, settings.image_max_bytes * 2))
    await consumer.start()
    print("ready", flush=True)
    try:
        async for msg in consumer:
            try:
                post = parse_post(msg.value)
            except PostError as e:
                log.warning("skipping a bad post: %s", e.reason)
                continue
            item = ClassifyItem(post_id=post.id, created_at=post.created_at, text=post.text,
                                image=post.image.data() if post.image and post.image.b64 else None,
                                hashtags=list(post.hashtags or []))
            (pred,) = pipe.classify([item])
            if isinstance(pred, ItemError):
                log.warning("skipping %s: %s", post.id, pred.reason)
                continue
            store(PostRecord(post=post, prediction=pred))
    finally:
        await consumer.stop()


async def consume(settings: object) -> None:
    """Our optimised pipeline, one post at a time; one upsert transaction per post."""
    from moodstream.config import Settings
    from serving.pipeline import load_pipeline
    from storage.engine import make_engine
    from storage.repository import upsert_predictions

    assert isinstance(settings, Settings)
    pipe = load_pipeline(settings)
    engine = make_engine(settings.database_url, settings=settings)
    await per_message(settings, pipe, lambda record: upsert_predictions(engine, [record]))


def run(consumer: Callable[[Any], Any]) -> None:
    """A peer's entry point: settings from the environment, warnings to stderr, until interrupted."""
    from moodstream.config import get_settings

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(consumer(get_settings()))


def main() -> None:
    run(consume)


if __name__ == "__main__":
    main()
