"""Posts: a gallery of recent posts with thumbnails, captions, predictions and per-modality confidence bars;
click-through (``?post=<id>``) to one post with all its probabilities. Captions are always plain text."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from moodstream.labels import EMOTIONS, SENTIMENTS

COLUMNS = 4
CAPTION_CHARS = 280
ALL = "all"


def open_post(post_id: str) -> None:
    """Show one post (a full rerun: the click happens inside the live fragment)."""
    st.query_params["post"] = post_id
    st.rerun(scope="app")


def close_post() -> None:
    st.query_params.pop("post", None)
    st.rerun(scope="app")


def confidence_bars(post: dict[str, Any]) -> None:
    """One bar per modality: the max sentiment probability of text, image and the fused prediction."""
    conf = post["modality_confidence"]
    for modality in ("text", "image", "fused"):
        value = conf.get(modality)
        label = post.get(f"{modality}_sentiment") if modality != "fused" else post["sentiment"]
        if value is None:
            st.progress(0.0, text=f"{modality}: —")
        else:
            st.progress(min(max(float(value), 0.0), 1.0), text=f"{modality}: {label} {value:.0%}")


def card(post: dict[str, Any]) -> None:
    with st.container(border=True):
        if post.get("thumbnail"):
            st.image(bytes(post["thumbnail"]), width="stretch")
        else:
            st.caption("text only")
        text = post.get("text") or ""
        st.text(text if len(text) <= CAPTION_CHARS else text[:CAPTION_CHARS] + "…")
        row = st.columns(2)
        with row[0]:
            st.badge(post["sentiment"], color=ui.BADGE_COLORS.get(post["sentiment"], "blue"))
        with row[1]:
            st.badge(post["emotion"], color="violet")
        confidence_bars(post)
        if st.button("Details", key=f"open_{post['id']}"):
            open_post(post["id"])


def gallery() -> None:
    posts = data.recent_posts(
        st.session_state.get("posts_limit", 24),
        sentiment=None if st.session_state.get("posts_sentiment", ALL) == ALL else st.session_state["posts_sentiment"],
        emotion=None if st.session_state.get("posts_emotion", ALL) == ALL else st.session_state["posts_emotion"],
        hashtag=(st.session_state.get("posts_hashtag") or "").strip() or None,
        min_confidence=st.session_state.get("posts_confidence", 0.0) or None,
    )
    st.caption(f"{len(posts)} most recent posts matching the filters")
    if not posts:
        st.info("No posts match these filters.")
        return
    for i in range(0, len(posts), COLUMNS):
        for col, post in zip(st.columns(COLUMNS), posts[i:i + COLUMNS], strict=False):
            with col:
                card(post)


def detail(post_id: str) -> None:
    if st.button("← Back to the gallery"):
        close_post()
    post = data.get_post(post_id)
    if post is None:
        st.warning("No such post.")
        return
    st.subheader("Post")
    st.code(post["id"], language=None)
    left, right = st.columns([1, 2])
    with left:
        if post.get("thumbnail"):
            st.image(bytes(post["thumbnail"]), width="stretch")
        st.text(post.get("text") or "(no caption)")
        if post["hashtags"]:
            st.text(" ".join(f"#{t}" for t in post["hashtags"]))
    with right:
        m = st.columns(4)
        m[0].metric("Sentiment", post["sentiment"])
        m[1].metric("Score", ui.score(post["sentiment_score"]))
        m[2].metric("Emotion", post["emotion"])
        m[3].metric("Confidence", f"{post['confidence']:.0%}")
        confidence_bars(post)
    mods = post["modalities"] or {}
    sent = {"fused": post["sentiment_probs"], **{k: (mods.get(k) or {}).get("sentiment") for k in ("text", "image")}}
    emo = {"fused": post["emotion_probs"], **{k: (mods.get(k) or {}).get("emotion") for k in ("text", "image")}}
    a, b = st.columns(2)
    a.altair_chart(charts.probabilities(sent, SENTIMENTS, "Sentiment probabilities"), width="stretch")
    b.altair_chart(charts.probabilities(emo, EMOTIONS, "Emotion probabilities"), width="stretch")
    a, b = st.columns(2)
    a.dataframe(pd.DataFrame({src: p for src, p in sent.items() if p}).T.reindex(columns=list(SENTIMENTS)),
                width="stretch")
    b.dataframe(pd.DataFrame({src: p for src, p in emo.items() if p}).T.reindex(columns=list(EMOTIONS)),
                width="stretch")
    meta = {k: post.get(k) for k in ("author", "source", "lang", "created_at", "processed_at", "model_version",
                                     "fusion", "latency_ms", "cached", "faces", "image_url")}
    st.dataframe(pd.DataFrame({"field": list(meta), "value": [str(v) for v in meta.values()]}),
                 hide_index=True, width="stretch")


st.title("Posts")
post_id = st.query_params.get("post")
if not post_id:
    f = st.columns([1, 1, 1, 2, 1])
    f[0].selectbox("Sentiment", [ALL, *SENTIMENTS], key="posts_sentiment", persist_state="session")
    f[1].selectbox("Emotion", [ALL, *EMOTIONS], key="posts_emotion", persist_state="session")
    f[2].text_input("Hashtag", key="posts_hashtag", placeholder="e.g. cats", persist_state="session")
    f[3].slider("Minimum confidence", 0.0, 1.0, 0.0, 0.05, key="posts_confidence", persist_state="session")
    f[4].selectbox("Show", [12, 24, 48, 96], index=1, key="posts_limit", persist_state="session")
    ui.live(gallery)
else:
    ui.live(lambda: detail(post_id))
