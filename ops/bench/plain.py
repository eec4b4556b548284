"""The plain peer: a per-message Kafka consumer written the way the Quix and Bytewax samples are.

For each message: parse the JSON, run the stock fp32 PyTorch models on that one post (eager modules: no
TorchScript, no ONNX, torch's default threads, text then image, no batching), and INSERT its rows in a transaction
of their own; offsets auto-committed. No cache, no dead-letter topic (a bad post is logged and skipped). It differs
from the ``naive`` peer (``naive.py``), which runs our optimised pipeline one post at a time, in the models only.
Run as ``python -m ops.bench.plain`` with the usual ``MOODSTREAM_*`` settings; it prints ``ready`` once the
models are loaded and the consumer has joined.
"""

from __future__ import annotations

import logging
import os

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
    """The stock models, one post at a time (the loop is ``naive.per_message``); one INSERT transaction per post."""
    from moodstream.config import Settings
    from ops.bench.naive import per_message
    from storage.engine import make_engine

    assert isinstance(settings, Settings)
    pipe = stock_pipeline(settings)
    engine = make_engine(settings.database_url, settings=settings)

    def store(record: object) -> None:
        try:
            insert_one(engine, record)
        except Exception as e:  # a duplicate after a restart: the sample code logs it and goes on
            log.warning("insert failed: %s", e)

    await per_message(settings, pipe, store)


def main() -> None:
    from ops.bench.naive import run

    run(consume)


if __name__ == "__main__":
    main()
