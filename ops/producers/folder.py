"""Posts from a user's own folder of images with captions.

Either a ``.txt`` beside each image (``beach.jpg`` + ``beach.txt``), or a CSV file in the folder with a column
naming the image (``image``, ``file`` or ``filename``, relative to the folder) and one with the caption (``text``
or ``caption``); optional ``id`` and ``hashtags`` (space- or comma-separated) columns. A CSV row without an image is
a text-only post; an image without a caption is an image-only post. Posts get ``created_at`` = now (stamped when
sent) and ``source`` = ``folder``; the id is ``folder-<file stem>`` unless the CSV gives one.
"""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
               ".webp": "image/webp", ".bmp": "image/bmp"}
IMAGE_COLUMNS = ("image", "file", "filename", "path")
TEXT_COLUMNS = ("text", "caption")


class FolderError(ValueError):
    """The folder has nothing to publish, or its CSV lacks the columns it needs."""


def _post(pid: str, text: str | None, image: Path | None, hashtags: list[str] | None = None) -> dict[str, Any]:
    post: dict[str, Any] = {"id": pid[:128], "source": "folder"}
    if text:
        post["text"] = text
    if image is not None:
        post["image"] = {"b64": base64.b64encode(image.read_bytes()).decode(),
                         "mime": IMAGE_TYPES.get(image.suffix.lower(), "image/jpeg")}
    if hashtags:
        post["hashtags"] = hashtags
    return post


def _pick(fields: list[str], names: tuple[str, ...]) -> str | None:
    lower = {f.strip().lower(): f for f in fields}
    return next((lower[n] for n in names if n in lower), None)


def _from_csv(d: Path, csv_path: Path) -> Iterator[dict[str, Any]]:
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        img_col, text_col = _pick(fields, IMAGE_COLUMNS), _pick(fields, TEXT_COLUMNS)
        id_col, tag_col = _pick(fields, ("id",)), _pick(fields, ("hashtags", "tags"))
        if img_col is None and text_col is None:
            raise FolderError(f"{csv_path.name} needs an image column ({', '.join(IMAGE_COLUMNS)}) "
                              f"or a caption column ({', '.join(TEXT_COLUMNS)}); it has {fields}")
        for n, row in enumerate(reader, 1):
            name = (row.get(img_col) or "").strip() if img_col else ""
            text = (row.get(text_col) or "").strip() if text_col else ""
            image = (d / name) if name else None
            if image is not None and not image.is_file():
                raise FolderError(f"{csv_path.name} line {n + 1}: no image file {name!r} in {d}")
            if image is None and not text:
                continue
            pid = (row.get(id_col) or "").strip() if id_col else ""
            tags = (row.get(tag_col) or "").replace(",", " ").split() if tag_col else []
            yield _post(pid or f"folder-{Path(name).stem if name else csv_path.stem + '-' + str(n)}", text or None,
                        image, [t.lstrip("#") for t in tags] or None)


def read_folder(directory: Path | str) -> Iterator[dict[str, Any]]:
    """Post v1 dicts (without ``created_at``: the publisher stamps it) from the folder; see the module docstring.

    Raises ``FolderError`` at once when there is nothing to publish; a CSV's bad rows raise while iterating.
    """
    d = Path(directory)
    csvs = sorted(d.glob("*.csv"))
    if csvs:
        return (post for c in csvs for post in _from_csv(d, c))
    images = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_TYPES)
    if not images:
        raise FolderError(f"{d} has no images ({', '.join(sorted(IMAGE_TYPES))}) and no CSV of captions")
    return _beside(images)


def _beside(images: list[Path]) -> Iterator[dict[str, Any]]:
    for img in images:
        txt = img.with_suffix(".txt")
        text = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        yield _post(f"folder-{img.stem}", text, img)


def count_folder(directory: Path | str) -> int | None:
    """How many posts ``read_folder`` yields (None when a CSV decides; the bar then counts without a total)."""
    d = Path(directory)
    if any(d.glob("*.csv")):
        return None
    return sum(1 for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_TYPES)
