"""The alert outbox: delivery rows written in the alert's transaction, claimed and settled by a delivery loop.

States: ``pending`` (never tried), ``retrying`` (failed, another attempt is due at ``next_attempt_at``),
``delivered``, ``failed`` (gave up after the last allowed attempt; kept with its last error). A claim pushes a
row's ``next_attempt_at`` forward by a lease, so two workers do not send the same row at once (PostgreSQL also
skips rows another claim has locked); a worker that dies mid-send leaves the row due again once the lease ends,
so every alert is delivered at least once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from moodstream.clock import as_utc
from storage.engine import transaction
from storage.sqlutil import insert
from storage.tables import AlertDeliveryRow, AlertRow

DUE_STATES = ("pending", "retrying")
ERROR_MAX_CHARS = 2000


def enqueue(conn: Connection, alert_ids: Iterable[str], sinks: Iterable[str], now: datetime) -> None:
    """Delivery rows for ``alert_ids`` × ``sinks`` (inside the caller's transaction); existing pairs are kept."""
    d = AlertDeliveryRow.__table__
    rows = [{"alert_id": a, "sink": s, "state": "pending", "attempts": 0, "next_attempt_at": now,
             "last_error": None, "created_at": now, "updated_at": now, "delivered_at": None}
            for a in alert_ids for s in sinks]
    if rows:
        conn.execute(insert(conn, d).on_conflict_do_nothing(index_elements=[d.c.alert_id, d.c.sink]), rows)


def claim_due(engine: Engine, sink: str, now: datetime, *, limit: int = 20, lease_s: float = 60.0
              ) -> list[dict[str, Any]]:
    """Up to ``limit`` due deliveries of ``sink``, oldest first, leased for ``lease_s``: each one's ``delivery_id``,
    ``attempts`` (so far) and its alert's fields."""
    d, a = AlertDeliveryRow.__table__, AlertRow.__table__
    with transaction(engine) as conn:
        q = (select(d.c.id).where(d.c.sink == sink, d.c.state.in_(DUE_STATES), d.c.next_attempt_at <= now)
             .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list(conn.execute(q).scalars())
        if not ids:
            return []
        conn.execute(update(d).where(d.c.id.in_(ids)).values(next_attempt_at=now + timedelta(seconds=lease_s)))
        rows = conn.execute(
            select(d.c.id.label("delivery_id"), d.c.attempts, a.c.id, a.c.hashtag, a.c.window_start, a.c.mean_score,
                   a.c.baseline, a.c.delta, a.c.volume, a.c.direction, a.c.raised_at)
            .select_from(d.join(a, a.c.id == d.c.alert_id)).where(d.c.id.in_(ids)).order_by(d.c.id)).mappings()
        out = [dict(r) for r in rows]
    for r in out:
        for k in ("window_start", "raised_at"):
            r[k] = as_utc(r[k])
    return out


def mark_delivered(engine: Engine, delivery_id: int, now: datetime) -> None:
    d = AlertDeliveryRow.__table__
    with transaction(engine) as conn:
        conn.execute(update(d).where(d.c.id == delivery_id).values(
            state="delivered", attempts=d.c.attempts + 1, delivered_at=now, updated_at=now, last_error=None))


def mark_failed(engine: Engine, delivery_id: int, error: str, now: datetime, retry_at: datetime | None) -> None:
    """Record a failed attempt: due again at ``retry_at``, or ``failed`` for good when it is None."""
    d = AlertDeliveryRow.__table__
    values: dict[str, Any] = {"attempts": d.c.attempts + 1, "last_error": error[:ERROR_MAX_CHARS], "updated_at": now,
                              "state": "retrying" if retry_at is not None else "failed"}
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    with transaction(engine) as conn:
        conn.execute(update(d).where(d.c.id == delivery_id).values(**values))


def deliveries(engine: Engine, alert_id: str | None = None) -> list[dict[str, Any]]:
    """Every delivery row (of one alert when given), by id."""
    d = AlertDeliveryRow.__table__
    q = select(d).order_by(d.c.id)
    if alert_id is not None:
        q = q.where(d.c.alert_id == alert_id)
    with transaction(engine) as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
