"""Thumbnails: small plain JPEGs kept byte for byte, everything else shrunk and re-encoded without metadata."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from skimage import data

from streams.thumbs import THUMB_PX, thumbnail


def encode(im: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def opened(b: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(b))
    im.load()
    return im


SMALL = Image.fromarray(data.astronaut()).resize((200, 150))


def test_a_small_plain_jpeg_is_kept_byte_for_byte() -> None:
    b = encode(SMALL)
    assert thumbnail(b) == b


def test_exif_is_never_kept() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    b = encode(SMALL, exif=exif.tobytes())
    assert "exif" in opened(b).info
    t = thumbnail(b)
    assert t is not None and t != b
    assert "exif" not in opened(t).info and opened(t).size == (200, 150)


def test_a_jpeg_comment_is_never_kept() -> None:
    b = encode(SMALL, comment=b"shot at 51.5N 0.1W")
    t = thumbnail(b)
    assert t is not None and b"51.5N" not in t


def test_large_images_are_shrunk_to_the_thumbnail_size() -> None:
    t = thumbnail(encode(Image.fromarray(data.astronaut())))  # 512 x 512
    assert t is not None and opened(t).format == "JPEG" and max(opened(t).size) == THUMB_PX


def test_other_formats_become_jpeg() -> None:
    t = thumbnail(encode(SMALL, "PNG"))
    assert t is not None and opened(t).format == "JPEG" and opened(t).size == (200, 150)


def test_undecodable_input_gives_no_thumbnail() -> None:
    b = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 120, 3), np.uint8)))
    assert thumbnail(b[: len(b) // 2]) is None
    assert thumbnail(b"not an image") is None
