"""The text model: a transformers encoder (packaged all-MiniLM-L6-v2 by default, optionally with a merged LoRA
adapter from the pack) plus sentiment and emotion heads from the model pack."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moodstream import labels
from moodstream.types import ModalityResult
from serving.dedup import unique
from serving.encoders import DEFAULT_MAX_TOKENS, DEFAULT_TEXT_ENCODER, EMBEDDING_POOL, TextEncoder
from serving.heads import Head, load_head
from serving.ngram import NgramModel, load_ngram
from serving.onnx_runtime import effective_runtime
from serving.text_features import extra_features, feature_dim
from serving.top_layers import apply_branch, apply_top_layers

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "pack"
SENTIMENT_HEAD = "text_sentiment.safetensors"
EMOTION_HEAD = "text_emotion.safetensors"
NGRAM = {"sentiment": "text_sentiment_ngram.safetensors", "emotion": "text_emotion_ngram.safetensors"}
LORA_WEIGHTS = "text_lora_adapter.safetensors"
LORA_CONFIG = "text_lora_config.json"
META = "text_meta.json"
# Captions are encoded in length-sorted buckets of this many: a batch pads to its longest caption, so small buckets
# waste little. Outputs are the same; MVSA test captions in posts batches of 32, one thread: 8 per bucket instead of
# 64 took 12.6 instead of 17.1 ms CPU per caption on PyTorch and 10.0 instead of 15.4 on ONNX Runtime.
BUCKET = 8


def apply_lora(encoder: TextEncoder, config_path: Path, weights_path: Path) -> None:
    """Apply a pack's LoRA adapter to ``encoder.model`` and merge it into the base weights (no runtime cost)."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    cfg = json.loads(config_path.read_text(encoding="utf-8"))
    peft_model = get_peft_model(encoder.model, LoraConfig(**cfg))
    result = set_peft_model_state_dict(peft_model, load_file(str(weights_path)))
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"LoRA adapter {weights_path} does not fit the encoder: {result.unexpected_keys[:3]}")
    encoder.model = peft_model.merge_and_unload().to(encoder.device).eval()
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()[:12]
    encoder.name = f"{encoder.name}+lora:{digest}"


