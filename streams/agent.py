"""The Faust agent on the posts topic: raw-byte batches in, offsets acked only after the pipeline stored them.

``stream.noack_take`` buffers events without acking; each event is acked after ``Pipeline.process`` returned
(rows committed, predictions and dead letters published). Up to ``worker_concurrency`` batches run at once and are
acked in the order they were read (``streams.inflight``), never by Faust's out-of-order actors. A batch that fails
unexpectedly is retried, never acked, so no offset is skipped; a crash replays it from the last commit (sinks are
idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust

from moodstream.config import Settings
from streams import metrics
from streams.inflight import InOrderBatches
from streams.pipeline import Pipeline
from streams.records import RawRecord
from streams.retry import backoff_delays
from streams.webhooks import DeliveryLoop

log = logging.getLogger(__name__)


def posts_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    return app.topic(settings.topic_posts, value_type=bytes, key_type=bytes, value_serializer="raw",
                     key_serializer="raw", partitions=settings.kafka_partitions)


def record_lag(app: faust.App, records: list[RawRecord]) -> None:
    """Consumer lag per partition (high watermark - next offset) after a batch."""
    from faust.types import TP

    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[(r.topic, r.partition)] = max(r.offset, last.get((r.topic, r.partition), -1))
    for (topic, part), off in last.items():
        try:
            hw = app.consumer.highwater(TP(topic, part))
        except Exception:  # not known yet
            continue
        if hw is not None:
            metrics.consumer_lag.labels(topic, str(part)).set(max(0, hw - off - 1))


def offset_spans(records: Sequence[RawRecord]) -> str:
    """``partition:first-last`` per partition of a batch, in read order (a hole shows as a second span)."""
    spans: dict[int, list[list[int]]] = {}
    for r in records:
        runs = spans.setdefault(r.partition, [])
        if runs and runs[-1][1] + 1 == r.offset:
            runs[-1][1] = r.offset
        else:
            runs.append([r.offset, r.offset])
    return ",".join(f"{p}:{a}-{b}" for p, runs in sorted(spans.items()) for a, b in runs)


def attach(app: faust.App, settings: Settings, pipeline: Pipeline, *, trend_flush_s: float = 5.0,
           deliveries: DeliveryLoop | None = None, delivery_poll_s: float = 1.0) -> Any:
    """Register the posts agent, the trend-flush timer, the alert-delivery timer (when ``deliveries`` is given) and
    ``/metrics`` on ``app``; returns the agent."""
    topic = posts_topic(app, settings)

    async def run(records: list[RawRecord]) -> Any:
        delays = backoff_delays(cap_s=settings.db_retry_max_s)
        while True:
            try:
                return await pipeline.process(records)
            except Exception:  # never ack a batch that did not go through; try it again
                log.exception("batch of %d failed; retrying it (not acknowledged)", len(records))
                await asyncio.sleep(next(delays))

    # One Faust actor; ``worker_concurrency`` batches in flight inside it, acked in read order (streams/inflight.py).
    @app.agent(topic, name="classify_posts", concurrency=1)
    async def classify_posts(stream: faust.StreamT) -> None:
        async def done(events: Sequence[Any], rep: Any) -> None:
            for e in events:
                await stream.ack(e)
            records = [RawRecord.from_event(e) for e in events]
            record_lag(app, records)
            log.info("batch done", extra={"offsets": offset_spans(records), "n": rep.consumed,
                                          "persisted": rep.persisted, "cached": rep.cached,
                                          "deduplicated": rep.deduplicated, "classified": rep.classified,
                                          "dead": rep.dead})

        batches: InOrderBatches[Any] = InOrderBatches(settings.worker_concurrency, done,
                                                      metrics.batches_in_flight.set)
        try:
            async for events in stream.noack_take(settings.stream_batch_max, within=settings.stream_batch_within_s):
                await batches.submit(events, run([RawRecord.from_event(e) for e in events]))
        finally:
            await batches.close()

    if pipeline.trends is not None:
        @app.timer(interval=trend_flush_s, name="flush_trends")
        async def flush_trends() -> None:
            try:
                await pipeline.trends.flush_closed()  # type: ignore[union-attr]
            except Exception:
                log.exception("publishing closed trend windows failed; will retry")

    if deliveries is not None:
        @app.timer(interval=delivery_poll_s, name="deliver_alerts")
        async def deliver_alerts() -> None:  # its own coroutine: a slow receiver never holds up a batch
            try:
                await deliveries.run_once()
            except Exception:
                log.exception("alert delivery pass failed; will retry")

    def posts_partitions(tps: Any) -> list[int]:
        return sorted(tp.partition for tp in tps if tp.topic == settings.topic_posts)

    @app.on_partitions_revoked.connect  # type: ignore[misc]
    async def _revoked(app: faust.App, revoked: Any, **_: Any) -> None:
        log.info("partitions revoked", extra={"partitions": posts_partitions(revoked)})

    @app.on_partitions_assigned.connect  # type: ignore[misc]
    async def _assigned(app: faust.App, assigned: Any, **_: Any) -> None:
        log.info("partitions assigned", extra={"partitions": posts_partitions(assigned)})

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type="text/plain; version=0.0.4")

    return classify_posts
