"""Prometheus metrics of the stream worker (served on the worker's web port under ``/metrics``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, float("inf"))

consumed = Counter("moodstream_consumed_total", "messages read from the posts topic", registry=REGISTRY)
classified = Counter("moodstream_classified_total", "posts classified by the models", registry=REGISTRY)
cached = Counter("moodstream_cached_total", "posts answered from the result cache", registry=REGISTRY)
deduplicated = Counter("moodstream_deduplicated_total", "posts sharing a classification within a batch",
                       registry=REGISTRY)
persisted = Counter("moodstream_persisted_total", "predictions written to the database", registry=REGISTRY)
dead_lettered = Counter("moodstream_dead_lettered_total", "messages sent to the dead-letter topic", ["stage"],
                        registry=REGISTRY)
db_retries = Counter("moodstream_db_retries_total", "database writes retried", registry=REGISTRY)
classify_retries = Counter("moodstream_classify_retries_total", "classifier calls retried", registry=REGISTRY)
cache_errors = Counter("moodstream_cache_errors_total", "cache operations that failed", registry=REGISTRY)
alerts = Counter("moodstream_alerts_total", "sentiment-shift alerts raised", registry=REGISTRY)
alert_deliveries = Counter("moodstream_alert_deliveries_total", "webhook delivery attempts of alerts, by outcome "
                           "(delivered, retrying, failed)", ["outcome"], registry=REGISTRY)
batch_size = Histogram("moodstream_batch_size", "messages per batch",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=REGISTRY)
batch_seconds = Histogram("moodstream_batch_seconds", "time to process one batch", registry=REGISTRY)
stage_seconds = Histogram("moodstream_stage_seconds", "time one batch spends in each pipeline stage", ["stage"],
                          buckets=LATENCY_BUCKETS, registry=REGISTRY)
STAGES = ("validate", "fetch", "classify", "persist", "publish", "trends")
e2e_created = Histogram("moodstream_e2e_latency_from_created_seconds",
                        "post created_at -> prediction persisted", buckets=LATENCY_BUCKETS, registry=REGISTRY)
e2e_published = Histogram("moodstream_e2e_latency_from_publish_seconds",
                          "Kafka message timestamp -> prediction persisted", buckets=LATENCY_BUCKETS,
                          registry=REGISTRY)
batches_in_flight = Gauge("moodstream_batches_in_flight", "batches being processed, not yet acknowledged",
                          registry=REGISTRY)
consumer_lag = Gauge("moodstream_consumer_lag", "high watermark - next offset, per partition",
                     ["topic", "partition"], registry=REGISTRY)


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Observe the block's wall time under ``moodstream_stage_seconds{stage=...}``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        stage_seconds.labels(stage).observe(time.perf_counter() - t0)


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
