"""Posts: a gallery of recent posts with thumbnails, captions, predictions and per-modality evidence (text: label
and confidence; image: label, confidence and faces; fused: label and calibrated confidence), each confidence bar in
the colour of the label it shows, and badges for posts flagged uncertain or conflicting (with filters for both);
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


def evidence(post: dict[str, Any]) -> None:
    """What each modality says, next to the fused label: one bar per modality, coloured by the label it shows."""
    ev = post.get("evidence") or {}
    bars = []
    for modality in ("text", "image", "fused"):
        e = ev.get(modality)
        if e is None:
            bars.append(charts.confidence_bar_html(None, None, f"{modality}: — (no {modality})"))
            continue
        conf = e.get("confidence")
        name = "fused (calibrated)" if modality == "fused" else modality
        caption = f"{name}: {e['label']} {conf:.0%}" if conf is not None else f"{name}: {e['label']}"
        if modality == "image" and e.get("faces") is not None:
            faces = int(e["faces"])
            caption += f" · {faces} face{'' if faces == 1 else 's'}"
        bars.append(charts.confidence_bar_html(e["label"], conf, caption))
    st.markdown("".join(bars), unsafe_allow_html=True)


def flag_badges(post: dict[str, Any]) -> None:
    if post.get("uncertain"):
        st.badge("uncertain", icon=":material/help:", color="orange",
                 help="calibrated confidence below the uncertainty threshold")
    if post.get("conflict"):
        st.badge("conflict", icon=":material/compare_arrows:", color="blue",
                 help="text and image each confidently polar, in opposite directions")


def card(post: dict[str, Any]) -> None:
    with st.container(border=True):
        if post.get("thumbnail"):
            st.image(bytes(post["thumbnail"]), width="stretch")
        else:
            st.caption("text only")
        text = post.get("text") or ""
        st.text(text if len(text) <= CAPTION_CHARS else text[:CAPTION_CHARS] + "…")
        with st.container(horizontal=True, gap="small"):
            st.badge(post["sentiment"], color=ui.BADGE_COLORS.get(post["sentiment"], "blue"))
            st.badge(post["emotion"], color="violet")
            flag_badges(post)
        evidence(post)
        if st.button("Details", key=f"open_{post['id']}"):
            open_post(post["id"])


def gallery() -> None:
    posts = data.posts_page(
        st.session_state.get("posts_limit", 24),
        sentiment=None if st.session_state.get("posts_sentiment", ALL) == ALL else st.session_state["posts_sentiment"],
        emotion=None if st.session_state.get("posts_emotion", ALL) == ALL else st.session_state["posts_emotion"],
        hashtag=(st.session_state.get("posts_hashtag") or "").strip() or None,
        min_confidence=st.session_state.get("posts_confidence", 0.0) or None,
        uncertain_only=bool(st.session_state.get("posts_uncertain")),
        conflict_only=bool(st.session_state.get("posts_conflict")),
    )
    st.caption(f"The {len(posts)} most recent posts matching the filters (all time, newest first). Bars: each "
               "modality's confidence in its own label, coloured by that label.")
    if not posts:
        st.info("No posts match these filters. Clear a filter above (sentiment, emotion, hashtag, minimum "
                "confidence, uncertain or conflicting only) to see more.", icon=":material/filter_alt_off:")
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
        m[3].metric("Confidence", f"{post['confidence']:.0%}", help="calibrated confidence of the fused label")
        with st.container(horizontal=True, gap="small"):
            flag_badges(post)
        evidence(post)
    mods = post["modalities"] or {}
    sent = {"fused": post["sentiment_probs"], **{k: (mods.get(k) or {}).get("sentiment") for k in ("text", "image")}}
    emo = {"fused": post["emotion_probs"], **{k: (mods.get(k) or {}).get("emotion") for k in ("text", "image")}}
    a, b = st.columns(2)
    with a:
        ui.chart(charts.probabilities(sent, SENTIMENTS, "Sentiment probabilities"))
    with b:
        ui.chart(charts.probabilities(emo, EMOTIONS, "Emotion probabilities"))
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
    g = st.columns([1, 1, 3])
    g[0].toggle("Uncertain only", key="posts_uncertain", persist_state="session",
                help="posts whose calibrated confidence is below the uncertainty threshold")
    g[1].toggle("Conflicting only", key="posts_conflict", persist_state="session",
                help="posts whose text and image are each confidently polar, in opposite directions")
    ui.live(gallery)
else:
    ui.live(lambda: detail(post_id))
