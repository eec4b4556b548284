"""The demo feed: real photos from installed packages, our captions over every label, a scripted shift."""

from __future__ import annotations

import base64
import io
from collections import Counter
from datetime import UTC, datetime

from PIL import Image

from moodstream.labels import EMOTIONS, SENTIMENTS
from moodstream.schema import parse_post
from ops.producers.demo import CAPTIONS, LAUNCH, LAUNCH_TAG, PHOTOS, SCRIPT, DemoFeed, launch_phase, photo_jpeg

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_every_photo_loads_offline_as_a_real_picture():
    for name in PHOTOS:
        with Image.open(io.BytesIO(photo_jpeg(name))) as im:
            assert im.format == "JPEG" and max(im.size) <= 480 and min(im.size) >= 200, name


def test_captions_cover_every_sentiment_and_emotion_and_name_their_hashtag():
    captions = [c for cs in CAPTIONS.values() for c in cs] + [c for cs in LAUNCH.values() for c in cs]
    assert {c.sentiment for c in captions} == set(SENTIMENTS)
    assert {c.emotion for c in captions} == set(EMOTIONS)
    assert all(c.photo in PHOTOS for c in captions)
    for tag, cs in [*CAPTIONS.items(), *((LAUNCH_TAG, cs) for cs in LAUNCH.values())]:
        assert all(f"#{tag}" in c.text for c in cs), tag


def test_feed_is_valid_deterministic_and_follows_the_script():
    feed = list(DemoFeed(2400, seed=3, rate=5.0).posts(T0))
    again = list(DemoFeed(2400, seed=3, rate=5.0).posts(T0))
    assert [p.post for p in feed] == [p.post for p in again]
    for p in feed[:200]:
        parse_post(p.post)  # valid Post v1 (raises otherwise)
    assert len({p.post["id"] for p in feed}) == len(feed)
    assert any("image" not in p.post for p in feed) and any("text" not in p.post for p in feed)
    assert {p.hashtag for p in feed} == {LAUNCH_TAG, *CAPTIONS}
    launch = [p for p in feed if p.hashtag == LAUNCH_TAG]
    # busy enough to alert with the defaults: 5 posts/s * 60 s * share >= 10 posts a window
    per_minute = Counter(int(i / 5.0 // 60) for i, p in enumerate(feed) if p.hashtag == LAUNCH_TAG)
    assert min(per_minute.values()) >= 10 * 3
    # the script: happy, then the scrub turns it, then lift-off
    scrub_at = SCRIPT[1][0]
    before = [p.caption.sentiment for i, p in enumerate(feed) if p.hashtag == LAUNCH_TAG and i / 5.0 < scrub_at]
    during = [p.caption.sentiment for p in launch if p.phase == "scrubbed"]
    assert set(before) == {"positive"} and set(during) == {"negative"} and len(during) > 100
    assert launch_phase(0) == "countdown" and launch_phase(scrub_at) == "scrubbed" and launch_phase(400) == "liftoff"


def test_image_is_the_photo_of_its_caption():
    p = next(p for p in DemoFeed(50, seed=1).posts(T0) if "image" in p.post)
    assert base64.b64decode(p.post["image"]["b64"]) == photo_jpeg(p.caption.photo)
    assert p.post["source"] == f"demo:{p.caption.photo}"
