"""Posts from a directory in MVSA layout.

Either the shared ``mvsa_single`` form (``train/val/test.tsv`` with ``id`` and ``text`` columns, images in
``images.zip`` as ``{id}.jpg``) or the original MVSA form (a folder of ``{id}.jpg`` + ``{id}.txt``, possibly under
``data/``). Posts get ``created_at`` = now and ``source`` = ``mvsa``.
"""

from __future__ import annotations

import base64
import csv
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SPLITS = ("train", "val", "test")


def _post(pid: str, text: str | None, image: bytes | None) -> dict[str, Any]:
    post: dict[str, Any] = {"id": f"mvsa-{pid}", "created_at": datetime.now(UTC).isoformat(), "source": "mvsa"}
    if text:
        post["text"] = text
    if image:
        post["image"] = {"b64": base64.b64encode(image).decode(), "mime": "image/jpeg"}
    return post


def _tsv_rows(d: Path, splits: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for split in splits:
        f = d / f"{split}.tsv"
        if not f.is_file():
            continue
        with f.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                yield row["id"], row.get("text", "")


def read_mvsa(directory: Path | str, limit: int | None = None, splits: tuple[str, ...] = SPLITS
              ) -> Iterator[dict[str, Any]]:
    """Post v1 dicts from an MVSA-layout directory (see the module docstring)."""
    d = Path(directory)
    n = 0
    if any((d / f"{s}.tsv").is_file() for s in splits):
        zpath = d / "images.zip"
        with zipfile.ZipFile(zpath) if zpath.is_file() else _NoZip() as z:
            names = set(z.namelist())
            for pid, text in _tsv_rows(d, splits):
                name = f"{pid}.jpg"
                image = z.read(name) if name in names else (d / "images" / name).read_bytes() \
                    if (d / "images" / name).is_file() else None
                if not text and not image:
                    continue
                yield _post(pid, text, image)
                n += 1
                if limit is not None and n >= limit:
                    return
        return
    folder = d / "data" if (d / "data").is_dir() else d
    for txt in sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
        img = txt.with_suffix(".jpg")
        text = txt.read_text(encoding="utf-8", errors="replace").strip()
        image = img.read_bytes() if img.is_file() else None
        if not text and not image:
            continue
        yield _post(txt.stem, text, image)
        n += 1
        if limit is not None and n >= limit:
            return


class _NoZip:
    def __enter__(self) -> _NoZip:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def namelist(self) -> list[str]:
        return []

    def read(self, name: str) -> bytes:  # pragma: no cover - never called (namelist is empty)
        raise KeyError(name)
