"""The benchmark's posts: MVSA-Single captions + images (every split), as Post v1 dicts with fresh ids.

``Content`` hands out each (caption, image) pair once; when the dataset runs out it starts over with a marker
appended to the caption, so a later copy never hits the cache by accident. ``with_reposts`` turns a stream of
fresh posts into a feed where a share of the posts repeat an earlier post's content under a new id.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def mvsa_pairs(data_dir: Path) -> list[tuple[str, bytes]]:
    """(caption, JPEG bytes) of every MVSA-Single post in ``data_dir/mvsa_single`` (train, val and test)."""
    from modelling.training.data import read_mvsa

    out: list[tuple[str, bytes]] = []
    for split in ("train", "val", "test"):
        data = read_mvsa(split, data_dir)
        out.extend((r["text"], data.image_bytes(r["id"])) for r in data.rows)
        data.close()
    if not out:
        raise FileNotFoundError(f"no MVSA-Single posts under {data_dir}/mvsa_single")
    return out


def post(pid: str, caption: str, image_b64: str) -> dict[str, Any]:
    """A Post v1 dict (``created_at`` is stamped when it is sent)."""
    return {"id": pid, "text": caption, "image": {"b64": image_b64, "mime": "image/jpeg"}, "source": "bench"}


class Content:
    """Hands out (caption, base64 image) pairs, each unique across the whole run."""

    def __init__(self, pairs: list[tuple[str, bytes]]) -> None:
        self.pairs = [(t, base64.b64encode(b).decode()) for t, b in pairs]
        self.served = 0

    def replay(self) -> Content:
        """The same pairs from the start, counted apart (for a consumer without a cache, e.g. the naive peer)."""
        twin = Content([])
        twin.pairs = self.pairs
        return twin

    def next(self) -> tuple[str, str]:
        n = len(self.pairs)
        text, image = self.pairs[self.served % n]
        lap = self.served // n
        self.served += 1
        return (f"{text} [{lap}]" if lap else text), image


def fresh(content: Content, prefix: str) -> Iterator[dict[str, Any]]:
    """Posts whose content has not been sent before in this run."""
    k = 0
    while True:
        text, image = content.next()
        yield post(f"{prefix}-{k}", text, image)
        k += 1


def with_reposts(originals: Iterator[dict[str, Any]], prefix: str, share: float = 0.5, lag: int = 200,
                 seed: int = 0) -> Iterator[dict[str, Any]]:
    """``share`` of the posts are reposts: an earlier original's caption + image under a new id.

    A repost copies an original sent at least ``lag`` posts before it (already classified and cached by then,
    as a real repost usually is), chosen uniformly among those.
    """
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []
    k = 0
    while True:
        eligible = len(sent) - lag
        if eligible > 0 and rng.random() < share:
            src = sent[rng.randrange(eligible)]
            yield {**src, "id": f"{prefix}-r{k}"}
        else:
            orig = next(originals)
            sent.append(orig)
            yield orig
        k += 1
