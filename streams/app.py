"""The Faust application, built from ``Settings``: brokers, consumer group, rebalance timing, credentials."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import faust

from moodstream.config import Settings
from moodstream.kafka import bootstrap_servers, ssl_context


def broker_urls(settings: Settings) -> list[str]:
    """``kafka://host:port`` for every broker in ``settings.kafka_brokers``."""
    return [f"kafka://{b}" for b in bootstrap_servers(settings)]


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust ``broker_credentials`` for the configured security protocol (None for PLAINTEXT)."""
    proto = settings.kafka_security_protocol
    if proto == "PLAINTEXT":
        return None
    ctx = ssl_context(settings)
    if proto == "SSL":
        return faust.SSLCredentials(ctx)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=password,
                                 mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=ctx)


def _faust_root() -> Path:
    """Where Faust keeps its (unused: memory store) data directory: out of the working tree."""
    root = Path(tempfile.gettempdir()) / "moodstream-faust"
    root.mkdir(parents=True, exist_ok=True)
    return root


def app_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Everything passed to ``faust.App`` (a plain dict, so a test can check the settings reach it)."""
    cfg: dict[str, Any] = {
        "broker": broker_urls(settings),
        "broker_credentials": faust_credentials(settings),
        "broker_rebalance_timeout": settings.broker_rebalance_timeout_s,
        "broker_session_timeout": settings.broker_session_timeout_s,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval_s,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "topic_partitions": settings.kafka_partitions,
        "topic_replication_factor": 1,
        "value_serializer": "raw",
        "key_serializer": "raw",
        "web_port": settings.worker_web_port,
        "web_enabled": settings.worker_web_port > 0,
        "store": "memory://",
        "datadir": str(_faust_root() / "{conf.id}"),
        "producer_max_request_size": max(1_048_576, settings.image_max_bytes * 2),
        "consumer_max_fetch_size": max(4_194_304, settings.image_max_bytes * 2),
    }
    cfg.update(overrides)
    return cfg


_FETCH_MAX_WAIT_MS = {"value": 100}


def set_fetch_max_wait(ms: int) -> None:
    """Make Faust's worker consumer wait at most ``ms`` for data in one fetch.

    Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting for it. A broker that answers a
    fetch that found no data only once that wait is over (Tansu does; measured: p50 383 ms / p99 737 ms from produce
    to consume at 7 messages/s, against 22 / 52 ms with 100 ms) adds up to that much latency to every post that
    arrives while a fetch is parked. The factory is wrapped once; the value applies to consumers created after.
    """
    from faust.transport.drivers import aiokafka as driver

    _FETCH_MAX_WAIT_MS["value"] = int(ms)
    factory = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(factory, "_moodstream_fetch_wait", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = factory(self, transport)
        consumer._fetch_max_wait_ms = _FETCH_MAX_WAIT_MS["value"]  # read by AIOKafkaConsumer.start()
        return consumer

    create_worker_consumer._moodstream_fetch_wait = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


async def seek_to_committed_or_reset(consumer: Any, reset: str) -> dict[Any, int | None]:
    """``AIOKafkaConsumer.seek_to_committed``, completed: a partition with no committed offset is reset by the
    ``reset`` policy (``earliest``: the log start, ``latest``: the end) instead of being left where it is.

    aiokafka seeks only the partitions whose committed offset is above 0. Faust calls this to rewind after it
    dropped records it had already taken from aiokafka (fetched while the flow was stopped for a rebalance, or
    from the previous generation): with no commit on a partition yet, the rewind did nothing and the dropped
    records were never read again. Seen as a rebalance loss: a worker SIGKILLed before its first commit, and the
    survivor took its partitions and started them at the high watermark.
    """
    committed: dict[Any, int | None] = await consumer.seek_to_committed()
    fresh = [tp for tp, offset in committed.items() if not offset]  # None (no commit) or 0 (aiokafka skips it)
    if fresh and reset == "earliest":
        await consumer.seek_to_beginning(*fresh)
    elif fresh and reset == "latest":
        await consumer.seek_to_end(*fresh)
    return committed


def rewind_uncommitted_partitions() -> None:
    """Make Faust's "seek to committed" (``Consumer.perform_seek``: on every assignment, and whenever records
    were dropped while the flow was stopped) also rewind partitions with no committed offset. Wrapped once."""
    from faust.transport.drivers import aiokafka as driver

    current = driver.AIOKafkaConsumerThread.seek_to_committed
    if getattr(current, "_moodstream_rewind", False):
        return

    async def seek_to_committed(self: Any) -> Any:
        consumer = self._ensure_consumer()
        reset = str(self.app.conf.consumer_auto_offset_reset)
        return await self.call_thread(seek_to_committed_or_reset, consumer, reset)

    seek_to_committed._moodstream_rewind = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


def create_app(settings: Settings, **overrides: Any) -> faust.App:
    """A Faust app whose id (= consumer group) is ``settings.consumer_group``."""
    set_fetch_max_wait(settings.broker_fetch_max_wait_ms)
    rewind_uncommitted_partitions()
    return faust.App(settings.consumer_group, **app_config(settings, **overrides))
