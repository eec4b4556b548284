"""Trends: sentiment share over time, mean score, volume; hashtag filter; two hashtags side by side."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, ui


def metrics(summary: dict, prefix: str = "") -> None:
    """Volume, the three shares and the mean score of a range, as one row of metrics."""
    total = summary["volume"]
    cols = st.columns(5)
    cols[0].metric(f"{prefix}Posts", f"{total:,}")
    for col, s in zip(cols[1:4], ("positive", "neutral", "negative"), strict=True):
        col.metric(f"{prefix}{s.capitalize()}", ui.pct(summary[s], total), help=f"{summary[s]:,} posts")
    cols[4].metric(f"{prefix}Mean score", ui.score(summary["mean_score"]), help="P(positive) − P(negative)")


def trend(span: int, bucket: str, tags: tuple[str, ...], title: str) -> None:
    df = data.sentiment_over_time(span, bucket, tags)
    if df.empty:
        st.info("No posts in this time range" + (f" for #{', #'.join(tags)}." if tags else "."))
        return
    for chart in charts.sentiment_trend(df, title=title):
        st.altair_chart(chart, width="stretch")


st.title("Trends")
tags = ui.hashtag_filter()
compare = st.toggle("Compare two hashtags side by side", key="compare", persist_state="session")
pair: tuple[str, str] | None = None
if compare:
    try:
        top = [r for r in data.top_hashtags(ui.span_s(), 50, "volume")["hashtag"]]
    except data.DashboardDataError:
        top = []
    a, b = st.columns(2)
    first = a.selectbox("First hashtag", top, index=0 if top else None, key="cmp_a", accept_new_options=True)
    second = b.selectbox("Second hashtag", top, index=1 if len(top) > 1 else None, key="cmp_b",
                         accept_new_options=True)
    if first and second:
        pair = (first.lstrip("#").lower(), second.lstrip("#").lower())


def body() -> None:
    span, bucket = ui.span_s(), ui.bucket()
    if pair:
        for col, tag in zip(st.columns(2), pair, strict=True):
            with col:
                st.subheader(f"#{tag}")
                metrics(data.sentiment_summary(span, (tag,)), prefix=f"#{tag} ")
                trend(span, bucket, (tag,), f"#{tag} sentiment per {bucket}")
        return
    metrics(data.sentiment_summary(span, tags))
    label = f" — #{', #'.join(tags)}" if tags else ""
    trend(span, bucket, tags, f"Sentiment per {bucket}{label}")


ui.live(body)
