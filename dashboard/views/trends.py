"""Trends: sentiment share over time, mean score, volume; hashtag filter; two hashtags side by side; the share of
posts flagged uncertain or conflicting; a toggle that leaves the uncertain posts out of the sentiment numbers."""

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


def trend(span: int, bucket: str, tags: tuple[str, ...], title: str, exclude_uncertain: bool = False) -> None:
    df = (data.sentiment_over_time_sure if exclude_uncertain else data.sentiment_over_time)(span, bucket, tags)
    if df.empty:
        ui.nothing_in_range(("confident posts" if exclude_uncertain else "posts")
                            + (f" tagged #{', #'.join(tags)}" if tags else ""))
        return
    for chart in charts.sentiment_panels(df, title, bucket):
        ui.chart(chart)


def flags(span: int, bucket: str, tags: tuple[str, ...] = ()) -> None:
    """How many posts the models were unsure of, and how many had text and image pulling opposite ways."""
    df = data.flag_rates(span, bucket)
    if df.empty:
        return
    st.subheader("Uncertain and conflicting posts")
    if tags:
        st.caption("Over all posts of the range: the hashtag filter does not apply to this part.")
    total = int(df["volume"].sum())
    cols = st.columns(3)
    cols[0].metric("Uncertain", ui.pct(int(df["uncertain"].sum()), total),
                   help="share of the range's posts whose calibrated confidence is below the uncertainty threshold "
                        f"({int(df['uncertain'].sum()):,} posts)")
    cols[1].metric("Conflicting", ui.pct(int(df["conflict"].sum()), total),
                   help="share of posts whose text and image are each confidently positive or negative, in "
                        f"opposite directions ({int(df['conflict'].sum()):,} posts)")
    ui.chart(charts.flag_rates(df, bucket))


st.title("Trends")
tags = ui.hashtag_filter()
toggles = st.columns(2)
compare = toggles[0].toggle("Compare two hashtags side by side", key="compare", persist_state="session")
exclude = toggles[1].toggle("Exclude uncertain posts", key="exclude_uncertain", persist_state="session",
                            help="Leave the posts the models were unsure of out of the sentiment numbers and charts "
                                 "(read from the predictions table).")
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
                summary = (data.sentiment_summary_sure if exclude else data.sentiment_summary)(span, (tag,))
                metrics(summary, prefix=f"#{tag} ")
                trend(span, bucket, (tag,), f"#{tag} sentiment per {bucket}", exclude)
        return
    metrics((data.sentiment_summary_sure if exclude else data.sentiment_summary)(span, tags))
    label = f" — #{', #'.join(tags)}" if tags else ""
    if exclude:
        st.caption("Posts flagged uncertain are left out of these numbers and charts.")
    trend(span, bucket, tags, f"Sentiment share per {bucket}{label}", exclude)
    flags(span, bucket, tags)


ui.live(body)
