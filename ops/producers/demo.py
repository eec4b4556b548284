"""The demo feed: real photographs that ship inside installed packages, with captions of our own writing.

The photographs are scikit-image's and Matplotlib's sample images (licences in ``PHOTOS`` and the README), read
from the installed packages, so the feed needs no network and no dataset. The captions cover every sentiment and
every emotion, over a few trending hashtags. One hashtag, ``#launchday``, follows a script: the countdown is
happy, then the launch is scrubbed and the mood turns, then it flies. The shift is large and busy enough that the
worker's sentiment-shift detector raises an alert on ``#launchday`` within the first minutes of ``make demo``
with the default settings (60 s windows, 10 posts a window, a 0.4 shift against at least 3 trailing windows).

The script runs on the feed's own clock: post ``i`` is at ``i / rate`` seconds, the rate the publisher paces it
at. Same seed, same feed (except ``created_at``).
"""

from __future__ import annotations

import base64
import functools
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Photo:
    """A photograph shipped inside an installed package, and its licence."""

    name: str
    package: str  # "skimage" or "matplotlib"
    file: str  # path inside the package's sample data
    licence: str

    def path(self) -> Path:
        if self.package == "skimage":
            import skimage.data

            return Path(skimage.data.__file__).parent / self.file
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / self.file


PHOTOS: dict[str, Photo] = {p.name: p for p in (
    Photo("astronaut", "skimage", "astronaut.png", "NASA photograph of Eileen Collins; public domain"),
    Photo("grace_hopper", "matplotlib", "grace_hopper.jpg", "US Navy portrait of Grace Hopper; public domain"),
    Photo("camera", "skimage", "camera.png", "a person with a camera; CC0 (Lav Varshney)"),
    Photo("chelsea", "skimage", "chelsea.png", "Chelsea the cat; CC0 (Stefan van der Walt)"),
    Photo("coffee", "skimage", "coffee.png", "a cup of coffee; CC0 (Rachel Michetti)"),
    Photo("rocket", "skimage", "rocket.jpg", "a SpaceX Falcon 9 launch; public domain (SpaceX)"),
    Photo("hubble", "skimage", "hubble_deep_field.jpg", "the Hubble eXtreme Deep Field; public domain (NASA)"),
    Photo("clock", "skimage", "clock_motion.png", "a wall clock, motion-blurred; public domain (Stefan van der Walt)"),
)}


@dataclass(frozen=True, slots=True)
class Caption:
    """A caption of ours, the photo it goes with, and the sentiment and emotion it was written to carry."""

    text: str
    photo: str
    sentiment: str
    emotion: str


def _c(photo: str, sentiment: str, emotion: str, *texts: str) -> list[Caption]:
    return [Caption(t, photo, sentiment, emotion) for t in texts]


