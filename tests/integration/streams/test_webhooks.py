"""Alert webhooks from the outbox to a real local HTTP receiver: both payloads and the secret header, a receiver
that is down and comes back (delivered once, after retries), and one that keeps failing (kept with its error)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from storage.outbox import deliveries
from streams.persist import Store
from streams.webhooks import DeliveryLoop, WebhookSender
from testkit.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

WS = datetime(2026, 5, 1, 12, tzinfo=UTC)



def alert(tag: str, direction: str = "down") -> dict:
    return {"id": f"{tag}:{WS.isoformat()}", "hashtag": tag, "window_start": WS, "mean_score": -0.45,
            "baseline": 0.3, "delta": -0.75, "volume": 40, "direction": direction, "raised_at": WS}


async def store_alerts(engine: Engine, alerts: list[dict]) -> None:
    await Store(engine).write_alerts(alerts, ("webhook",))


async def pass_until(loop: DeliveryLoop, done, passes: int = 200) -> None:
    """Run delivery passes (a short pause between them, as the worker's timer does) until ``done()``."""
    for _ in range(passes):
        await loop.run_once()
        if done():
            return
        await asyncio.sleep(0.05)


def test_json_and_slack_payloads_with_the_secret_header(engine) -> None:
    async def run() -> tuple[list, list]:
        with WebhookReceiver() as plain, WebhookReceiver() as slack:
            for receiver, fmt in ((plain, "json"), (slack, "slack")):
                await store_alerts(engine, [alert("launchday" if fmt == "json" else "mondays")])
                sender = WebhookSender(receiver.url, fmt, secret="s3cret", secret_header="X-Hook-Token")
                await DeliveryLoop(engine, sender).run_once()
                await sender.close()
            return plain.received, slack.received

    plain, slack = asyncio.run(run())
    assert len(plain) == 1 and len(slack) == 1
    assert plain[0]["headers"]["X-Hook-Token"] == "s3cret"
    body = plain[0]["json"]
    assert body["type"] == "moodstream.alert"
    assert body["alert"]["hashtag"] == "launchday" and body["alert"]["direction"] == "down"
    assert body["alert"]["volume"] == 40 and body["alert"]["window_start"] == WS.isoformat()
    text = slack[0]["json"]["text"]
    assert slack[0]["headers"]["X-Hook-Token"] == "s3cret"
    assert "#mondays turned negative" in text and "-0.45" in text and "40 posts" in text
    assert slack[0]["json"]["blocks"][0]["text"]["text"] == text


def test_receiver_down_then_back_gets_every_alert_once(engine) -> None:
    receiver = WebhookReceiver()  # not started: connections are refused

    async def run() -> None:
        await store_alerts(engine, [alert("a"), alert("b", "up")])
        loop = DeliveryLoop(engine, WebhookSender(receiver.url, timeout_s=2), max_attempts=50, retry_max_s=0.2,
                            retry_base_s=0.05)
        counts = await loop.run_once()
        assert counts == {"delivered": 0, "retrying": 2, "failed": 0}
        rows = deliveries(engine)
        assert {r["state"] for r in rows} == {"retrying"}
        assert all("ConnectError" in r["last_error"] for r in rows)
        await pass_until(loop, lambda: all(r["attempts"] >= 3 for r in deliveries(engine)))  # still down
        receiver.start()
        await pass_until(loop, lambda: all(r["state"] == "delivered" for r in deliveries(engine)))
        await loop.run_once()
        await loop.sender.close()

    try:
        asyncio.run(run())
    finally:
        receiver.stop()
    rows = deliveries(engine)
    assert [r["state"] for r in rows] == ["delivered", "delivered"]
    assert all(r["attempts"] >= 4 and r["last_error"] is None for r in rows)
    assert sorted(m["json"]["alert"]["hashtag"] for m in receiver.received) == ["a", "b"]  # once each


def test_a_delivery_that_keeps_failing_is_kept_with_its_last_error(engine) -> None:
    async def run() -> list:
        with WebhookReceiver(status=500) as receiver:
            await store_alerts(engine, [alert("c")])
            loop = DeliveryLoop(engine, WebhookSender(receiver.url), max_attempts=3, retry_max_s=0.1,
                                retry_base_s=0.05)
            await pass_until(loop, lambda: deliveries(engine)[0]["state"] == "failed")
            await pass_until(loop, lambda: False, passes=5)  # a failed delivery is not tried again
            await loop.sender.close()
            return receiver.received

    received = asyncio.run(run())
    (row,) = deliveries(engine)
    assert (row["state"], row["attempts"]) == ("failed", 3)
    assert row["last_error"].startswith("RuntimeError: HTTP 500")
    assert len(received) == 3


def test_a_real_worker_delivers_its_alert_once_the_receiver_comes_back(stream_env, worker_factory, db) -> None:
    """Posts whose windows are already closed: four happy windows of #launch, then an angry one. The worker raises
    one alert; its webhook is refused while the receiver is down, retried, and arrives once it is back."""
    from datetime import timedelta

    from moodstream.clock import window_start
    from testkit.stream_helpers import publish, rows, wait_for

    receiver = WebhookReceiver()  # down at first
    env = {**stream_env, "MOODSTREAM_ALERT_MIN_VOLUME": "3", "MOODSTREAM_ALERT_WEBHOOK_URL": receiver.url,
           "MOODSTREAM_ALERT_WEBHOOK_FORMAT": "slack", "MOODSTREAM_ALERT_WEBHOOK_SECRET": "hush",
           "MOODSTREAM_ALERT_WEBHOOK_RETRY_MAX_S": "1"}
    first = window_start(datetime.now(UTC), 60) - timedelta(minutes=10)
    happy, angry = "I love this, what a wonderful happy day! #launch", "This is awful, I hate it, so angry #launch"
    posts = [{"id": f"w{w}-{i}", "created_at": (first + timedelta(minutes=w, seconds=5 + i)).isoformat(),
              "text": happy if w < 4 else angry} for w in range(5) for i in range(4)]
    def states() -> list[str]:
        try:
            return [r[0] for r in rows(db, "select state from alert_deliveries")]
        except Exception:  # the worker has not migrated the database yet
            return []

    worker = worker_factory(env)
    publish(env, posts)
    try:
        wait_for(lambda: "retrying" in states(), 120, lambda: f"a failed delivery\n{worker.tail()}", worker=worker)
        receiver.start()
        wait_for(lambda: states() == ["delivered"], 60,
                 lambda: f"the delivery\n{rows(db, 'select * from alert_deliveries')}\n{worker.tail()}",
                 worker=worker)
    finally:
        receiver.stop()
    (alert_id, attempts, err), = rows(db, "select alert_id, attempts, last_error from alert_deliveries")
    assert alert_id.startswith("launch:") and attempts >= 2 and err is None
    assert len(receiver.received) == 1
    msg = receiver.received[0]
    assert msg["headers"]["X-Moodstream-Secret"] == "hush"
    assert "#launch turned negative" in msg["json"]["text"]
