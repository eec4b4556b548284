"""Small JPEG thumbnails (longer side <= 256 px) kept with each post for the dashboard."""

from __future__ import annotations

import io

THUMB_PX = 256


def thumbnail(data: bytes, size: int = THUMB_PX, max_pixels: int = 40_000_000) -> bytes | None:
    """A JPEG thumbnail of ``data``, or None when it is not a decodable image (the models decide about it)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > max_pixels:
                return None
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=75)
            return buf.getvalue()
    except Exception:  # any decoder error: no thumbnail
        return None
