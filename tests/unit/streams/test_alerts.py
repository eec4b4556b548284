"""The alert rule: a closed window against its trailing baseline."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.alerts import evaluate


def test_alert_rule():
    row = {"hashtag": "x", "window_start": datetime(2024, 1, 1, tzinfo=UTC), "volume": 20, "mean_score": -0.5}
    a = evaluate(row, [0.2, 0.1, 0.3], min_volume=10, threshold=0.4)
    assert a and a["direction"] == "down" and round(a["delta"], 3) == -0.7 and a["id"].startswith("x:2024-01-01")
    assert evaluate({**row, "volume": 5}, [0.2] * 3, min_volume=10, threshold=0.4) is None
    assert evaluate(row, [-0.4] * 3, min_volume=10, threshold=0.4) is None
    assert evaluate(row, [0.5], min_volume=10, threshold=0.4) is None  # too little history
