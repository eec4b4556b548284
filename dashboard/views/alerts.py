"""Alerts: sentiment-shift alerts with the numbers behind them and a link to the hashtag's trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
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
    deliveries()
    st.subheader("Trends of the alerted hashtags")
    tags = list(dict.fromkeys(df["hashtag"]))
    for col, tag in zip(st.columns(min(len(tags), 4)) * (len(tags) // 4 + 1), tags, strict=False):
        col.page_link("views/trends.py", label=f"#{tag}", icon=":material/monitoring:", query_params={"hashtag": tag})


def deliveries() -> None:
    """The webhook outbox of these alerts: delivered, still retrying, or failed for good with the last error."""
    now = datetime.now(UTC)
    since = now.replace(second=now.second - now.second % 5, microsecond=0) - timedelta(seconds=ui.span_s())
    cols = ["raised_at", "hashtag", "direction", "sink", "state", "attempts", "last_error", "next_attempt_at",
            "delivered_at"]
    df = pd.DataFrame(data.fetch("alert_deliveries", since=since, limit=200), columns=cols)
    if df.empty:
        return
    st.subheader("Deliveries")
    counts = df["state"].value_counts()
    st.caption(f"{int(counts.get('delivered', 0))} delivered, {int(counts.get('pending', 0))} pending, "
               f"{int(counts.get('retrying', 0))} retrying, {int(counts.get('failed', 0))} failed. An alert is "
               "sent at least once; a failed attempt is retried with backoff.")
    failed = int(counts.get("failed", 0))
    if failed:
        st.warning(f"{failed} alert deliveries failed for good; their last error is in the table.")
    st.dataframe(
        df[cols], hide_index=True, width="stretch",
        column_config={
            "raised_at": st.column_config.DatetimeColumn("raised at", format="YYYY-MM-DD HH:mm:ss"),
            "last_error": st.column_config.TextColumn("last error"),
            "next_attempt_at": st.column_config.DatetimeColumn("next attempt", format="HH:mm:ss"),
            "delivered_at": st.column_config.DatetimeColumn("delivered at", format="YYYY-MM-DD HH:mm:ss"),
        })


ui.live(body)
