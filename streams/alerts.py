"""Sentiment-shift alerts per hashtag: a closed window's mean score against the mean of its trailing windows."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from moodstream.clock import as_utc
from streams import metrics
from streams.outputs import Outputs
from streams.persist import Store

log = logging.getLogger(__name__)


def evaluate(row: dict[str, Any], baseline_scores: list[float], *, min_volume: int, threshold: float,
             min_baseline: int = 3) -> dict[str, Any] | None:
    """The alert a window raises against its baseline, or None. Pure: the numbers in, the alert out."""
    volume = int(row.get("volume") or 0)
    if volume < min_volume or len(baseline_scores) < min_baseline:
        return None
    baseline = sum(baseline_scores) / len(baseline_scores)
    mean = float(row["mean_score"])
    delta = mean - baseline
    if abs(delta) < threshold:
        return None
    start = as_utc(row["window_start"])
    tag = row["hashtag"]
    return {
        "id": f"{tag}:{start.isoformat()}"[:200],
        "hashtag": tag,
        "window_start": start,
        "mean_score": round(mean, 6),
        "baseline": round(baseline, 6),
        "delta": round(delta, 6),
        "volume": volume,
        "direction": "up" if delta > 0 else "down",
        "raised_at": datetime.now(UTC),
        "baseline_windows": len(baseline_scores),
    }


class AlertDetector:
    """Checks closed per-hashtag windows; alerts go to the alerts table (idempotent id, with their outbox rows in
    the same transaction) and topic."""

    def __init__(self, store: Store, outputs: Outputs, topic: str, *, window_s: int, baseline_windows: int,
                 min_volume: int, threshold: float, sinks: tuple[str, ...] = ()) -> None:
        self.store = store
        self.sinks = sinks  # outbox rows written with each alert (e.g. "webhook"; see streams.webhooks)
        self.outputs = outputs
        self.topic = topic
        self.window_s = window_s
        self.baseline_windows = baseline_windows
        self.min_volume = min_volume
        self.threshold = threshold

    async def check(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Alerts raised by these closed per-hashtag windows (one baseline read for all of them)."""
        busy = [r for r in rows if int(r.get("volume") or 0) >= self.min_volume]
        if not busy:
            return []
        keys = [(r["hashtag"], as_utc(r["window_start"])) for r in busy]
        baselines = await self.store.trailing_scores(keys, self.baseline_windows, self.window_s)
        out: list[dict[str, Any]] = []
        for row, key in zip(busy, keys, strict=True):
            alert = evaluate(row, baselines.get(key, []), min_volume=self.min_volume, threshold=self.threshold,
                             min_baseline=min(3, self.baseline_windows))
            if alert:
                out.append(alert)
        if out:
            await self.store.write_alerts([{k: v for k, v in a.items() if k != "baseline_windows"} for a in out],
                                          self.sinks)
            await self.outputs.send_many(self.topic, [(a["id"].encode(), json.dumps(a, default=str).encode())
                                                      for a in out])
            metrics.alerts.inc(len(out))
            for a in out:
                log.info("alert: #%s %s %.2f vs baseline %.2f (n=%d)", a["hashtag"], a["direction"],
                         a["mean_score"], a["baseline"], a["volume"])
        return out
