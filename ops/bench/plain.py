"""The plain peer: a per-message Kafka consumer written the way the Quix and Bytewax samples are.

For each message: parse the JSON, run the stock fp32 PyTorch models on that one post (eager modules: no
TorchScript, no ONNX, torch's default threads, text then image, no batching), and INSERT its rows in a transaction
of their own; offsets auto-committed. No cache, no dead-letter topic (a bad post is logged and skipped). It differs
from the ``naive`` peer (``naive.py``), which runs our optimised pipeline one post at a time, in the models only.
Run as ``python -m ops.bench.plain`` with the usual ``MOODSTREAM_*`` settings; it prints ``ready`` once the
models are loaded and the consumer has joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

log = logging.getLogger("plain")


def stock_pipeline(settings: object):
    """Our models as stock eager fp32 PyTorch modules: ``MOODSTREAM_TORCH_JIT=0``, the torch runtime, torch's
    default thread count, text and image one after the other."""
    import torch

    from moodstream.config import Settings
    from serving.pipeline import load_pipeline

    assert isinstance(settings, Settings)
    os.environ["MOODSTREAM_TORCH_JIT"] = "0"  # read by serving.torch_opt when the models load
    pipe = load_pipeline(settings.model_copy(update={"runtime": "torch", "torch_threads": None}))
    pipe.parallel = False
    torch.set_num_threads(os.cpu_count() or 1)
    return pipe


def insert_one(engine: object, record: object) -> None:
    """The post and its prediction, INSERTed in one transaction (no upsert, no batching, no trend upkeep)."""
    from sqlalchemy import insert

    from storage.records import post_row, prediction_row
    from storage.tables import PostRow, PredictionRow

    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(insert(PostRow.__table__), [post_row(record)])
        conn.execute(insert(PredictionRow.__table__), [prediction_row(record)])


async def consume(settings: object) -> None:
    from aiokafka import AIOKafkaConsumer

    from moodstream.config import Settings
    from moodstream.kafka import aiokafka_config
    from moodstream.schema import PostError, parse_post
    from moodstream.types import ClassifyItem, ItemError
    from storage.engine import make_engine
    from storage.records import PostRecord

    assert isinstance(settings, Settings)
    pipe = stock_pipeline(settings)
    engine = make_engine(settings.database_url, settings=settings)
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
            try:
                insert_one(engine, PostRecord(post=post, prediction=pred))
            except Exception as e:  # a duplicate after a restart: the sample code logs it and goes on
                log.warning("insert of %s failed: %s", post.id, e)
    finally:
        await consumer.stop()


def main() -> None:
    from moodstream.config import get_settings

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(consume(get_settings()))


if __name__ == "__main__":
    main()
