"""The Faust application, built from ``Settings``: brokers, consumer group, rebalance timing, credentials."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path
from typing import Any

import faust

from moodstream.config import Settings


def broker_urls(settings: Settings) -> list[str]:
    """``kafka://host:port`` for every broker in ``settings.kafka_brokers``."""
    if not settings.kafka_brokers:
        raise ValueError("MOODSTREAM_KAFKA_BROKERS is not set")
    return [f"kafka://{b.strip()}" for b in settings.kafka_brokers.split(",") if b.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context when the security protocol uses SSL, else None."""
    if "SSL" not in settings.kafka_security_protocol:
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
        certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
        keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
    )


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


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for plain aiokafka clients (producers, admin) with the same brokers and credentials."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": [u.removeprefix("kafka://") for u in broker_urls(settings)],
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol != "PLAINTEXT":
        cfg["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password:
            cfg["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return cfg


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
