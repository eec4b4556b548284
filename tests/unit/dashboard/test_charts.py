"""Every chart builds a valid Vega-Lite spec, also on empty data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard import charts
from moodstream.labels import EMOTIONS, SENTIMENTS


def test_charts_build_valid_specs() -> None:
    now = datetime.now(UTC)
    buckets = [now - timedelta(hours=h) for h in range(3)]
    sent = pd.DataFrame({"bucket": buckets, "negative": [1, 2, 3], "neutral": [0, 1, 0], "positive": [4, 0, 1],
                         "volume": [5, 3, 4], "mean_score": [0.5, -0.4, -0.2]})
    for chart in charts.sentiment_trend(sent, "t"):
        assert chart.to_dict()
    emo = pd.DataFrame({"bucket": buckets, **{e: [1, 0, 2] for e in EMOTIONS}, "volume": [7, 0, 14]})
    assert charts.emotion_mix(emo, "e").to_dict()
    assert charts.emotion_shares_by_modality({"text": dict.fromkeys(EMOTIONS, 1)}).to_dict()
    tp = pd.DataFrame({"bucket": buckets, "processed": [5, 3, 4], "cached": [1, 0, 2]})
    assert charts.throughput(tp).to_dict() and charts.throughput(tp.iloc[:0]).to_dict()
    probs = {"fused": dict.fromkeys(SENTIMENTS, 1 / 3), "text": None, "image": dict.fromkeys(SENTIMENTS, 0.2)}
    spec = charts.probabilities(probs, SENTIMENTS, "p").to_dict()
    assert spec["mark"]["type"] == "bar"
