"""Hostile input for the bad-input tests: crafted images, internal URLs and hypothesis strategies of raw messages."""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

# ------------------------------------------------------------------------------------------ images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 20_000, height: int = 20_000, rows: int = 64) -> bytes:
    """A small PNG that declares ``width`` x ``height`` grey pixels (a decompression bomb): a few KB on the wire.

    Only the first ``rows`` rows are in the IDAT stream, so a decoder that gets past the header fails on truncation
    instead of allocating 400 MB; what matters is that nothing trusts the declared size.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    raw = (b"\x00" + b"\x00" * width) * rows
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw, 9)) + \
        _png_chunk(b"IEND", b"")


def png_bomb_complete(side: int = 8_000) -> bytes:
    """A complete, valid ``side`` x ``side`` black PNG (64 Mpx for 8000: over our 40 Mpx guard, under PIL's own)."""
    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * side
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _save(im: Any, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@functools.cache
def images() -> dict[str, bytes]:
    """Named hostile and unusual images (built once)."""
    from PIL import Image

    rgb = Image.new("RGB", (96, 64), (250, 200, 40))
    jpeg, png = _save(rgb, "JPEG"), _save(rgb, "PNG")
    frames = [Image.new("P", (32, 32), i * 40) for i in range(5)]
    gif = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW
    return {
        "jpeg": jpeg,
        "truncated-jpeg": jpeg[: len(jpeg) // 2],
        "truncated-png": png[: len(png) // 2],
        "png-bomb-20000x20000": png_bomb(),
        "png-bomb-8000x8000": png_bomb_complete(),
        "zero-bytes": b"",
        "animated-gif": gif,
        "cmyk-jpeg": _save(Image.new("CMYK", (64, 64), (0, 128, 255, 30)), "JPEG"),
        "exif-rotated-jpeg": _save(rgb, "JPEG", exif=exif.tobytes()),
        "not-an-image": b"GIF89a but actually plain text, not an image at all",
        "random-header": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    }


def internal_urls(hostile: str | None = None) -> list[str]:
    """URLs that point inside: loopback, private, link-local, metadata, and tricks for them."""
    urls = [
        "http://127.0.0.1/x.jpg", "http://localhost/x.jpg", "http://LOCALHOST.:80/x.jpg", "http://10.0.0.1/x.jpg",
        "http://192.168.1.1/x.jpg", "http://172.16.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.jpg", "http://[::ffff:127.0.0.1]/x.jpg", "http://[fe80::1]/x.jpg", "http://0.0.0.0/x.jpg",
        "http://2130706433/x.jpg", "http://0x7f000001/x.jpg", "http://0177.0.0.1/x.jpg", "http://127.1/x.jpg",
        "http://user:pw@127.0.0.1/x.jpg", "http://100.64.0.1/x.jpg", "https://127.0.0.1:6379/",
        "http://[fd00::1]/x.jpg", "http://224.0.0.1/x.jpg",
        # other schemes, and names that resolve inside
        "file:///etc/passwd", "file://localhost/etc/hostname", "ftp://127.0.0.1/x.jpg", "gopher://127.0.0.1:6379/_INFO",
        "data:image/png;base64,iVBORw0KGgo=", "http://localhost.localdomain/x.jpg", "http://ip6-localhost/x.jpg",
    ]
    if hostile:
        urls += [f"{hostile}/img/jpeg", f"{hostile}/slow", f"{hostile}/endless", f"{hostile}/drip",
                 f"{hostile}/redirect?to=http://169.254.169.254/", f"{hostile}/redirect?to=http://127.0.0.1:6379/",
                 f"{hostile}/redirect?to=file:///etc/passwd", f"{hostile}/redirect?to=http://localhost/x.jpg"]
    return urls


# ------------------------------------------------------------------------------------------ strategies


def _iso(d: datetime) -> str:
    return d.isoformat()


json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                             max_size=4),
                           max_leaves=12)


def image_refs(hostile: str | None) -> st.SearchStrategy[dict[str, Any]]:
    named = st.sampled_from(sorted(images())).map(lambda k: {"b64": base64.b64encode(images()[k]).decode()})
    return named | st.sampled_from(internal_urls(hostile)).map(lambda u: {"url": u}) | \
        st.builds(lambda b: {"b64": base64.b64encode(b).decode()}, st.binary(max_size=64))


def posts(hostile: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Post-shaped dicts, mostly valid (unique ids): captions, hostile images and internal URLs."""
    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
    base = {"id": st.uuids().map(lambda u: f"h-{u}"), "created_at": st.datetimes(timezones=st.just(UTC)).map(_iso)}
    extra = {"author": st.text(max_size=20), "lang": st.sampled_from(["en", "de", "", "xx-YY"]),
             "hashtags": st.lists(st.text(max_size=12), max_size=4), "source": st.text(max_size=10)}
    return st.one_of(
        st.fixed_dictionaries({**base, "text": text}, optional={"image": image_refs(hostile), **extra}),
        st.fixed_dictionaries({**base, "image": image_refs(hostile)}, optional=extra),
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"id":"deep","created_at":"2024-01-01T00:00:00Z","text":"x","extra":' + inner + b"}"


@st.composite
def mutated(draw: st.DrawFn, hostile: str | None) -> bytes:
    """A post, then one mutation: a field of the wrong type, truncation, invalid UTF-8, NUL bytes, extra fields."""
    post = draw(posts(hostile))
    how = draw(st.sampled_from(["none", "wrong-type", "drop", "truncate", "bad-utf8", "nul", "extra", "big-list"]))
    if how == "wrong-type":
        post[draw(st.sampled_from(["id", "created_at", "text", "image", "hashtags", "lang"]))] = draw(json_values)
    elif how == "drop":
        post.pop(draw(st.sampled_from(sorted(post))))
    elif how == "nul":
        post["text"] = draw(st.text(max_size=20)) + "\x00" + "\u0000nul"
    elif how == "extra":
        post[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    elif how == "big-list":
        post["hashtags"] = ["t"] * draw(st.integers(100, 50_000))
    raw = _dumps(post)
    if how == "truncate":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "bad-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) + \
            raw[at:]
    return raw


def raw_messages(hostile: str | None = None) -> st.SearchStrategy[bytes]:
    """Raw values for the posts topic: random bytes, JSON of any shape, deep nesting, mutated posts, good posts."""
    return st.one_of(
        st.binary(max_size=300),
        json_values.map(_dumps),
        st.builds(_deep, st.integers(1, 5_000), st.sampled_from(["list", "dict"])),
        mutated(hostile),
        posts(hostile).map(_dumps),
    )


@functools.lru_cache(maxsize=4)
def explicit_cases(hostile: str | None = None) -> dict[str, bytes]:
    """The cases named in issue 9 that random generation would rarely hit (some are large)."""
    now = datetime.now(UTC).isoformat()

    def post(i: str, **kw: Any) -> bytes:
        return _dumps({"id": f"x-{i}", "created_at": now, **kw})

    cases = {
        "empty message": b"",
        "nul bytes only": b"\x00" * 64,
        "invalid utf-8": b'{"id": "x-utf8", "created_at": "' + now.encode() + b'", "text": "\xff\xfe"}',
        "10 MB caption": post("10mb", text="a" * (10 * 1024 * 1024)),
        "huge JSON (2M numbers)": b'{"id":"x-huge","created_at":"' + now.encode() + b'","text":"hi","n":[' +
                                  b",".join([b"1"] * 2_000_000) + b"]}",
        "deep nesting 100k": b"[" * 100_000 + b"]" * 100_000,
        "15 MB of garbage": b"\x01" * (15 * 1024 * 1024),
        "image b64 that is text": post("b64text", image={"b64": base64.b64encode(b"hello world").decode()}),
    }
    for name, data in images().items():
        if data:
            cases[f"image {name}"] = post(f"img-{name}", text=f"photo {name}",
                                          image={"b64": base64.b64encode(data).decode()})
    cases["image zero bytes"] = post("img-zero", image={"b64": ""})
    for i, url in enumerate(internal_urls(hostile)):
        cases[f"url {url}"] = post(f"url-{i}", image={"url": url})
    return cases
