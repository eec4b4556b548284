"""Altair charts. Each takes the DataFrame a query wrapper returns (already aggregated in SQL)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from moodstream.labels import EMOTIONS, SENTIMENTS

SENTIMENT_SCALE = alt.Scale(domain=list(SENTIMENTS), range=["#d62728", "#9e9e9e", "#2ca02c"])
EMOTION_SCALE = alt.Scale(domain=list(EMOTIONS),
                          range=["#d62728", "#8c564b", "#9467bd", "#ffbf00", "#1f77b4", "#17becf", "#9e9e9e"])
_TIME = alt.X("bucket:T", title=None, axis=alt.Axis(format="%b %d %H:%M", labelAngle=0))


def _long(df: pd.DataFrame, labels: tuple[str, ...], name: str) -> pd.DataFrame:
    return df.melt(id_vars=["bucket"], value_vars=list(labels), var_name=name, value_name="posts")


def sentiment_trend(df: pd.DataFrame, title: str = "Sentiment", height: int = 180) -> list[alt.Chart | alt.LayerChart]:
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


def emotion_mix(df: pd.DataFrame, title: str, height: int = 220, legend: bool = True) -> alt.Chart:
    """Emotion mix per bucket as a normalised stacked area."""
    legend_spec = alt.Legend(orient="top", title=None) if legend else None
    return (alt.Chart(_long(df, EMOTIONS, "emotion"), title=title).mark_area(interpolate="monotone")
            .encode(_TIME, alt.Y("posts:Q", stack="normalize", title="share", axis=alt.Axis(format="%")),
                    alt.Color("emotion:N", scale=EMOTION_SCALE, legend=legend_spec),
                    tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"), "emotion:N", "posts:Q"])
            .properties(height=height))


def emotion_shares_by_modality(counts: dict[str, dict[str, int]]) -> alt.Chart:
    """One horizontal stacked bar per modality: how its emotions split."""
    rows = [{"modality": m, "emotion": e, "posts": n} for m, per in counts.items() for e, n in per.items()]
    return (alt.Chart(pd.DataFrame(rows), title="Emotion share by modality").mark_bar()
            .encode(alt.Y("modality:N", sort=["text", "image", "fused"], title=None),
                    alt.X("posts:Q", stack="normalize", title="share", axis=alt.Axis(format="%")),
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
            .encode(_TIME, alt.Y("posts:Q", title=f"posts / {unit}", stack=True),
                    alt.Color("kind:N", scale=alt.Scale(domain=["classified", "cache hit"],
                                                        range=["#1f77b4", "#aec7e8"]),
                              legend=alt.Legend(orient="top", title=None)),
                    tooltip=[alt.Tooltip("bucket:T", format="%Y-%m-%d %H:%M"), "kind:N", "posts:Q"])
            .properties(height=220))


def probabilities(probs: dict[str, dict[str, float] | None], labels: tuple[str, ...], title: str) -> alt.Chart:
    """Grouped bars: one bar per label and source (fused, text, image) of a single post."""
    rows = [{"source": src, "label": lab, "p": float((p or {}).get(lab, 0.0))}
            for src, p in probs.items() if p for lab in labels]
    return (alt.Chart(pd.DataFrame(rows), title=title).mark_bar()
            .encode(alt.X("label:N", sort=list(labels), title=None, axis=alt.Axis(labelAngle=0)),
                    alt.XOffset("source:N", sort=["fused", "text", "image"]),
                    alt.Y("p:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
                    alt.Color("source:N", scale=alt.Scale(domain=["fused", "text", "image"],
                                                          range=["#1f77b4", "#ff7f0e", "#2ca02c"]),
                              legend=alt.Legend(orient="top", title=None)),
                    tooltip=["source:N", "label:N", alt.Tooltip("p:Q", format=".3f")])
            .properties(height=220))
