"""Prometheus metrics of the Classifier ingress (one registry per replica, served at ``GET /metrics``).

Model-side figures (batch size, inference time) are measured inside the model replicas and travel back with the
first request of each batch (``BatchMeta``), so every model batch is observed exactly once, by the ingress replica
that sent that request.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MODELS = ("text", "vision", "fusion")


@dataclass(slots=True)
class BatchMeta:
    """What a model replica reports about the batch one request rode in (only on the batch's first request)."""

    model: str
    batch_size: int
    inference_s: float


class ServeMetrics:
    """The ingress's metrics, in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.http_requests = Counter("moodstream_http_requests", "HTTP requests by route and status code",
                                     ["route", "status"], registry=r)
        self.classify_requests = Counter("moodstream_classify_requests", "classify calls by API (http, handle)",
                                         ["api"], registry=r)
        self.posts = Counter("moodstream_posts", "posts classified, by outcome (ok, error)", ["outcome"], registry=r)
        self.request_posts = Histogram("moodstream_request_posts", "posts per classify request",
                                       buckets=SIZE_BUCKETS, registry=r)
        self.request_seconds = Histogram("moodstream_classify_seconds", "latency of one classify request",
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.model_call_seconds = Histogram("moodstream_model_call_seconds",
                                            "latency of one call to a model deployment, as the ingress sees it "
                                            "(queueing, batching and compute)", ["model"],
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.model_batch_size = Histogram("moodstream_model_batch_size", "items per batch run by a model replica",
                                          ["model"], buckets=SIZE_BUCKETS, registry=r)
        self.model_inference_seconds = Histogram("moodstream_model_inference_seconds",
                                                 "compute time of one batch in a model replica", ["model"],
                                                 buckets=LATENCY_BUCKETS, registry=r)
        self.models_loaded = Gauge("moodstream_model_loaded", "1 when the model deployment reported loaded",
                                   ["model"], registry=r)
        for m in MODELS:  # make the series exist from the start
            self.model_call_seconds.labels(m)
            self.model_batch_size.labels(m)
            self.model_inference_seconds.labels(m)
            self.models_loaded.labels(m).set(0)

    def observe_model(self, model: str, seconds: float, meta: BatchMeta | None) -> None:
        """One call to a model deployment, and the batch it reported (if this call was the batch's first)."""
        self.model_call_seconds.labels(model).observe(seconds)
        if meta is not None:
            self.model_batch_size.labels(model).observe(meta.batch_size)
            self.model_inference_seconds.labels(model).observe(meta.inference_s)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
