"""Altair charts. Each takes the DataFrame a query wrapper returns (already aggregated in SQL).

Every chart sets its plot ``height``; Streamlit draws a chart with a top legend into a box of the spec's height
(title, legend and axes included), which squeezed the plot to a few pixels, so pages show charts with
``dashboard.ui.chart`` (``display_height``: the plot plus room for title, legend and axis). Times are drawn in
UTC (what the database stores and the tooltips say); every axis names its unit.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from moodstream.labels import EMOTIONS, SENTIMENTS

SENTIMENT_COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
EMOTION_COLORS = {"anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "joy": "#ffbf00", "sadness": "#1f77b4",
                  "surprise": "#17becf", "neutral": "#9e9e9e"}
SENTIMENT_SCALE = alt.Scale(domain=list(SENTIMENTS), range=[SENTIMENT_COLORS[s] for s in SENTIMENTS])
EMOTION_SCALE = alt.Scale(domain=list(EMOTIONS), range=[EMOTION_COLORS[e] for e in EMOTIONS])
FLAG_COLORS = {"uncertain": "#ff7f0e", "conflict": "#9467bd"}
_TIME = alt.X("bucket:T", title=None, axis=alt.Axis(format="%b %d %H:%M", labelAngle=0))
CHART_HEIGHT = 240  # plot height of a page's main charts (px)
SMALL_HEIGHT = 170  # small multiples and secondary charts
CHROME = 150  # title, time axis and padding around the plot (px), measured in headless Chromium
LEGEND_TOP = 40  # and a legend above the plot
TIME_FORMATS = {"minute": "%H:%M", "hour": "%b %d %H:%M", "day": "%b %d"}
UNITS = {"minute": "min", "hour": "h", "day": "day"}


def label_color(label: str | None) -> str:
    """The colour of a sentiment or emotion label (negative red, neutral grey, positive green; emotions their own
    palette); blue for anything else."""
    return SENTIMENT_COLORS.get(label or "") or EMOTION_COLORS.get(label or "") or "#1f77b4"


def time_axis(bucket: str = "hour", df: pd.DataFrame | None = None) -> alt.X:
    """The bucket axis: UTC times, labelled by the bucket's size, with ticks no finer than one bucket (so a few
    minutes of data are not labelled "14:53 14:53 14:53" at sub-minute ticks) and about ten labels at most."""
    axis: dict[str, Any] = {"format": TIME_FORMATS.get(bucket, "%b %d %H:%M"), "labelAngle": 0,
                            "labelOverlap": True, "labelFlush": True}
    if bucket in TIME_FORMATS and df is not None and "bucket" in df:
        buckets = max(1, int(df["bucket"].nunique()))
        axis["tickCount"] = min(buckets, 10)
    return alt.X("bucket:T", title=f"time (UTC), one bar or point per {bucket}", scale=alt.Scale(type="utc"),
                 axis=alt.Axis(**axis))


def _when(bucket: str = "hour") -> alt.Tooltip:
    return alt.Tooltip("bucket:T", title=f"{bucket} starting (UTC)", format="%Y-%m-%d %H:%M", formatType="utc")


def plot_height(chart: alt.TopLevelMixin) -> int:
    """The plot height a chart (or the first layer of a layered one) was given."""
    h = getattr(chart, "height", alt.Undefined)
    if isinstance(h, int):
        return h
    for sub in getattr(chart, "layer", None) or []:
        if isinstance(getattr(sub, "height", None), int):
            return int(sub.height)
    return CHART_HEIGHT


def has_top_legend(chart: alt.TopLevelMixin) -> bool:
    """Whether the chart (or one of its layers) draws a legend above the plot."""
    spec = chart.to_dict(validate=False)
    for part in [spec, *spec.get("layer", [])]:
        for channel in ("color", "fill", "shape"):
            legend = (part.get("encoding", {}).get(channel) or {}).get("legend")
            if isinstance(legend, dict) and legend.get("orient") == "top":
                return True
    return False


def display_height(chart: alt.TopLevelMixin) -> int:
    """The height to give Streamlit for ``chart``: its plot plus title, legend and axis."""
    return plot_height(chart) + CHROME + (LEGEND_TOP if has_top_legend(chart) else 0)


def _long(df: pd.DataFrame, labels: tuple[str, ...], name: str) -> pd.DataFrame:
    return df.melt(id_vars=["bucket"], value_vars=list(labels), var_name=name, value_name="posts")


def sentiment_trend(df: pd.DataFrame, title: str = "Sentiment", height: int = 180) -> list[alt.Chart | alt.LayerChart]:
    # The pages draw ``sentiment_panels`` (UTC axis, units, stacked volume); this older form stays for callers.
    """Sentiment share (normalised stacked area), mean score line and volume bars: three charts over the same
    buckets, drawn one under the other (separate charts, so each stretches to the page width)."""
    share = (alt.Chart(_long(df, SENTIMENTS, "sentiment"), title=title).mark_area(interpolate="monotone")
             .encode(_TIME, alt.Y("posts:Q", stack="normalize", title="share", axis=alt.Axis(format="%")),
                     alt.Color("sentiment:N", scale=SENTIMENT_SCALE, legend=alt.Legend(orient="top", title=None)),
                     alt.Order("sentiment_order:Q"),
                     tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"), "sentiment:N", "posts:Q"])
             .transform_calculate(sentiment_order=f"indexof({list(SENTIMENTS)}, datum.sentiment)")
             .properties(height=height))
    base = alt.Chart(df).encode(_TIME)
    mean = (base.mark_line(point=True, color="#1f77b4")
            .encode(alt.Y("mean_score:Q", title="mean score", scale=alt.Scale(domain=[-1, 1])),
                    tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"),
                             alt.Tooltip("mean_score:Q", format="+.3f")])
            .properties(height=height * 2 // 3))
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(strokeDash=[4, 4], color="#888").encode(y="y:Q")
    volume = (base.mark_bar(color="#7f7f7f")
              .encode(alt.Y("volume:Q", title="posts"),
                      tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"), "volume:Q"])
              .properties(height=height * 2 // 3))
    return [share, mean + zero, volume]


def emotion_mix(df: pd.DataFrame, title: str, height: int = CHART_HEIGHT, legend: bool = True,
                bucket: str = "hour") -> alt.Chart:
    """Emotion mix per bucket as a normalised stacked area."""
    legend_spec = alt.Legend(orient="top", title=None) if legend else None
    return (alt.Chart(_long(df, EMOTIONS, "emotion"), title=title).mark_area(interpolate="monotone")
            .encode(time_axis(bucket, df),
                    alt.Y("posts:Q", stack="normalize", title="share of posts (%)", axis=alt.Axis(format="%")),
                    alt.Color("emotion:N", scale=EMOTION_SCALE, legend=legend_spec),
                    tooltip=[_when(bucket), "emotion:N", alt.Tooltip("posts:Q", title="posts")])
            .properties(height=height))


def emotion_shares_by_modality(counts: dict[str, dict[str, int]]) -> alt.Chart:
    """One horizontal stacked bar per modality: how its emotions split."""
    rows = [{"modality": m, "emotion": e, "posts": n} for m, per in counts.items() for e, n in per.items()]
    return (alt.Chart(pd.DataFrame(rows), title="Emotion share by modality").mark_bar()
            .encode(alt.Y("modality:N", sort=["text", "image", "fused"], title=None),
                    alt.X("posts:Q", stack="normalize", title="share of the modality's posts (%)",
                          axis=alt.Axis(format="%")),
                    alt.Color("emotion:N", scale=EMOTION_SCALE, legend=alt.Legend(orient="top", title=None)),
                    tooltip=["modality:N", "emotion:N", "posts:Q"])
            .properties(height=160))


def throughput(df: pd.DataFrame, bucket: str = "minute") -> alt.Chart:
    """Predictions processed per bucket, cached ones shown separately."""
    if df.empty:
        df = pd.DataFrame({"bucket": [], "processed": [], "cached": []})
    long = pd.DataFrame({
        "bucket": list(df["bucket"]) * 2,
        "kind": ["classified"] * len(df) + ["cache hit"] * len(df),
        "posts": list(df["processed"] - df["cached"]) + list(df["cached"]),
    })
    unit = {"minute": "min", "hour": "h", "day": "day"}.get(bucket, bucket)
    return (alt.Chart(long, title=f"Throughput per {bucket}").mark_bar()
            .encode(time_axis(bucket, df), alt.Y("posts:Q", title=f"posts processed / {unit}", stack=True),
                    alt.Color("kind:N", scale=alt.Scale(domain=["classified", "cache hit"],
                                                        range=["#1f77b4", "#aec7e8"]),
                              legend=alt.Legend(orient="top", title=None)),
                    tooltip=[_when(bucket), "kind:N", alt.Tooltip("posts:Q", title="posts")])
            .properties(height=CHART_HEIGHT))


def probabilities(probs: dict[str, dict[str, float] | None], labels: tuple[str, ...], title: str) -> alt.Chart:
    """Grouped bars: one bar per label and source (fused, text, image) of a single post."""
    rows = [{"source": src, "label": lab, "p": float((p or {}).get(lab, 0.0))}
            for src, p in probs.items() if p for lab in labels]
    return (alt.Chart(pd.DataFrame(rows), title=title).mark_bar()
            .encode(alt.X("label:N", sort=list(labels), title=None, axis=alt.Axis(labelAngle=0)),
                    alt.XOffset("source:N", sort=["fused", "text", "image"]),
                    alt.Y("p:Q", title="probability (0–1)", scale=alt.Scale(domain=[0, 1])),
                    alt.Color("source:N", scale=alt.Scale(domain=["fused", "text", "image"],
                                                          range=["#1f77b4", "#ff7f0e", "#2ca02c"]),
                              legend=alt.Legend(orient="top", title=None)),
                    tooltip=["source:N", "label:N", alt.Tooltip("p:Q", format=".3f")])
            .properties(height=CHART_HEIGHT))


def sentiment_panels(df: pd.DataFrame, title: str, bucket: str = "hour",
                     height: int = CHART_HEIGHT) -> list[alt.Chart | alt.LayerChart]:
    """``sentiment_trend`` for the pages: UTC time axis, units on every axis, readable heights."""
    long = _long(df, SENTIMENTS, "sentiment")
    share = (alt.Chart(long, title=title).mark_area(interpolate="monotone")
             .encode(time_axis(bucket, df),
                     alt.Y("posts:Q", stack="normalize", title="share of posts (%)", axis=alt.Axis(format="%")),
                     alt.Color("sentiment:N", scale=SENTIMENT_SCALE, legend=alt.Legend(orient="top", title=None)),
                     alt.Order("sentiment_order:Q"),
                     tooltip=[_when(bucket), "sentiment:N", alt.Tooltip("posts:Q", title="posts")])
             .transform_calculate(sentiment_order=f"indexof({list(SENTIMENTS)}, datum.sentiment)")
             .properties(height=height))
    base = alt.Chart(df).encode(time_axis(bucket, df))
    mean = (base.mark_line(point=True, color="#1f77b4")
            .encode(alt.Y("mean_score:Q", title="mean score (−1 … +1)",
                          scale=alt.Scale(domain=[-1, 1])),
                    tooltip=[_when(bucket), alt.Tooltip("mean_score:Q", title="mean score", format="+.3f")])
            .properties(height=SMALL_HEIGHT))
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(strokeDash=[4, 4], color="#888").encode(y="y:Q")
    volume = (alt.Chart(long, title=f"Posts per {bucket}").mark_bar()
              .encode(time_axis(bucket, df), alt.Y("posts:Q", title=f"posts / {UNITS.get(bucket, bucket)}", stack=True),
                      alt.Color("sentiment:N", scale=SENTIMENT_SCALE, legend=alt.Legend(orient="top", title=None)),
                      alt.Order("sentiment_order:Q"),
                      tooltip=[_when(bucket), "sentiment:N", alt.Tooltip("posts:Q", title="posts")])
              .transform_calculate(sentiment_order=f"indexof({list(SENTIMENTS)}, datum.sentiment)")
              .properties(height=SMALL_HEIGHT))
    return [share, alt.layer(mean, zero, title=f"Mean sentiment score per {bucket} (P(positive) − P(negative))"),
            volume]


def flag_rates(df: pd.DataFrame, bucket: str = "hour", height: int = SMALL_HEIGHT) -> alt.Chart:
    """Share of each bucket's posts flagged uncertain and conflicting, as two lines."""
    rows = [{"bucket": r["bucket"], "flag": flag, "rate": r[f"{flag}_rate"], "posts": r[flag], "volume": r["volume"]}
            for r in df.to_dict("records") for flag in FLAG_COLORS]
    data = pd.DataFrame(rows, columns=["bucket", "flag", "rate", "posts", "volume"])
    return (alt.Chart(data, title=f"Uncertain and conflicting posts per {bucket}").mark_line(point=True)
            .encode(time_axis(bucket, df),
                    alt.Y("rate:Q", title="share of the bucket's posts (%)", axis=alt.Axis(format="%"),
                          scale=alt.Scale(domainMin=0)),
                    alt.Color("flag:N", scale=alt.Scale(domain=list(FLAG_COLORS), range=list(FLAG_COLORS.values())),
                              legend=alt.Legend(orient="top", title=None)),
                    tooltip=[_when(bucket), "flag:N", alt.Tooltip("rate:Q", title="share", format=".1%"),
                             alt.Tooltip("posts:Q", title="flagged posts"), alt.Tooltip("volume:Q", title="posts")])
            .properties(height=height))


def confidence_bar_html(label: str | None, value: float | None, caption: str) -> str:
    """One confidence bar as HTML, filled to ``value`` in the colour of ``label`` (the label it shows).

    ``caption`` and ``label`` are escaped; the rest is fixed markup."""
    import html

    pct = 0.0 if value is None else min(max(float(value), 0.0), 1.0)
    color = label_color(label) if value is not None else "#e0e0e0"
    return (f'<div class="ms-bar" data-label="{html.escape(str(label or ""))}" style="margin:2px 0 6px 0">'
            f'<div class="ms-caption" style="font-size:0.8rem;line-height:1.2">{html.escape(caption)}</div>'
            f'<div style="background:#eeeeee;border-radius:3px;height:8px;width:100%">'
            f'<div class="ms-fill" style="background:{color};border-radius:3px;height:8px;width:{pct * 100:.0f}%">'
            '</div></div></div>')
