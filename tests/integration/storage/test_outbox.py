"""The alert outbox on both backends: an alert and its delivery rows in one transaction, claims and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage.outbox import claim_due, deliveries, mark_delivered, mark_failed
from storage.repository import insert_alerts
from storage.tables import AlertDeliveryRow, AlertRow

pytestmark = pytest.mark.integration

WS = datetime(2026, 5, 1, 12, tzinfo=UTC)


def alert(tag: str = "cats") -> dict:
    return {"id": f"{tag}:{WS.isoformat()}", "hashtag": tag, "window_start": WS, "mean_score": -0.5,
            "baseline": 0.2, "delta": -0.7, "volume": 12, "direction": "down", "raised_at": WS}


def count(engine, table) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table.__table__)).scalar_one())


def test_alert_and_its_delivery_are_written_together_once(engine) -> None:
    assert insert_alerts(engine, [alert()], sinks=["webhook"]) == 1
    assert insert_alerts(engine, [alert(), alert("dogs")], sinks=["webhook"]) == 1  # a replay adds no delivery
    rows = deliveries(engine)
    assert [(r["alert_id"].split(":")[0], r["sink"], r["state"], r["attempts"]) for r in rows] == [
        ("cats", "webhook", "pending", 0), ("dogs", "webhook", "pending", 0)]
    assert insert_alerts(engine, [alert("eels")]) == 1  # no sink configured: no outbox row
    assert count(engine, AlertDeliveryRow) == 2


def test_a_delivery_row_that_cannot_be_written_rolls_the_alert_back(engine) -> None:
    # FAULT: a sink of None violates NOT NULL, the one way to make the outbox insert fail inside the transaction.
    with pytest.raises(IntegrityError):
        insert_alerts(engine, [alert()], sinks=[None])  # type: ignore[list-item]
    assert count(engine, AlertRow) == 0 and count(engine, AlertDeliveryRow) == 0


def test_claim_leases_and_outcomes(engine) -> None:
    insert_alerts(engine, [alert("a"), alert("b")], sinks=["webhook"])
    now = datetime.now(UTC)
    claimed = claim_due(engine, "webhook", now, lease_s=60)
    assert [(c["hashtag"], c["attempts"]) for c in claimed] == [("a", 0), ("b", 0)]
    assert claimed[0]["window_start"] == WS and claimed[0]["direction"] == "down"
    assert claim_due(engine, "webhook", now) == []  # leased: a second claimer gets nothing
    assert claim_due(engine, "other", now + timedelta(hours=1)) == []
    mark_delivered(engine, claimed[0]["delivery_id"], now)
    mark_failed(engine, claimed[1]["delivery_id"], "ConnectError: refused", now, now + timedelta(seconds=5))
    a, b = deliveries(engine)
    assert (a["state"], a["attempts"], a["last_error"]) == ("delivered", 1, None) and a["delivered_at"] is not None
    assert (b["state"], b["attempts"], b["last_error"]) == ("retrying", 1, "ConnectError: refused")
    assert claim_due(engine, "webhook", now + timedelta(seconds=1)) == []  # not due yet
    again = claim_due(engine, "webhook", now + timedelta(seconds=6))
    assert [(c["hashtag"], c["attempts"]) for c in again] == [("b", 1)]
    mark_failed(engine, again[0]["delivery_id"], "HTTP 500: boom", now, None)
    b = deliveries(engine)[1]
    assert (b["state"], b["attempts"], b["last_error"]) == ("failed", 2, "HTTP 500: boom")
    assert claim_due(engine, "webhook", now + timedelta(days=1)) == []  # failed for good is never claimed again
