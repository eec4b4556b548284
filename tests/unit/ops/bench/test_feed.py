"""The benchmark feeds: unique content per run, and reposts that repeat earlier posts under new ids."""

from __future__ import annotations

import base64
import itertools
import json

from ops.bench.feed import Content, fresh, post, with_reposts

PAIRS = [(f"caption {i}", bytes([i]) * 8) for i in range(5)]
MANY = [(f"c{i}", b"img") for i in range(2000)]


def test_content_never_repeats_a_caption_image_pair() -> None:
    content = Content(PAIRS)
    got = [content.next() for _ in range(12)]
    assert len(set(got)) == 12  # after 5 pairs the caption carries a lap marker
    assert got[0] == ("caption 0", base64.b64encode(bytes([0]) * 8).decode())
    assert got[5][0] == "caption 0 [1]" and got[5][1] == got[0][1]


def test_replay_starts_over_without_consuming_the_original() -> None:
    content = Content(PAIRS)
    content.next()
    twin = content.replay()
    assert twin.next() == ("caption 0", content.pairs[0][1])
    assert content.next()[0] == "caption 1"


def test_fresh_posts_are_post_v1_with_unique_ids() -> None:
    from moodstream.schema import parse_post

    posts = list(itertools.islice(fresh(Content(PAIRS), "x"), 7))
    assert [p["id"] for p in posts] == [f"x-{k}" for k in range(7)]
    parsed = parse_post(json.dumps({**posts[0], "created_at": "2026-01-01T00:00:00Z"}).encode())
    assert parsed.text == "caption 0" and parsed.image is not None


def test_reposts_copy_an_original_sent_at_least_lag_posts_earlier() -> None:
    lag = 20
    feed = list(itertools.islice(with_reposts(fresh(Content(MANY), "o"), "o", share=0.5, lag=lag, seed=3),
                                 2000))
    ids = [p["id"] for p in feed]
    assert len(set(ids)) == len(ids)
    originals = [p for p in feed if "-r" not in p["id"]]
    reposts = [p for p in feed if "-r" in p["id"]]
    assert 0.4 < len(reposts) / len(feed) < 0.55  # half once enough originals exist
    order = {p["id"]: k for k, p in enumerate(originals)}
    by_content = {(p["text"], p["image"]["b64"]): p["id"] for p in originals}
    for k, p in enumerate(feed):
        if "-r" in p["id"]:
            src = by_content[(p["text"], p["image"]["b64"])]
            sent_before = sum(1 for q in feed[:k] if "-r" not in q["id"])
            assert order[src] < sent_before - lag


def test_post_shape() -> None:
    p = post("a", "hi", "AAAA")
    assert p == {"id": "a", "text": "hi", "image": {"b64": "AAAA", "mime": "image/jpeg"}, "source": "bench"}
