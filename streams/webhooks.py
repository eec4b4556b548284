"""Alert webhooks: the payloads (generic JSON or Slack-compatible) and the outbox delivery loop.

The alert detector writes each alert and its delivery row in one transaction (``storage.outbox``). The loop
here runs beside the posts agent (a Faust timer, its own coroutine, so a slow or dead receiver never holds up a
batch): it claims due deliveries, POSTs them, and records the outcome. A failed attempt is retried with capped
exponential backoff (``streams.retry.backoff_delays``); after ``max_attempts`` the row is kept as ``failed`` with
its last error, which the dashboard's Alerts page shows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from moodstream.config import Settings
from storage.outbox import claim_due, mark_delivered, mark_failed
from streams import metrics
from streams.retry import backoff_delays

log = logging.getLogger(__name__)

SINK = "webhook"


def json_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The generic payload: the alert's fields, times as ISO-8601."""
    keys = ("id", "hashtag", "direction", "mean_score", "baseline", "delta", "volume", "window_start", "raised_at")
    out = {k: alert[k] for k in keys if k in alert}
    for k in ("window_start", "raised_at"):
        if isinstance(out.get(k), datetime):
            out[k] = out[k].isoformat()
    return {"type": "moodstream.alert", "alert": out}


def summary(alert: dict[str, Any]) -> str:
    """One line a person reads: which hashtag turned which way, by how much, on how many posts."""
    turn = "turned negative" if alert["direction"] == "down" else "turned positive"
    start = alert["window_start"]
    when = start.strftime("%H:%M UTC") if isinstance(start, datetime) else str(start)
    return (f"#{alert['hashtag']} {turn}: mean sentiment {alert['mean_score']:+.2f} vs baseline "
            f"{alert['baseline']:+.2f} ({alert['delta']:+.2f}) over {alert['volume']} posts in the window at {when}")


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus one section block)."""
    icon = ":chart_with_downwards_trend:" if alert["direction"] == "down" else ":chart_with_upwards_trend:"
    text = f"{icon} moodstream alert: {summary(alert)}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def payload(alert: dict[str, Any], fmt: str) -> dict[str, Any]:
    return slack_payload(alert) if fmt == "slack" else json_payload(alert)


def retry_delay(attempts: int, cap_s: float, base_s: float = 1.0) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones (1, 2, 4, ... capped, with jitter)."""
    return next(itertools.islice(backoff_delays(base_s=base_s, cap_s=cap_s), max(attempts - 1, 0), None))


class WebhookSender:
    """POSTs alerts to one URL, with the secret header when there is one; raises on anything but a 2xx."""

    def __init__(self, url: str, fmt: str = "json", secret: str | None = None,
                 secret_header: str = "X-Moodstream-Secret", timeout_s: float = 5.0) -> None:
        self.url = url
        self.fmt = fmt
        self.headers = {"User-Agent": "moodstream-alerts"}
        if secret:
            self.headers[secret_header] = secret
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def send(self, alert: dict[str, Any]) -> None:
        r = await self.client.post(self.url, json=payload(alert, self.fmt), headers=self.headers)
        if not r.is_success:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

    async def close(self) -> None:
        await self.client.aclose()


def error_text(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class DeliveryLoop:
    """Claims due webhook deliveries from the outbox and settles each one (delivered, retry later, or failed)."""

    def __init__(self, engine: Engine, sender: WebhookSender, *, max_attempts: int = 20, retry_max_s: float = 300.0,
                 batch: int = 20, lease_s: float | None = None, retry_base_s: float = 1.0) -> None:
        self.engine = engine
        self.sender = sender
        self.max_attempts = max_attempts
        self.retry_max_s = retry_max_s
        self.retry_base_s = retry_base_s
        self.batch = batch
        self.lease_s = lease_s if lease_s is not None else max(60.0, sender.client.timeout.read or 5.0) * 2
        self._lock = asyncio.Lock()

    async def run_once(self) -> dict[str, int]:
        """One pass over the due deliveries; counts of ``delivered``, ``retrying`` and ``failed``."""
        counts = {"delivered": 0, "retrying": 0, "failed": 0}
        if self._lock.locked():  # the previous pass is still sending
            return counts
        async with self._lock:
            due = await asyncio.to_thread(claim_due, self.engine, SINK, datetime.now(UTC), limit=self.batch,
                                          lease_s=self.lease_s)
            for item in due:
                outcome = await self._deliver(item)
                counts[outcome] += 1
                metrics.alert_deliveries.labels(outcome).inc()
        return counts

    async def _deliver(self, item: dict[str, Any]) -> str:
        attempt = int(item["attempts"]) + 1
        try:
            await self.sender.send(item)
        except Exception as e:  # the receiver is down, slow or says no: record it, try again later
            now = datetime.now(UTC)
            err = error_text(e)
            retry_at = None
            if attempt < self.max_attempts:
                retry_at = now + timedelta(seconds=retry_delay(attempt, self.retry_max_s, self.retry_base_s))
            await asyncio.to_thread(mark_failed, self.engine, item["delivery_id"], err, now, retry_at)
            if retry_at is None:
                log.error("alert %s: webhook delivery failed for good after %d attempts: %s", item["id"], attempt, err)
                return "failed"
            if attempt == 1:
                log.warning("alert %s: webhook delivery failed (%s); retrying with backoff", item["id"], err)
            return "retrying"
        await asyncio.to_thread(mark_delivered, self.engine, item["delivery_id"], datetime.now(UTC))
        log.info("alert %s delivered to the webhook (attempt %d)", item["id"], attempt)
        return "delivered"


def make_delivery_loop(settings: Settings, engine: Engine) -> DeliveryLoop | None:
    """The loop for the configured webhook, or None when ``alert_webhook_url`` is unset."""
    if not settings.alert_webhook_url:
        return None
    secret = settings.alert_webhook_secret.get_secret_value() if settings.alert_webhook_secret else None
    sender = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_format, secret,
                           settings.alert_webhook_secret_header, settings.alert_webhook_timeout_s)
    return DeliveryLoop(engine, sender, max_attempts=settings.alert_webhook_max_attempts,
                        retry_max_s=settings.alert_webhook_retry_max_s)
