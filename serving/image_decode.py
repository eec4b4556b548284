"""Defensive image decoding: untrusted bytes in, an RGB ``PIL.Image`` or a short, clear ``ImageDecodeError`` out.

Checks, in order: byte cap (before any parsing), format sniffing, the pixel count declared in the header (before
any pixel is decoded; Pillow's decompression-bomb warning/error is turned into our error too), then the full
decode (truncated or corrupt data fails here). The result has EXIF orientation applied, is the first frame of an
animation, and is 8-bit RGB (CMYK, palette, alpha, 16-bit and float modes converted; alpha composited on white).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000


class ImageDecodeError(ValueError):
    """The bytes are not a usable image; ``reason`` is short and safe to show to a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError("image too large: declared size exceeds the pixel limit") from e
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not an image: unrecognised or unsupported format") from e
    except Exception as e:
        raise ImageDecodeError(f"corrupt image header ({type(e).__name__})") from e


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit RGB."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode != "F" and (im.mode.startswith("I;16") or a.max(initial=0) > 255):
            a = a / 257.0  # 16-bit range → 8-bit
        elif im.mode == "F" and a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(g, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _draft_box(w: int, h: int, need: tuple[int, int]) -> tuple[int, int] | None:
    """The smallest (w, h) with the image's aspect whose longer side is ≥ need[0] and shorter ≥ need[1]."""
    s = max(need[0] / max(w, h), need[1] / min(w, h))
    return None if s >= 1.0 else (math.ceil(w * s), math.ceil(h * s))


def decode_image(
    data: bytes,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | None = None,
    need: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode untrusted ``data`` into an RGB image, or raise ``ImageDecodeError``.

    ``draft``: for JPEG, let the decoder downscale by a power of two while decoding as long as the result stays
    at least this large (much faster for big photos; the result is still checked and oriented the same way).
    ``need`` = (long, short): the same, sized to the image's own aspect: the result keeps its longer side at least
    ``long`` and its shorter side at least ``short`` pixels (or stays full size where that is smaller).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(f"image must be bytes, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise ImageDecodeError("empty image (0 bytes)")
    if n > max_bytes:
        raise ImageDecodeError(f"image too large: {n} bytes > limit {max_bytes}")
    im = _open(bytes(data))
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f"invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise ImageDecodeError(f"image too large: {w}x{h} pixels > limit {max_pixels}")
    try:
        if getattr(im, "is_animated", False):
            im.seek(0)
        if im.format == "JPEG":
            box = draft if draft is not None else _draft_box(w, h, need) if need is not None else None
            if box is not None:
                im.draft("RGB", box)
        im.load()
        im = ImageOps.exif_transpose(im)
        out = _to_rgb(im)
        out.load()
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageDecodeError("image too large: decoded size exceeds the pixel limit") from e
    except (OSError, EOFError) as e:
        msg = str(e)
        if "truncated" in msg or isinstance(e, EOFError):
            raise ImageDecodeError("truncated image: data ends before the picture does") from e
        raise ImageDecodeError(f"corrupt image data ({msg[:80] or type(e).__name__})") from e
    except Exception as e:
        raise ImageDecodeError(f"corrupt image data ({type(e).__name__})") from e
    return out
