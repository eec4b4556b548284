"""Assemble and run a worker: topics, migrations, cache, fetcher, classifier, store, outputs, trends, alerts."""

from __future__ import annotations

import logging
from typing import Any

import faust

from moodstream.config import Settings
from moodstream.kafka import aiokafka_config
from streams.agent import attach
from streams.alerts import AlertDetector
from streams.app import create_app
from streams.cache import make_cache
from streams.classifier import ClassifierClient, make_client
from streams.fetch import ImageFetcher
from streams.outputs import KafkaOutputs, max_message_bytes
from streams.persist import Store
from streams.pipeline import Pipeline
from streams.trends import TrendTracker
from streams.webhooks import SINK as WEBHOOK_SINK
from streams.webhooks import make_delivery_loop

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, classifier: ClassifierClient, *, engine: Any = None,
                   trend_grace_s: float | None = None) -> Pipeline:
    """Every part of the pipeline, from settings (``engine`` defaults to ``make_engine(settings.database_url)``)."""
    from storage.engine import make_engine

    engine = engine if engine is not None else make_engine(settings.database_url, settings=settings)
    store = Store(engine, settings.db_retry_max_s, settings.trend_window_s)
    outputs = KafkaOutputs(aiokafka_config(settings), max_request_size=max_message_bytes(settings.image_max_bytes))
    detector = AlertDetector(store, outputs, settings.topic_alerts, window_s=settings.trend_window_s,
                             baseline_windows=settings.alert_baseline_windows, min_volume=settings.alert_min_volume,
                             threshold=settings.alert_threshold,
                             sinks=(WEBHOOK_SINK,) if settings.alert_webhook_url else ())
    grace = trend_grace_s if trend_grace_s is not None else settings.trend_grace_s
    trends = TrendTracker(store, outputs, settings.topic_trends, settings.trend_window_s, grace, detector)
    return Pipeline(settings, classifier=classifier, cache=make_cache(settings), fetcher=ImageFetcher(settings),
                    store=store, outputs=outputs, trends=trends)


def prepare(settings: Settings, migrate: bool = True) -> None:
    """Create the topics that are missing and (unless ``migrate`` is False) bring the database schema to head."""
    from storage.migrate import upgrade
    from streams.topics import create_topics

    create_topics(settings.kafka_brokers or "", settings.topics.values(), settings.kafka_partitions)
    if migrate:
        upgrade(settings.database_url)


def build_worker_app(settings: Settings, classifier_kind: str | None = None, model: Any = None) -> faust.App:
    """The Faust app with the agent attached (no side effects until it runs)."""
    app = create_app(settings)
    pipeline = build_pipeline(settings, make_client(classifier_kind, settings, model))
    deliveries = make_delivery_loop(settings, pipeline.store.engine)
    attach(app, settings, pipeline, deliveries=deliveries)

    @app.on_before_shutdown.connect  # type: ignore[misc]
    async def _close(app: faust.App, **_: Any) -> None:
        closers = [pipeline.outputs.close, pipeline.fetcher.close, pipeline.cache.close, pipeline.classifier.close]
        if deliveries is not None:
            closers.append(deliveries.sender.close)
        for closer in closers:
            try:
                await closer()
            except Exception as e:  # pragma: no cover - best effort on shutdown
                log.debug("close failed: %s", e)

    return app


def run_worker(app: faust.App, loglevel: str = "INFO") -> None:
    """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=False)
    worker.execute_from_commandline()
