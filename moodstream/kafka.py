"""Kafka client configuration from ``Settings``: brokers, TLS and SASL, shared by every client we build."""

from __future__ import annotations

import ssl
from typing import Any

from moodstream.config import Settings


def bootstrap_servers(settings: Settings) -> list[str]:
    """``host:port`` of every broker in ``settings.kafka_brokers``."""
    if not settings.kafka_brokers:
        raise ValueError("MOODSTREAM_KAFKA_BROKERS is not set")
    return [b.strip() for b in settings.kafka_brokers.split(",") if b.strip()]


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


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (producers, consumers, admin) with brokers and credentials."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
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
