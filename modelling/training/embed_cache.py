"""On-disk cache of frozen-encoder embeddings of each dataset split (computed once, reused by training and eval).

Two kinds of file under ``CACHE_DIR``: ``<tag>-<key>.npy``, the pooled views one caller asked for (``_key``), and
``views-<texts key>.npy`` + ``.json``, a wider set of views of the same texts (``encode_views``, written by
``modelling.training.encode_texts``): any request for a subset of those views is sliced from it, so one encoder
pass serves every head configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from serving.encoders import EMBEDDING_POOL, TextEncoder

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "text_emb"


def _texts_hash(encoder: TextEncoder, texts: list[str]) -> hashlib._Hash:
    h = hashlib.sha256()
    h.update(f"{encoder.name}|{encoder.max_tokens}|{len(texts)}".encode())
    return h


def _update_texts(h: hashlib._Hash, texts: list[str]) -> None:
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")


def _key(encoder: TextEncoder, texts: list[str], pools: tuple[str, ...] = (EMBEDDING_POOL,)) -> str:
    h = _texts_hash(encoder, texts)
    if tuple(pools) != (EMBEDDING_POOL,):  # the embedding alone keeps its earlier key (existing caches stay valid)
        h.update(f"|pools={','.join(pools)}".encode())
    _update_texts(h, texts)
    return h.hexdigest()[:20]


def _views_key(encoder: TextEncoder, texts: list[str]) -> str:
    h = _texts_hash(encoder, texts)
    h.update(b"|views")
    _update_texts(h, texts)
    return h.hexdigest()[:20]


def _from_views(encoder: TextEncoder, texts: list[str], pools: tuple[str, ...]) -> np.ndarray | None:
    """The requested views sliced from a ``views-`` file of the same texts, or None when none covers them."""
    key = _views_key(encoder, texts)
    meta_path = CACHE_DIR / f"views-{key}.json"
    if not meta_path.is_file():
        return None
    have = json.loads(meta_path.read_text(encoding="utf-8"))["pools"]
    if not set(pools) <= set(have):
        return None
    arr = np.load(CACHE_DIR / f"views-{key}.npy", mmap_mode="r")
    d = encoder.dim
    return np.ascontiguousarray(np.hstack([arr[:, have.index(p) * d:(have.index(p) + 1) * d] for p in pools]))


def encode_views(encoder: TextEncoder, texts: list[str], pools: list[str] | tuple[str, ...],
                 progress: bool = True, batch_size: int = 64) -> Path:
    """Encode ``texts`` once with every view in ``pools`` and store them as a ``views-`` file (skipped when one
    with these views exists). Same batching as ``cached_embed``, so a slice equals a direct ``encode``."""
    pools = tuple(encoder.check_pools(pools))
    key = _views_key(encoder, texts)
    path, meta_path = CACHE_DIR / f"views-{key}.npy", CACHE_DIR / f"views-{key}.json"
    if meta_path.is_file() and set(pools) <= set(json.loads(meta_path.read_text(encoding="utf-8"))["pools"]):
        return path
    emb = encoder.encode(texts, pools, batch_size=batch_size, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    meta_path.write_text(json.dumps({"pools": list(pools), "n": len(texts)}), encoding="utf-8")
    return path


def cached_embed(encoder: TextEncoder, texts: list[str], tag: str, progress: bool = True,
                 pools: list[str] | tuple[str, ...] = (EMBEDDING_POOL,)) -> np.ndarray:
    """Embeddings of ``texts`` (or, with ``pools``, those pooled views side by side: ``TextEncoder.encode``), read
    from ``CACHE_DIR`` when the same encoder encoded the same texts the same way before (``tag`` only names a new
    file), or sliced from a ``views-`` file that has them."""
    pools = tuple(encoder.check_pools(pools))
    key = _key(encoder, texts, pools)
    found = sorted(CACHE_DIR.glob(f"*-{key}.npy"))
    if found:
        return np.load(found[0])
    sliced = _from_views(encoder, texts, pools)
    if sliced is not None:
        return sliced
    path = CACHE_DIR / f"{tag}-{key}.npy"
    emb = encoder.encode(texts, pools, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb
