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


def create_app(settings: Settings, **overrides: Any) -> faust.App:
    """A Faust app whose id (= consumer group) is ``settings.consumer_group``."""
    return faust.App(settings.consumer_group, **app_config(settings, **overrides))
