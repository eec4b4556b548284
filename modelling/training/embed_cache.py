"""On-disk cache of frozen-encoder embeddings of each dataset split (computed once, reused by training and eval)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from serving.encoders import EMBEDDING_POOL, TextEncoder

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "text_emb"


def _key(encoder: TextEncoder, texts: list[str], pools: tuple[str, ...] = (EMBEDDING_POOL,)) -> str:
    h = hashlib.sha256()
    h.update(f"{encoder.name}|{encoder.max_tokens}|{len(texts)}".encode())
    if tuple(pools) != (EMBEDDING_POOL,):  # the embedding alone keeps its earlier key (existing caches stay valid)
        h.update(f"|pools={','.join(pools)}".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def cached_embed(encoder: TextEncoder, texts: list[str], tag: str, progress: bool = True,
                 pools: list[str] | tuple[str, ...] = (EMBEDDING_POOL,)) -> np.ndarray:
    """Embeddings of ``texts`` (or, with ``pools``, those pooled views side by side: ``TextEncoder.encode``), read
    from ``CACHE_DIR`` when the same encoder encoded the same texts the same way before (``tag`` only names a new
    file)."""
    pools = tuple(encoder.check_pools(pools))
    key = _key(encoder, texts, pools)
    found = sorted(CACHE_DIR.glob(f"*-{key}.npy"))
    if found:
        return np.load(found[0])
    path = CACHE_DIR / f"{tag}-{key}.npy"
    emb = encoder.encode(texts, pools, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb
