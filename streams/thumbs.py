"""Small JPEG thumbnails (longer side <= 256 px) kept with each post for the dashboard."""

from __future__ import annotations

import io

THUMB_PX = 256
# A JPEG already this small, holding nothing but pixels (no EXIF, XMP, comments or other APP segments that could
# carry a location or a camera serial), is kept as it is: decoding and re-encoding it was a quarter of a worker's
# own CPU on typical posted images and gave back the same picture.
KEEP_AS_IS_BYTES = 64 * 1024
_PIXELS_ONLY_SEGMENTS = {"APP0", "APP14"}  # JFIF header, Adobe colour transform


def _keep_as_is(im: object, data: bytes, size: int) -> bool:
    return (getattr(im, "format", None) == "JPEG" and len(data) <= KEEP_AS_IS_BYTES
            and max(im.size) <= size and im.mode in ("RGB", "L")  # type: ignore[attr-defined]
            and {marker for marker, _ in getattr(im, "applist", [])} <= _PIXELS_ONLY_SEGMENTS
            and not getattr(im, "info", {}).get("comment"))


def thumbnail(data: bytes, size: int = THUMB_PX, max_pixels: int = 40_000_000) -> bytes | None:
    """A JPEG thumbnail of ``data``, or None when it is not a decodable image (the models decide about it).

    A small plain JPEG that ends with its end-of-image marker is returned unchanged (``_keep_as_is``); anything
    else is decoded at a reduced scale where the format allows, shrunk and re-encoded, which also drops its
    metadata."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > max_pixels:
                return None
            if _keep_as_is(im, data, size) and data.rstrip(b"\0").endswith(b"\xff\xd9"):
                return data  # not decoded again: the models' decoder has accepted it; a cut-off file has no EOI
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            im.thumbnail((size, size))
            im.info = {}  # Pillow would write the source's JPEG comment back out
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=75)
            return buf.getvalue()
    except Exception:  # any decoder error: no thumbnail
        return None
