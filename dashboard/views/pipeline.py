"""Pipeline: throughput per bucket, dead letters and their latest reasons, latency percentiles, cache hit
rate, model version in use. Counts are exact; latency percentiles cover at most the latest
``storage.queries.LATENCY_SAMPLE`` predictions of the range (the page says so when the range holds more)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui

st.title("Pipeline")


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f} ms"


def body() -> None:
    bucket = ui.bucket()
    stats = data.pipeline_stats(ui.span_s(), bucket)
    proc, dlq, models = stats["processing"], stats["dead_letters"], stats["models"]
    tp = pd.DataFrame(stats["throughput"], columns=["bucket", "processed", "cached", "mean_latency_ms"])
    m = st.columns(4)
    m[0].metric("Processed", f"{proc['processed']:,}")
    m[1].metric("Last minute", f"{int(proc['last_minute']):,}",
                help="posts processed in the most recent minute with any")
    m[2].metric("Dead letters", f"{dlq['count']:,}")
    rate = proc["cache_hit_rate"]
    m[3].metric("Cache hit rate", "–" if rate is None or not proc["processed"] else f"{rate:.1%}")
    lat = st.columns(4)
    lat[0].metric("Latency p50", _ms(proc["p50"]))
    lat[1].metric("Latency p95", _ms(proc["p95"]))
    lat[2].metric("Latency p99", _ms(proc["p99"]))
    lat[3].metric("Model version", models[0]["model_version"] if models else "–",
                  help=f"fusion: {models[0]['fusion']}" if models else None)
    if proc["latency_sample"] and proc["latency_sample"] < proc["processed"]:
        st.caption(f"Latency percentiles are approximate: over the latest {proc['latency_sample']:,} of the "
                   f"{proc['processed']:,} predictions in this range.")
    if not tp.empty:
        ui.chart(charts.throughput(tp, bucket))
    else:
        st.info(f"No posts were processed in {ui.describe_range()}.", icon=":material/search_off:")
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Latest dead letters")
        if dlq["latest"]:
            st.dataframe(pd.DataFrame(dlq["latest"])[["failed_at", "stage", "post_id", "reason"]],
                         hide_index=True, width="stretch",
                         column_config={"failed_at": st.column_config.DatetimeColumn("failed at (UTC)",
                                                                                     format="YYYY-MM-DD HH:mm:ss"),
                                        "post_id": st.column_config.TextColumn("post id", width="small"),
                                        "reason": st.column_config.TextColumn("reason", width="large")})
        else:
            st.caption("None in this range.")
    with right:
        st.subheader("Model versions")
        if models:
            st.dataframe(pd.DataFrame(models), hide_index=True, width="stretch",
                         column_config={"model_version": "model version", "n": "posts",
                                        "last_seen": st.column_config.DatetimeColumn("last seen (UTC)",
                                                                                     format="YYYY-MM-DD HH:mm")})
        else:
            st.caption("No predictions processed in this range.")


ui.live(body)
