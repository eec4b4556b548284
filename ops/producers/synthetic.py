"""A synthetic feed whose sentiment is known and drifts per hashtag over time (deterministic for a seed).

Each hashtag's chance of a positive post follows its own slow sine wave over the feed; captions come from
small templates and images are drawn with PIL: warm and bright for positive, dark and cold for negative,
grey for neutral. Some posts are text-only or image-only, and some are reposts (same caption and image, new id).
"""

from __future__ import annotations

import base64
import io
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HASHTAGS = ("coffee", "mondays", "football", "travel", "election", "weather", "music", "cats")
THINGS = {
    "coffee": ("latte", "espresso", "coffee shop"), "mondays": ("commute", "meeting", "inbox"),
    "football": ("match", "team", "goal"), "travel": ("flight", "beach", "hotel"),
    "election": ("debate", "candidate", "vote"), "weather": ("sunshine", "storm", "forecast"),
    "music": ("concert", "album", "playlist"), "cats": ("kitten", "cat", "purring"),
}
TEMPLATES = {
    "positive": ("Loving this {thing}! Best day ever #{tag}", "So happy with the {thing}, absolutely wonderful #{tag}",
                 "What a great {thing}, I am thrilled #{tag}", "Amazing {thing} today :) #{tag}"),
    "negative": ("This {thing} is terrible, I hate it #{tag}", "Worst {thing} ever, so sad and angry #{tag}",
                 "Awful {thing}. Really disappointed #{tag}", "Ugh, the {thing} ruined my day :( #{tag}"),
    "neutral": ("Here is the {thing} #{tag}", "The {thing} is at 5 pm #{tag}", "Posting the {thing} #{tag}",
                "A {thing} on a Tuesday #{tag}"),
}
PALETTE = {"positive": ((255, 200, 40), (255, 120, 60)), "negative": ((10, 20, 60), (40, 40, 50)),
           "neutral": ((120, 120, 120), (135, 135, 130))}


@dataclass(frozen=True, slots=True)
class SyntheticPost:
    """A generated post and the sentiment it was generated with."""

    post: dict[str, Any]
    label: str
    hashtag: str


def positive_share(tag_index: int, progress: float, periods: float = 1.0) -> float:
    """P(positive) of a hashtag at ``progress`` in [0, 1] through the feed (each tag has its own phase)."""
    return 0.5 + 0.4 * math.sin(2 * math.pi * (periods * progress + tag_index / len(HASHTAGS)))


def draw_image(label: str, rng: random.Random, size: int = 64) -> bytes:
    """A small JPEG whose brightness and warmth carry ``label``."""
    from PIL import Image, ImageDraw

    a, b = PALETTE[label]
    im = Image.new("RGB", (size, size), a)
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(4, size // 3)
        d.ellipse((x - r, y - r, x + r, y + r), fill=b)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return buf.getvalue()


class SyntheticFeed:
    """``count`` posts; ``posts()`` yields them in order. Same seed, same feed (except ``created_at``)."""

    def __init__(self, count: int, seed: int = 0, hashtags: tuple[str, ...] = HASHTAGS, repost_share: float = 0.1,
                 text_only_share: float = 0.1, image_only_share: float = 0.1, id_prefix: str = "syn") -> None:
        self.count = count
        self.seed = seed
        self.hashtags = hashtags
        self.repost_share = repost_share
        self.text_only_share = text_only_share
        self.image_only_share = image_only_share
        self.id_prefix = id_prefix

    def _label(self, rng: random.Random, tag_index: int, progress: float) -> str:
        p_pos = positive_share(tag_index, progress)
        u = rng.random()
        if u < p_pos * 0.85:
            return "positive"
        if u < 0.85:
            return "negative"
        return "neutral"

    def posts(self, created_at: datetime | None = None) -> Iterator[SyntheticPost]:
        rng = random.Random(self.seed)
        recent: list[SyntheticPost] = []
        for i in range(self.count):
            pid = f"{self.id_prefix}-{self.seed}-{i}"
            ts = (created_at or datetime.now(UTC)).isoformat()
            if recent and rng.random() < self.repost_share:
                src = rng.choice(recent)
                post = {**src.post, "id": pid, "created_at": ts}
                yield SyntheticPost(post, src.label, src.hashtag)
                continue
            ti = rng.randrange(len(self.hashtags))
            tag = self.hashtags[ti]
            label = self._label(rng, ti, i / max(1, self.count - 1))
            text = rng.choice(TEMPLATES[label]).format(thing=rng.choice(THINGS.get(tag, ("thing",))), tag=tag)
            post: dict[str, Any] = {"id": pid, "created_at": ts, "source": f"synthetic:{label}"}
            u = rng.random()
            if u >= self.image_only_share:
                post["text"] = text
            else:
                post["hashtags"] = [tag]
            if u < self.image_only_share or u >= self.image_only_share + self.text_only_share:
                post["image"] = {"b64": base64.b64encode(draw_image(label, rng)).decode(), "mime": "image/jpeg"}
            sp = SyntheticPost(post, label, tag)
            recent = [*recent[-49:], sp]
            yield sp
