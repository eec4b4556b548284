"""Defensive image decoding: limits, corrupt input, and mode / orientation / animation handling."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data

from serving.image_decode import ImageDecodeError, decode_image


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_with_declared_size(w: int, h: int, idat: bytes | None = None) -> bytes:
    """A tiny (~70 byte) PNG whose header declares w×h RGB pixels (``idat``: the compressed data chunk)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def reason(payload: bytes, **kw) -> str:
    with pytest.raises(ImageDecodeError) as e:
        decode_image(payload, **kw)
    return e.value.reason


def test_valid_jpeg_and_png_decode_to_rgb(astronaut: Image.Image) -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "BMP"):
        im = decode_image(encode(astronaut, fmt))
        assert im.mode == "RGB" and im.size == (512, 512)
    png = decode_image(encode(astronaut, "PNG"))
    assert np.array_equal(np.asarray(png), data.astronaut())


@pytest.mark.parametrize(("payload", "expected"), [
    (b"", "empty"),
    (b"this is not an image at all" * 4, "not an image"),
    (b"GIF89a\x01", "not an image"),
    (png_with_declared_size(8, 8, idat=b"garbage!" * 4), "corrupt"),
    (png_with_declared_size(8, 8), "truncated"),
])
def test_bad_bytes_give_a_clear_reason(payload: bytes, expected: str) -> None:
    assert expected in reason(payload)


def test_truncated_jpeg_is_an_error(astronaut: Image.Image) -> None:
    jpg = encode(astronaut, "JPEG", quality=90)
    assert "truncated" in reason(jpg[: len(jpg) // 3])


def test_byte_cap_is_checked_before_parsing(astronaut: Image.Image) -> None:
    jpg = encode(astronaut, "JPEG")
    assert "bytes" in reason(jpg, max_bytes=len(jpg) - 1)
    assert decode_image(jpg, max_bytes=len(jpg)).size == (512, 512)


@pytest.mark.parametrize("side", [20_000, 7_000])
def test_huge_declared_size_is_refused_before_decoding(side: int) -> None:
    # 20000² trips Pillow's own bomb error (caught); 7000² = 49 M is under Pillow's limit but over ours (40 M).
    payload = png_with_declared_size(side, side)
    assert len(payload) < 200
    assert "too large" in reason(payload)


def test_pixel_cap_parameter(astronaut: Image.Image) -> None:
    assert "512x512" in reason(encode(astronaut, "PNG"), max_pixels=512 * 512 - 1)


def test_real_compressed_bomb_is_refused() -> None:
    bomb = encode(Image.new("L", (8_000, 8_000)), "PNG")  # 64 M pixels in ~70 KB
    assert len(bomb) < 200_000
    assert "too large" in reason(bomb)


def test_cmyk_jpeg_decodes_to_matching_rgb(astronaut: Image.Image) -> None:
    im = decode_image(encode(astronaut.convert("CMYK"), "JPEG", quality=95))
    assert im.mode == "RGB"
    assert np.abs(np.asarray(im, dtype=float) - data.astronaut()).mean() < 8


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = np.asarray(decode_image(encode(im, "JPEG", quality=95, exif=exif.tobytes())))
    assert out.shape == (40, 20, 3)  # now portrait
    assert out[2, 10, 0] > 200 and out[2, 10, 2] < 60  # top is red
    assert out[-3, 10, 2] > 200 and out[-3, 10, 0] < 60  # bottom is blue


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = np.asarray(decode_image(gif))
    assert out.shape == (16, 16, 3)
    assert tuple(out[8, 8]) == (255, 0, 0)


def test_modes_convert_to_8bit_rgb() -> None:
    g16 = Image.fromarray(np.full((8, 8), 32_896, dtype=np.uint16))  # 16-bit gray, 32896 / 257 = 128
    assert tuple(np.asarray(decode_image(encode(g16, "PNG")))[0, 0]) == (128, 128, 128)
    la = Image.new("LA", (8, 8), (0, 0))  # fully transparent black → white background
    assert tuple(np.asarray(decode_image(encode(la, "PNG")))[0, 0]) == (255, 255, 255)
    p = Image.new("P", (8, 8), 3)
    p.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    assert tuple(np.asarray(decode_image(encode(p, "PNG")))[0, 0]) == (10, 20, 30)
    gray = Image.new("L", (8, 8), 77)
    assert decode_image(encode(gray, "JPEG")).mode == "RGB"


def test_non_bytes_input_is_an_error() -> None:
    with pytest.raises(ImageDecodeError):
        decode_image("not bytes")  # type: ignore[arg-type]


def test_need_decodes_big_jpegs_smaller_keeping_the_needed_sides(astronaut: Image.Image) -> None:
    wide = encode(astronaut.resize((1800, 1200)), "JPEG", quality=90)
    assert decode_image(wide).size == (1800, 1200)
    assert decode_image(wide, draft=(640, 640)).size == (1800, 1200)  # a square box cannot shrink a 3:2 photo
    assert decode_image(wide, need=(640, 224)).size == (900, 600)  # longer ≥ 640 and shorter ≥ 224 at 1/2
    assert decode_image(wide, need=(300, 224)).size == (450, 300)
    tall = encode(astronaut.resize((1200, 2400)), "JPEG", quality=90)
    assert decode_image(tall, need=(640, 224)).size == (600, 1200)
    small = encode(astronaut, "JPEG", quality=90)
    assert decode_image(small, need=(640, 224)).size == (512, 512)  # never below what is needed
    png = encode(astronaut.resize((1800, 1200)), "PNG")
    assert decode_image(png, need=(640, 224)).size == (1800, 1200)  # only JPEG decodes at reduced scale
