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


def _frames() -> dict[str, pd.DataFrame]:
    now = datetime.now(UTC)
    buckets = [now - timedelta(minutes=m) for m in range(3)]
    return {
        "sent": pd.DataFrame({"bucket": buckets, "negative": [1, 2, 3], "neutral": [0, 1, 0], "positive": [4, 0, 1],
                              "volume": [5, 3, 4], "mean_score": [0.5, -0.4, -0.2]}),
        "flags": pd.DataFrame({"bucket": buckets, "volume": [5, 3, 4], "uncertain": [1, 0, 2], "conflict": [0, 1, 0],
                               "uncertain_rate": [0.2, 0.0, 0.5], "conflict_rate": [0.0, 1 / 3, 0.0]}),
        "emo": pd.DataFrame({"bucket": buckets, **{e: [1, 0, 2] for e in EMOTIONS}, "volume": [7, 0, 14]}),
        "tp": pd.DataFrame({"bucket": buckets, "processed": [5, 3, 4], "cached": [1, 0, 2]}),
    }


def _page_charts() -> list:
    f = _frames()
    probs = {"fused": dict.fromkeys(SENTIMENTS, 1 / 3), "text": None, "image": dict.fromkeys(SENTIMENTS, 0.2)}
    return [*charts.sentiment_panels(f["sent"], "t", "minute"), charts.flag_rates(f["flags"], "minute"),
            charts.emotion_mix(f["emo"], "e", bucket="minute"),
            charts.emotion_mix(f["emo"], "e", height=charts.SMALL_HEIGHT, legend=False),
            charts.emotion_shares_by_modality({"text": dict.fromkeys(EMOTIONS, 1)}), charts.throughput(f["tp"]),
            charts.probabilities(probs, SENTIMENTS, "p")]


def test_every_page_chart_has_a_readable_height() -> None:
    """Each chart sets its plot height (>= 150 px) and Streamlit gets that plus room for title, legend and axis
    (a top legend in a box of the spec's height squeezed the share chart to ~20 px)."""
    for chart in _page_charts():
        spec = chart.to_dict()
        heights = [spec.get("height"), *(layer.get("height") for layer in spec.get("layer", []))]
        assert any(isinstance(h, int) and h >= 150 for h in heights), spec.get("title")
        assert charts.display_height(chart) >= charts.plot_height(chart) + charts.CHROME
        if charts.has_top_legend(chart):
            assert charts.display_height(chart) == charts.plot_height(chart) + charts.CHROME + charts.LEGEND_TOP


def test_axes_name_their_units() -> None:
    share, mean, volume = charts.sentiment_panels(_frames()["sent"], "t", "minute")
    assert share.to_dict()["encoding"]["y"]["title"] == "share of posts (%)"
    assert volume.to_dict()["encoding"]["y"]["title"] == "posts / min"
    assert "−1" in mean.to_dict()["layer"][0]["encoding"]["y"]["title"]
    x = share.to_dict()["encoding"]["x"]
    assert "UTC" in x["title"] and x["scale"]["type"] == "utc"
    flags = charts.flag_rates(_frames()["flags"], "hour").to_dict()
    assert flags["encoding"]["y"]["axis"]["format"] == "%" and "%" in flags["encoding"]["y"]["title"]


def test_colours_follow_the_label() -> None:
    spec = charts.sentiment_panels(_frames()["sent"], "t")[0].to_dict()
    scale = spec["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {
        "negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
    emo = charts.emotion_mix(_frames()["emo"], "e").to_dict()["encoding"]["color"]["scale"]
    assert dict(zip(emo["domain"], emo["range"], strict=True)) == charts.EMOTION_COLORS
    assert len(set(charts.EMOTION_COLORS.values())) == len(EMOTIONS)
    for label, colour in (("negative", "#d62728"), ("neutral", "#9e9e9e"), ("positive", "#2ca02c"),
                          ("joy", charts.EMOTION_COLORS["joy"])):
        bar = charts.confidence_bar_html(label, 0.75, f"text: {label} 75%")
        assert f'class="ms-fill" style="background:{colour};' in bar and "width:75%" in bar
    assert "background:#e0e0e0" in charts.confidence_bar_html(None, None, "image: —")


def test_confidence_bar_escapes_its_text() -> None:
    bar = charts.confidence_bar_html('<img src=x onerror="alert(1)">', 0.5, "<script>alert(1)</script>")
    assert "<script>" not in bar and "<img" not in bar and "&lt;script&gt;" in bar


def test_time_axis_ticks_no_finer_than_a_bucket() -> None:
    """A few minutes of data: one tick per minute (not "14:53 14:53 14:53" at sub-minute ticks); long ranges: ≤ 10."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from dashboard import charts

    start = datetime(2026, 11, 30, 14, 53, tzinfo=UTC)
    short = pd.DataFrame({"bucket": [start + timedelta(minutes=m) for m in range(6)]})
    long = pd.DataFrame({"bucket": [start + timedelta(minutes=m) for m in range(60)]})
    assert charts.time_axis("minute", short).to_dict()["axis"]["tickCount"] == 6
    assert charts.time_axis("minute", long).to_dict()["axis"]["tickCount"] == 10
    assert "tickCount" not in charts.time_axis("minute").to_dict()["axis"]
