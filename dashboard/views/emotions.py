"""Emotions: the emotion mix over time, and the same per modality (text vs image vs fused)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from moodstream.labels import EMOTIONS

MODALITIES = ("text", "image", "fused")

st.title("Emotions")
tags = ui.hashtag_filter()


def body() -> None:
    span, bucket = ui.span_s(), ui.bucket()
    fused = data.emotion_over_time(span, bucket, "fused", tags)
    if fused.empty:
        ui.nothing_in_range()
        return
    totals = fused[list(EMOTIONS)].sum()
    top = totals.idxmax()
    cols = st.columns(3)
    cols[0].metric("Posts", f"{int(fused['volume'].sum()):,}")
    cols[1].metric("Top emotion", top, help=f"{int(totals[top]):,} posts")
    cols[2].metric("Top emotion share", ui.pct(totals[top], totals.sum()))
    ui.chart(charts.emotion_mix(fused, f"Emotion mix per {bucket} (fused)", bucket=bucket))

    st.subheader("Where the signal comes from")
    st.caption("Each modality's own emotion prediction; posts without that modality are left out.")
    for col, modality in zip(st.columns(3), MODALITIES, strict=True):
        with col:
            df = fused if modality == "fused" else data.emotion_over_time(span, bucket, modality, tags)
            if df.empty:
                st.info(f"No posts with a {modality} part in {ui.describe_range()}.")
            else:
                ui.chart(charts.emotion_mix(df, modality, height=charts.SMALL_HEIGHT, legend=False, bucket=bucket))

    by_mod = data.emotion_by_modality(span, tags)
    counts = by_mod["counts"]
    ui.chart(charts.emotion_shares_by_modality(counts))
    table = pd.DataFrame({m: counts[m] for m in MODALITIES}).reindex(list(EMOTIONS))
    table.loc["posts"] = table.sum()
    st.dataframe(table, width="stretch")
    both = by_mod["both"]
    a, b, c = st.columns(3)
    a.metric("Posts with text and image", f"{both:,}")
    b.metric("Text and image agree on sentiment", ui.pct(by_mod["agree_sentiment"], both))
    c.metric("Text and image agree on emotion", ui.pct(by_mod["agree_emotion"], both))


ui.live(body)