# Everyday posts: each trending hashtag gets captions across sentiments and emotions.
CAPTIONS: dict[str, list[Caption]] = {
    "coffee": [
        *_c("coffee", "positive", "joy",
            "First sip of the morning and everything is right with the world #coffee",
            "This little cafe makes the best flat white in town, I'm so happy I found it #coffee"),
        *_c("coffee", "negative", "disgust",
            "Burnt, bitter and lukewarm. Honestly gross, I poured it away #coffee"),
        *_c("coffee", "negative", "anger",
            "Paid six euros for this and they got my order wrong again. Furious #coffee"),
        *_c("coffee", "neutral", "neutral",
            "Oat milk cappuccino, table by the window #coffee",
            "Trying the new single-origin beans this week #coffee"),
    ],
    "caturday": [
        *_c("chelsea", "positive", "joy",
            "She finally sat on my lap and purred for an hour. Best Saturday ever #caturday",
            "Look at this face! Sunshine, a nap and a very content cat #caturday"),
        *_c("chelsea", "positive", "surprise",
            "Wait, she opened the cupboard by herself?! I had no idea she could do that #caturday"),
        *_c("chelsea", "negative", "sadness",
            "The vet says she has to stay in overnight. The flat feels so empty without her #caturday"),
        *_c("chelsea", "neutral", "neutral", "Chelsea, age six, on the windowsill #caturday"),
    ],
    "space": [
        *_c("hubble", "positive", "surprise",
            "Every speck in this picture is a whole galaxy?! Wow, I'm amazed #space",
            "Wow. Thousands of galaxies in one tiny patch of sky, absolutely stunning #space"),
        *_c("hubble", "negative", "fear",
            "Staring at the deep field at 2am and honestly it scares me. So dark and so far away #space"),
        *_c("astronaut", "positive", "joy", "Proud to see her smile before the mission. What an inspiration #space"),
        *_c("hubble", "neutral", "neutral", "The Hubble eXtreme Deep Field, released in 2012 #space"),
    ],
    "history": [
        *_c("grace_hopper", "positive", "joy",
            "Grace Hopper wrote one of the first compilers. Love learning about her, what a legend #history"),
        *_c("grace_hopper", "negative", "anger",
            "It makes me angry how long pioneers like her waited for the credit they deserved #history"),
        *_c("grace_hopper", "negative", "sadness",
            "Reading about the women of early computing whose names were forgotten. Heartbreaking #history"),
        *_c("grace_hopper", "neutral", "neutral", "Rear Admiral Grace Hopper, official portrait #history"),
    ],
    "photography": [
        *_c("camera", "positive", "joy",
            "Golden hour, an old film camera and a happy afternoon in the park #photography"),
        *_c("camera", "negative", "anger",
            "Someone knocked my tripod over and walked off without a word. So angry right now #photography"),
        *_c("camera", "negative", "disgust", "Found my lens covered in sticky gunk. Disgusting #photography"),
        *_c("camera", "neutral", "neutral", "Black and white test shot, 50mm, f/8 #photography"),
    ],
    "mondays": [
        *_c("clock", "negative", "sadness",
            "Monday again. Tired, grey and already behind on everything. I hate this #mondays"),
        *_c("clock", "negative", "fear", "Big review at nine and I'm scared I'm not ready #mondays"),
        *_c("clock", "negative", "anger", "Three meetings about the meeting. I am losing my mind #mondays"),
        *_c("clock", "positive", "joy", "Weekly planning done by ten. Feeling great about this week #mondays"),
        *_c("clock", "neutral", "neutral", "Stand-up moved to 9:30 from today #mondays"),
    ],
}

# The scripted hashtag, phase by phase.
LAUNCH_TAG = "launchday"
LAUNCH: dict[str, list[Caption]] = {
    "countdown": [
        *_c("rocket", "positive", "joy",
            "T-minus one hour and the crowd is cheering! Perfect weather, so excited for this launch #launchday",
            "Best seats on the beach for the launch today, I'm so happy I could cry #launchday",
            "Love this team. Years of work and today we fly! #launchday"),
        *_c("astronaut", "positive", "joy",
            "Smiling, suited up and ready to go. Wishing the crew a wonderful flight #launchday"),
        *_c("rocket", "positive", "surprise",
            "Wow, you can feel the excitement everywhere here. Incredible day #launchday"),
    ],
    "scrubbed": [
        *_c("rocket", "negative", "anger",
            "Scrubbed AGAIN with ten seconds to go. Absolutely furious, what a joke #launchday",
            "Drove six hours for this and they scrub it. Terrible planning, I'm so angry #launchday"),
        *_c("rocket", "negative", "sadness",
            "Launch scrubbed. Everyone packing up in silence, so disappointed and sad #launchday",
            "Heartbroken. The kids waited all day and now it's cancelled #launchday"),
        *_c("astronaut", "negative", "fear",
            "An engine fault on the pad? That's terrifying, I hope the crew is safe #launchday"),
    ],
    "liftoff": [
        *_c("rocket", "positive", "joy",
            "LIFTOFF! It flew! Tears of joy on the beach, what a beautiful sight #launchday",
            "Clean launch, perfect orbit, the best day. So proud of everyone #launchday"),
        *_c("rocket", "positive", "surprise", "Wow, I did not expect it to be so loud. Amazing! #launchday"),
        *_c("astronaut", "positive", "joy",
            "The crew made it to orbit safely. Wonderful news, congratulations #launchday"),
    ],
}
# seconds into the feed at which each phase starts, within a cycle of ``SCRIPT_CYCLE_S``
SCRIPT: tuple[tuple[float, str], ...] = ((0.0, "countdown"), (150.0, "scrubbed"), (300.0, "liftoff"))
SCRIPT_CYCLE_S = 480.0


