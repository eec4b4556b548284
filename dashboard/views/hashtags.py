"""Hashtags: top by volume, most positive, most negative, biggest movers; each with a sparkline."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui

LIMIT = 10

st.title("Hashtags")
min_volume = st.slider("Minimum posts for the most positive / negative lists", 1, 50, 3, key="min_volume",
                       persist_state="session")


def _with_sparklines(df: pd.DataFrame, lines: dict[str, list[int]]) -> pd.DataFrame:
    df = df.copy()
    df.insert(1, "trend", [lines.get(t, []) for t in df["hashtag"]])
    return df


def _table(title: str, df: pd.DataFrame, columns: list[str], key: str, trend_width: str = "medium") -> None:
    st.subheader(title)
    if df.empty:
        st.caption(f"No hashtag in {ui.describe_range()} qualifies: it needs the minimum number of posts set above "
                   "and a mean score on this list's side of zero.")
        return
    st.dataframe(
        df[["hashtag", "trend", *columns]], hide_index=True, width="stretch", key=key,
        column_config={
            "hashtag": st.column_config.TextColumn("hashtag"),
            "trend": st.column_config.LineChartColumn("trend", y_min=0, help="posts per bucket over the range",
                                                      width=trend_width),  # type: ignore[arg-type]
            "mean_score": st.column_config.NumberColumn("mean score", format="%+.3f"),
            "previous_score": st.column_config.NumberColumn("previous score", format="%+.3f"),
            "change": st.column_config.NumberColumn("change", format="%+d"),
            "previous": st.column_config.NumberColumn("previous", help="posts in the period before this range"),
        })


def body() -> None:
    span, bucket = ui.span_s(), ui.bucket()
    top = data.top_hashtags(span, LIMIT, "volume")
    if top.empty:
        ui.nothing_in_range("hashtags")
        return
    positive = data.top_hashtags(span, LIMIT, "positive", min_volume)
    positive = positive[positive["mean_score"] > 0]
    negative = data.top_hashtags(span, LIMIT, "negative", min_volume)
    negative = negative[negative["mean_score"] < 0]
    movers = data.hashtag_movers(span, LIMIT)
    tags = tuple(sorted(set(top["hashtag"]) | set(positive["hashtag"]) | set(negative["hashtag"])
                        | set(movers["hashtag"])))
    spark = data.hashtag_sparklines(tags, span, bucket)
    edges = ui.bucket_edges(span, bucket)
    lines = {t: [int(v) for v in g.set_index("bucket")["volume"].reindex(edges, fill_value=0)]
             for t, g in spark.groupby("hashtag")}
    left, right = st.columns(2)
    with left:
        _table("Top by volume", _with_sparklines(top, lines), ["volume", "mean_score"], "top_volume")
        _table("Most positive", _with_sparklines(positive, lines), ["volume", "mean_score", "positive"],
               "top_positive")
    with right:
        _table("Biggest movers (vs previous period)", _with_sparklines(movers, lines),
               ["volume", "previous", "change", "mean_score"], "movers", trend_width="small")
        _table("Most negative", _with_sparklines(negative, lines), ["volume", "mean_score", "negative"],
               "top_negative")


ui.live(body)
