"""Webhook payloads and the retry schedule (pure parts; delivery is tested against a real receiver in
tests/integration/streams/test_webhooks.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from streams.webhooks import error_text, json_payload, payload, retry_delay, slack_payload, summary

ALERT = {"id": "coffee:2026-05-01T12:00:00+00:00", "hashtag": "coffee", "window_start": datetime(2026, 5, 1, 12,
         tzinfo=UTC), "mean_score": 0.62, "baseline": -0.1, "delta": 0.72, "volume": 31, "direction": "up",
         "raised_at": datetime(2026, 5, 1, 12, 1, 10, tzinfo=UTC), "delivery_id": 7, "attempts": 2}


def test_json_payload_is_the_alert_only():
    body = json_payload(ALERT)
    assert body["type"] == "moodstream.alert"
    assert body["alert"]["window_start"] == "2026-05-01T12:00:00+00:00"
    assert "delivery_id" not in body["alert"] and "attempts" not in body["alert"]
    json.dumps(body)  # serialisable as it is
    assert payload(ALERT, "json") == body


def test_slack_payload_reads_as_a_sentence():
    text = summary(ALERT)
    assert text == ("#coffee turned positive: mean sentiment +0.62 vs baseline -0.10 (+0.72) over 31 posts in the "
                    "window at 12:00 UTC")
    msg = slack_payload(ALERT)
    assert msg["text"].startswith(":chart_with_upwards_trend:") and text in msg["text"]
    assert msg["blocks"][0]["text"]["type"] == "mrkdwn"
    assert payload({**ALERT, "direction": "down"}, "slack")["text"].startswith(":chart_with_downwards_trend:")


def test_retry_delay_doubles_up_to_the_cap_with_jitter():
    for attempt, nominal in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (12, 300.0), (30, 300.0)):
        for _ in range(20):
            assert 0.75 * nominal <= retry_delay(attempt, cap_s=300.0) <= 1.25 * nominal


def test_error_text_is_one_line_with_the_kind():
    assert error_text(RuntimeError("HTTP 503: busy\nmore")) == "RuntimeError: HTTP 503: busy"
    assert error_text(TimeoutError()) == "TimeoutError"