def launch_phase(t: float) -> str:
    """The #launchday phase at ``t`` seconds into the feed (the script repeats every ``SCRIPT_CYCLE_S``)."""
    t = t % SCRIPT_CYCLE_S
    phase = SCRIPT[0][1]
    for start, name in SCRIPT:
        if t >= start:
            phase = name
    return phase


@functools.cache
def photo_jpeg(name: str, max_side: int = 480) -> bytes:
    """The photo as a JPEG of at most ``max_side`` pixels a side (read once from the installed package)."""
    from PIL import Image

    with Image.open(PHOTOS[name].path()) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class DemoPost:
    """A demo post and the caption (with its intended sentiment and emotion) it was made from."""

    post: dict[str, Any]
    caption: Caption
    hashtag: str
    phase: str | None = None


class DemoFeed:
    """``count`` posts (None = endless); ``posts()`` yields them in order.

    ``launch_share`` of the posts are on the scripted hashtag; ``rate`` (posts per second, the publisher's) maps
    a post's index to the feed's clock. A small share of posts are text-only or image-only.
    """

    def __init__(self, count: int | None = None, seed: int = 0, rate: float = 5.0, launch_share: float = 0.4,
                 text_only_share: float = 0.08, image_only_share: float = 0.05, id_prefix: str = "demo") -> None:
        self.count = count
        self.seed = seed
        self.rate = rate if rate > 0 else 5.0
        self.launch_share = launch_share
        self.text_only_share = text_only_share
        self.image_only_share = image_only_share
        self.id_prefix = id_prefix

    def posts(self, created_at: datetime | None = None) -> Iterator[DemoPost]:
        rng = random.Random(self.seed)
        run = f"{datetime.now(UTC):%Y%m%d%H%M%S}" if created_at is None else "t"
        tags = sorted(CAPTIONS)
        i = 0
        while self.count is None or i < self.count:
            t = i / self.rate
            phase: str | None = None
            if rng.random() < self.launch_share:
                tag, phase = LAUNCH_TAG, launch_phase(t)
                caption = rng.choice(LAUNCH[phase])
            else:
                tag = rng.choice(tags)
                caption = rng.choice(CAPTIONS[tag])
            post: dict[str, Any] = {"id": f"{self.id_prefix}-{run}-{self.seed}-{i}",
                                    "created_at": (created_at or datetime.now(UTC)).isoformat(),
                                    "source": f"demo:{caption.photo}", "author": rng.choice(AUTHORS)}
            u = rng.random()
            if u >= self.image_only_share:
                post["text"] = caption.text
            else:
                post["hashtags"] = [tag]
            if u < self.image_only_share or u >= self.image_only_share + self.text_only_share:
                post["image"] = {"b64": base64.b64encode(photo_jpeg(caption.photo)).decode(), "mime": "image/jpeg"}
            yield DemoPost(post, caption, tag, phase)
            i += 1


AUTHORS = ("ada_l", "skywatcher", "beanthere", "catmum", "film.nerd", "mo_t", "lin", "orbit_ollie", "jo_from_ops")