class TextModel:
    """Caption → sentiment probs (3), emotion probs (7, ``labels.EMOTIONS`` order) and a 384-d embedding.

    Each head reads the encoder's pooled views named in its ``pools`` (``serving.encoders``; default ``["mean"]``,
    the embedding) followed by its ``features`` (``serving.text_features``). All views come from one encoder pass;
    ``self.pools`` is their union, the embedding (``mean``) first. A head with an n-gram model in ``ngrams``
    (``serving.ngram``) adds its weighted logits to its own before the temperature.
    """

    def __init__(self, encoder: TextEncoder, sentiment_head: Head, emotion_head: Head,
                 meta: dict[str, Any] | None = None, batch_size: int = BUCKET,
                 features: dict[str, list[str]] | None = None, pools: dict[str, list[str]] | None = None,
                 ngrams: dict[str, NgramModel] | None = None) -> None:
        """``features``: per head (``sentiment``/``emotion``), the names of ``text_features`` appended to the
        pooled views as that head's input (none by default). ``pools``: per head, the encoder's pooled views it
        reads, in order (``["mean"]`` by default). ``ngrams``: per head, an n-gram model blended with it."""
        self.features = {"sentiment": [], "emotion": [], **(features or {})}
        self.head_pools = {"sentiment": [EMBEDDING_POOL], "emotion": [EMBEDDING_POOL], **(pools or {})}
        self.pools = [EMBEDDING_POOL]
        for name in ("sentiment", "emotion"):
            encoder.check_pools(self.head_pools[name])
            self.pools += [p for p in self.head_pools[name] if p not in self.pools]
        for name, head, n in (("sentiment", sentiment_head, len(labels.SENTIMENTS)),
                              ("emotion", emotion_head, len(labels.EMOTIONS))):
            want = encoder.dim * len(self.head_pools[name]) + feature_dim(self.features[name])
            if head.in_dim != want or head.out_dim != n:
                raise ValueError(f"{name} head is {head.in_dim}→{head.out_dim}, expected {want}→{n}")
            if name in (ngrams or {}) and ngrams[name].n_classes != n:
                raise ValueError(f"{name} n-gram model has {ngrams[name].n_classes} classes, expected {n}")
        self.ngrams = dict(ngrams or {})
        self.encoder = encoder
        self.sentiment_head = sentiment_head.to(encoder.device).eval()
        self.emotion_head = emotion_head.to(encoder.device).eval()
        self.meta = meta or {}
        self.batch_size = batch_size

    @classmethod
    def load(cls, pack_dir: Path | str | None = None, encoder: str | Path | None = None, device: str = "cpu",
             max_tokens: int = DEFAULT_MAX_TOKENS, runtime: str = "torch",
             onnx_cache: Path | str | None = None) -> TextModel:
        """Load heads (and a LoRA adapter or fine-tuned top layers, if the pack has them) from ``pack_dir`` and the
        encoder.

        ``pack_dir``: ``None`` → the committed ``serving/pack``. ``encoder``: a hub id or local directory; ``None``
        → the pack's encoder (the packaged MiniLM). The LoRA adapter and top layers are applied only when the
        encoder is the one they were trained on. ``runtime="onnx"``: the encoder, as loaded (top layers
        included), is exported to (or found in) ``onnx_cache`` and run on ONNX Runtime (``serving.onnx_models``).
        """
        pack = Path(pack_dir or DEFAULT_PACK_DIR)
        meta_path = pack / META
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        pack_encoder = meta.get("encoder", DEFAULT_TEXT_ENCODER)
        name = encoder or pack_encoder
        enc = TextEncoder.load(name, max_tokens=max_tokens, device=device)
        if (pack / LORA_WEIGHTS).is_file() and str(name) == str(pack_encoder):
            apply_lora(enc, pack / LORA_CONFIG, pack / LORA_WEIGHTS)
        if str(name) == str(pack_encoder):  # fine-tuned top layers and branch, when the pack has them
            apply_top_layers(enc, pack)
            apply_branch(enc, pack)
        sent, sent_meta = load_head(pack / SENTIMENT_HEAD, enc.device)
        emo, emo_meta = load_head(pack / EMOTION_HEAD, enc.device)
        calibration = meta.get("calibration", {})  # per head: temperature fit on val (serving.calibration)
        sent.temperature = float(calibration.get("sentiment", 1.0))
        emo.temperature = float(calibration.get("emotion", 1.0))
        metas = {"sentiment": sent_meta, "emotion": emo_meta}
        features = {t: list(m.get("features", [])) for t, m in metas.items()}
        pools = {t: list(m.get("pools", [EMBEDDING_POOL])) for t, m in metas.items()}
        ngrams = {t: load_ngram(pack / f) for t, f in NGRAM.items() if (pack / f).is_file()}
        model = cls(enc, sent, emo, meta, features=features, pools=pools, ngrams=ngrams)
        if effective_runtime(runtime, enc.device) == "onnx":
            from serving.onnx_models import text_graph

            enc.graph = text_graph(enc, model.pools, pack, onnx_cache)
            enc.name = f"{enc.name}+onnx:{enc.graph.module.path.stem}"  # embedding caches keyed apart from torch's
        return model

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self.encoder.dim

    def represent(self, texts: list[str]) -> np.ndarray:
        """The pooled views ``self.pools`` of ``texts`` side by side, (N, dim·len(pools)); the first ``dim`` columns
        are the embedding. One encoder pass."""
        return self.encoder.encode(texts, self.pools, batch_size=self.batch_size)

    @torch.inference_mode()
    def heads(self, embeddings: np.ndarray, texts: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(sentiment probs (N,3), emotion probs (N,7)) from ``represent(texts)`` (N, dim·len(pools)).

        ``embeddings`` may also be just the embeddings (N, dim): pooled views the heads need beyond the embedding
        are then computed from ``texts`` (a second encoder pass). ``texts`` is needed too when a head takes extra
        features (``self.features``)."""
        dim = self.encoder.dim
        rep = np.asarray(embeddings, dtype=np.float32)
        if rep.ndim != 2 or rep.shape[1] not in (dim, dim * len(self.pools)):
            raise ValueError(f"expected (N, {dim}) embeddings or (N, {dim * len(self.pools)}) pooled views "
                             f"{self.pools}, got {rep.shape}")
        if rep.shape[1] != dim * len(self.pools):
            if texts is None:
                raise ValueError(f"the heads also read the pooled views {self.pools[1:]}: pass the texts to heads()")
            rest = self.encoder.encode(texts, self.pools[1:], batch_size=self.batch_size)
            rep = np.hstack([rep, rest])
        out = []
        for task, head in (("sentiment", self.sentiment_head), ("emotion", self.emotion_head)):
            ngram = self.ngrams.get(task)
            if ngram is not None and texts is None:
                raise ValueError(f"the {task} head blends an n-gram model: pass the texts to heads()")
            names = self.features[task]
            if names and texts is None:
                raise ValueError(f"the {task} head also takes {names} features: pass the texts to heads()")
            cols = [rep[:, self.pools.index(p) * dim:(self.pools.index(p) + 1) * dim] for p in self.head_pools[task]]
            x = np.hstack([*cols, extra_features(names, texts)]) if names else np.hstack(cols)
            out.append(head.predict_proba(x, None if ngram is None else ngram.blend(texts)))
        return out[0], out[1]

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings (N, dim)."""
        return self.encoder.embed(texts, batch_size=self.batch_size)

    def predict(self, texts: list[str]) -> list[ModalityResult]:
        """One ``ModalityResult`` per text, in input order; ``[]`` for ``[]``. A caption repeated in the batch (a
        repost) is encoded once."""
        if not texts:
            return []
        distinct, pos = unique(list(texts))
        if len(distinct) < len(texts):
            once = self.predict(distinct)
            return [once[p] for p in pos]
        rep = self.represent(list(texts))
        sent, emo = self.heads(rep, list(texts))
        emb = np.ascontiguousarray(rep[:, : self.encoder.dim])
        return [ModalityResult(sentiment=s, emotion=e, embedding=v) for s, e, v in zip(sent, emo, emb, strict=True)]
