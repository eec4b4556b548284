"""Per-minute tumbling trend windows, global (``hashtag = ''``) and per hashtag.

After each persisted batch the windows it touched are re-derived from the stored predictions
(``recompute_trend_windows``: exact and idempotent, so replays never double count). A window is published
to the trends topic once it is closed (its end plus ``grace_s`` has passed) and again only if late data
changed it; closed per-hashtag windows feed the alert detector.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from moodstream.clock import as_utc, window_start
from streams.alerts import AlertDetector
from streams.outputs import Outputs
from streams.persist import Store

log = logging.getLogger(__name__)


def window_message(row: dict[str, Any], window_s: int) -> tuple[bytes, bytes]:
    """(key, value) for the trends topic; key = ``window_start|hashtag`` so consumers can keep the latest."""
    start = as_utc(row["window_start"])
    tag = row.get("hashtag") or ""
    body = {**row, "window_start": start.isoformat(), "hashtag": tag, "window_s": row.get("window_s", window_s),
            "window_end": datetime.fromtimestamp(start.timestamp() + window_s, UTC).isoformat()}
    return f"{start.isoformat()}|{tag}".encode(), json.dumps(body, default=str).encode()


class TrendTracker:
    """Remembers the window starts that batches touched and are not yet published; publishes closed ones.

    The rows themselves are read when a window is published, not after every batch: a minute holds hundreds of
    hashtag windows, and reading them all back after each batch cost the worker more than writing them."""

    def __init__(self, store: Store, outputs: Outputs, topic: str, window_s: int = 60, grace_s: float = 5.0,
                 alerts: AlertDetector | None = None) -> None:
        self.store = store
        self.outputs = outputs
        self.topic = topic
        self.window_s = window_s
        self.grace_s = grace_s
        self.alerts = alerts
        self._pending: set[datetime] = set()
        self._lock = asyncio.Lock()

    async def update(self, created_ats: Iterable[datetime]) -> set[datetime]:
        """Note the windows these posts fall in (recomputing them first unless the upsert already did); returns
        their starts."""
        starts = {as_utc(window_start(t, self.window_s)) for t in created_ats}
        if not starts:
            return starts
        if self.store.window_s != self.window_s:  # the upsert recomputes only windows of its own length
            await self.store.recompute_windows(starts, self.window_s)
        async with self._lock:
            self._pending |= starts
        return starts

    def is_closed(self, start: datetime, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return start.timestamp() + self.window_s + self.grace_s <= now

    async def flush_closed(self, now: float | None = None) -> list[dict[str, Any]]:
        """Publish every window (global and per hashtag) of each pending closed start, as stored now, then raise
        alerts on them; returns the published rows."""
        async with self._lock:
            closed = sorted(s for s in self._pending if self.is_closed(s, now))
            if not closed:
                return []
            rows = await self.store.read_windows(closed, self.window_s)
            if rows:
                await self.outputs.send_many(self.topic, [window_message(r, self.window_s) for r in rows])
            self._pending.difference_update(closed)
        if self.alerts is not None:
            await self.alerts.check([r for r in rows if r.get("hashtag")])
        log.debug("published %d closed trend windows", len(rows))
        return rows

    @property
    def pending(self) -> int:
        return len(self._pending)
