from __future__ import annotations

import faust

from moodstream.config import Settings
from moodstream.kafka import aiokafka_config
from streams.app import app_config, create_app


def settings(**kw) -> Settings:
    return Settings(_env_file=None, kafka_brokers="a:9092, b:9093", **kw)


def test_settings_reach_the_faust_app():
    s = settings(kafka_partitions=7, consumer_group="grp", broker_rebalance_timeout_s=3, worker_web_port=7001)
    cfg = app_config(s)
    assert cfg["broker"] == ["kafka://a:9092", "kafka://b:9093"]
    assert cfg["topic_partitions"] == 7 and cfg["broker_rebalance_timeout"] == 3
    assert cfg["value_serializer"] == "raw" and cfg["web_port"] == 7001 and cfg["broker_credentials"] is None
    app = create_app(s)
    assert app.conf.id == "grp" and app.conf.broker_rebalance_timeout == 3 and app.conf.topic_partitions == 7


def test_sasl_credentials_reach_faust_and_aiokafka():
    s = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
                 kafka_sasl_username="u", kafka_sasl_password="p4ss")
    creds = app_config(s)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("u", "p4ss", "SCRAM-SHA-256")
    kc = aiokafka_config(s)
    assert kc["sasl_plain_password"] == "p4ss" and kc["security_protocol"] == "SASL_PLAINTEXT"
    assert kc["bootstrap_servers"] == ["a:9092", "b:9093"]


def test_worker_consumer_fetch_wait_comes_from_settings() -> None:
    """Faust hard-codes a 1.5 s fetch wait; the worker's consumer gets the setting instead (Tansu parks empty
    fetches for the whole wait, which was added to every post's latency)."""
    import asyncio

    from faust.transport.drivers import aiokafka as driver

    from moodstream.config import Settings
    from streams.app import create_app

    async def build() -> int:
        app = create_app(Settings(_env_file=None, kafka_brokers="127.0.0.1:9", broker_fetch_max_wait_ms=77))
        thread = driver.AIOKafkaConsumerThread(app.consumer, loop=asyncio.get_running_loop(),
                                               beacon=app.consumer.beacon)
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms

    assert asyncio.run(build()) == 77


def test_seek_to_committed_rewinds_partitions_with_no_commit() -> None:
    """aiokafka's ``seek_to_committed`` leaves a partition with no commit (or a commit of 0) where it is; Faust
    relies on it to re-read records it dropped during a rebalance, so those partitions go back to the log start."""
    import asyncio

    from streams.app import seek_to_committed_or_reset

    class FakeConsumer:
        def __init__(self) -> None:
            self.to_start: tuple[str, ...] = ()
            self.to_end: tuple[str, ...] = ()

        async def seek_to_committed(self) -> dict[str, int | None]:
            return {"p0": None, "p1": 12, "p2": 0}

        async def seek_to_beginning(self, *tps: str) -> None:
            self.to_start = tps

        async def seek_to_end(self, *tps: str) -> None:
            self.to_end = tps

    c = FakeConsumer()
    assert asyncio.run(seek_to_committed_or_reset(c, "earliest")) == {"p0": None, "p1": 12, "p2": 0}
    assert c.to_start == ("p0", "p2") and c.to_end == ()
    c = FakeConsumer()
    asyncio.run(seek_to_committed_or_reset(c, "latest"))
    assert c.to_start == () and c.to_end == ("p0", "p2")


def test_the_worker_app_rewinds_uncommitted_partitions() -> None:
    from faust.transport.drivers import aiokafka as driver

    create_app(settings())
    assert getattr(driver.AIOKafkaConsumerThread.seek_to_committed, "_moodstream_rewind", False)
