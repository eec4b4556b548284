"""The model pack: a directory of small trained weights (heads, fusion) plus ``manifest.json`` and a model card.

The default pack is committed inside the package (``serving/pack/``) and loads with no setting and no network.
``manifest.json`` names the pack, lists its weight files and says which fusion strategy is the default; the pack's
version is ``<name>-<short sha256 of the listed files>``, so any change to a weight changes the version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "pack"
MANIFEST = "manifest.json"
DEFAULT_NAME = "moodstream-pack"
# Files that describe the pack rather than being part of its weights.
NOT_WEIGHTS = {MANIFEST, "MODEL_CARD.md", "README.md"}
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_PACK_BYTES = 20 * 1024 * 1024


class PackError(FileNotFoundError):
    """A model pack directory that is missing, incomplete or malformed."""


@dataclass(frozen=True)
class Pack:
    """A loaded (validated) pack: where it is, its name and content-derived version, and its manifest."""

    dir: Path
    name: str
    version: str
    manifest: dict[str, Any] = field(default_factory=dict)

    def path(self, filename: str) -> Path:
        """Absolute path of one file of the pack."""
        return self.dir / filename

    @property
    def default_fusion(self) -> str:
        """The fusion strategy the manifest names as default (best on MVSA val)."""
        return str(self.manifest.get("fusion", {}).get("default", "late"))


def pack_files(pack_dir: Path) -> list[str]:
    """Weight files of a pack directory (everything but the manifest and docs), sorted."""
    return sorted(p.name for p in pack_dir.iterdir() if p.is_file() and p.name not in NOT_WEIGHTS
                  and not p.name.startswith("."))


def files_hash(pack_dir: Path, files: list[str]) -> str:
    """sha256 over (name, bytes) of the given files, in sorted order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(b"\0")
        h.update((pack_dir / name).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def read_manifest(pack_dir: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a pack directory (``{}`` when absent)."""
    path = pack_dir / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(pack_dir: Path, **updates: Any) -> dict[str, Any]:
    """Create or update ``manifest.json``: ``files`` is re-listed from the directory; ``updates`` are merged in."""
    pack_dir = Path(pack_dir)
    manifest = read_manifest(pack_dir)
    manifest.setdefault("name", DEFAULT_NAME)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(manifest.get(key), dict):
            manifest[key] = {**manifest[key], **value}
        else:
            manifest[key] = value
    manifest["files"] = pack_files(pack_dir)
    (pack_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return manifest


def load_pack(model_dir: Path | str | None = None) -> Pack:
    """Load and check a pack: ``None`` → the committed ``serving/pack/``; else a local directory.

    Raises ``PackError`` naming the directory and the first missing file.
    """
    pack_dir = Path(model_dir).expanduser().resolve() if model_dir is not None else DEFAULT_PACK_DIR
    if not pack_dir.is_dir():
        raise PackError(f"model pack directory {pack_dir} does not exist")
    if not (pack_dir / MANIFEST).is_file():
        raise PackError(f"model pack {pack_dir} has no {MANIFEST} (is it a pack made by 'moodstream train'?)")
    try:
        manifest = read_manifest(pack_dir)
    except json.JSONDecodeError as e:
        raise PackError(f"model pack {pack_dir}: {MANIFEST} is not valid JSON ({e.msg})") from None
    files = list(manifest.get("files", []))
    missing = [f for f in files if not (pack_dir / f).is_file()]
    if missing:
        raise PackError(f"model pack {pack_dir} is missing {missing[0]!r}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    name = str(manifest.get("name", DEFAULT_NAME))
    return Pack(dir=pack_dir, name=name, version=f"{name}-{files_hash(pack_dir, files)[:12]}", manifest=manifest)


def pack_size_problems(pack_dir: Path) -> list[str]:
    """Violations of the size budget (whole pack ≤ 20 MB, no file > 5 MB); empty when within budget."""
    problems, total = [], 0
    for p in sorted(Path(pack_dir).iterdir()):
        if not p.is_file():
            continue
        size = p.stat().st_size
        total += size
        if size > MAX_FILE_BYTES:
            problems.append(f"{p.name} is {size / 1e6:.1f} MB (> 5 MB)")
    if total > MAX_PACK_BYTES:
        problems.append(f"pack is {total / 1e6:.1f} MB (> 20 MB)")
    return problems
