"""Alerts: sentiment-shift alerts with the numbers behind them and a link to the hashtag's trend."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui

st.title("Alerts")
st.caption("An alert is raised when a hashtag's mean sentiment in a window moves away from its baseline by more "
           "than the threshold.")


def body() -> None:
    df = data.alerts(ui.span_s())
    if df.empty:
        st.info("No alerts in this time range.")
        return
    cols = st.columns(3)
    cols[0].metric("Alerts", f"{len(df):,}")
    cols[1].metric("Turning negative", f"{int((df['direction'] == 'down').sum()):,}")
    cols[2].metric("Turning positive", f"{int((df['direction'] == 'up').sum()):,}")
    st.dataframe(
        df[["raised_at", "hashtag", "direction", "mean_score", "baseline", "delta", "volume", "window_start"]],
        hide_index=True, width="stretch",
        column_config={
            "raised_at": st.column_config.DatetimeColumn("raised at", format="YYYY-MM-DD HH:mm:ss"),
            "window_start": st.column_config.DatetimeColumn("window start", format="YYYY-MM-DD HH:mm"),
            "mean_score": st.column_config.NumberColumn("mean score", format="%+.3f"),
            "baseline": st.column_config.NumberColumn("baseline", format="%+.3f"),
            "delta": st.column_config.NumberColumn("delta", format="%+.3f"),
        })
    st.subheader("Trends of the alerted hashtags")
    tags = list(dict.fromkeys(df["hashtag"]))
    for col, tag in zip(st.columns(min(len(tags), 4)) * (len(tags) // 4 + 1), tags, strict=False):
        col.page_link("views/trends.py", label=f"#{tag}", icon=":material/monitoring:", query_params={"hashtag": tag})


ui.live(body)
