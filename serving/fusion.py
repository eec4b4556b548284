"""Fusion of the text and image model outputs into one sentiment and one emotion distribution per post.

Sentiment, four strategies (one per seed paper), all trained on MVSA-Single train (fused label), tuned on val:

* ``late``      weighted average of the two modalities' sentiment probabilities (weight tuned on val);
* ``stacked``   an MLP over the concatenated probability vectors ``[p_text, p_image, mask]``;
* ``concat``    an MLP over the concatenated, standardised embeddings ``[e_text (384), e_image (1280), mask]``;
* ``attention`` a 1-layer transformer encoder over ``[CLS, text token, image token]``: each token is a linear
  projection of the modality's standardised embedding and its probabilities to d=64 plus a modality-type
  embedding; a missing modality's token is masked out of attention.

Each network is a small seed ensemble (``Averaged``: mean of the members' softmax), which steadies the choice made
on the 330-item val split. A network's output is either the fused logits or (``factored`` / ``joint`` in its arch,
``moodstream train fusion --structure rule``) MVSA's own labelling rule applied to its text-label and image-label
outputs, or to its (text_label, image_label) pair distribution (``_Factored``).

Missing modality: the networks are trained with modality dropout (zero input + mask flag / masked token) and so
accept a one-modality post, but by default (``single_modality="fallback"``) a post with only text or only an image
gets that modality's own sentiment probabilities, from the model trained for exactly that input (MVSA's fused
labels carry an image-heavy positive prior that is wrong for text-only posts). ``"model"`` uses the network.

Emotion (no multimodal emotion labels exist to train on), a fixed rule: with an image that has ``f ≥ 1`` faces,
``w = f / (f + 1)`` of the weight goes to the face-derived image emotion and ``1 − w`` to the text emotion; with no
face the text emotion alone; a one-modality post takes that modality's emotion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moodstream.types import ModalityResult
from serving.calibration import apply_temperature

STRATEGIES = ("late", "stacked", "concat", "attention")
NETWORK_STRATEGIES = ("stacked", "concat", "attention")
TEXT_DIM, IMAGE_DIM, N_SENT, N_EMO = 384, 1280, 3, 7
NEG, NEU, POS = 0, 1, 2  # index in moodstream.labels.SENTIMENTS
CONFIG_FILE = "fusion.json"


def weights_file(strategy: str) -> str:
    """File name of a network strategy's weights inside a pack."""
    return f"fusion_{strategy}.safetensors"


# --------------------------------------------------------------------------------------------------
# Networks. Inputs: tp/ip (N,3) probabilities, te (N,384)/ie (N,1280) embeddings, mask (N,2) of present modalities.
# --------------------------------------------------------------------------------------------------


class _Standardize(nn.Module):
    """Fixed per-feature standardisation (mean/std from MVSA train), stored with the weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp(min=1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def rule_log_probs(text_logits: torch.Tensor, image_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log P(fused label) by MVSA's rule from per-modality label logits (N,3): agree → that label, one neutral →
    the other, positive/negative conflict → excluded (MVSA drops such pairs), renormalised. An absent modality
    (``mask`` 0) counts as surely neutral, so the fused distribution is the other modality's."""
    neu = torch.zeros_like(text_logits)
    neu[:, NEU] = 1.0
    m = mask.to(text_logits.dtype)
    pt = torch.softmax(text_logits, 1) * m[:, :1] + neu * (1 - m[:, :1])
    pi = torch.softmax(image_logits, 1) * m[:, 1:] + neu * (1 - m[:, 1:])
    neg = pt[:, NEG] * (pi[:, NEG] + pi[:, NEU]) + pt[:, NEU] * pi[:, NEG]
    pos = pt[:, POS] * (pi[:, POS] + pi[:, NEU]) + pt[:, NEU] * pi[:, POS]
    out = torch.stack([neg, pt[:, NEU] * pi[:, NEU], pos], 1)  # SENTIMENTS order
    return torch.log(out.clamp(min=1e-12)) - torch.log(out.sum(1, keepdim=True).clamp(min=1e-12))


RULE_PAIRS = {NEG: ((NEG, NEG), (NEG, NEU), (NEU, NEG)), NEU: ((NEU, NEU),), POS: ((POS, POS), (POS, NEU), (NEU, POS))}


def pair_log_probs(pair_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log P(text_label, image_label) (N,9; index ``3·t + i``) from 9 logits: the positive/negative conflicts
    (which MVSA drops) get no mass, nor does a non-neutral label of an absent modality (``mask`` 0)."""
    z = pair_logits.view(-1, N_SENT, N_SENT).clone()
    z[:, NEG, POS] = z[:, POS, NEG] = float("-inf")
    absent_t, absent_i = mask[:, 0] <= 0, mask[:, 1] <= 0
    for k in (NEG, POS):
        z[absent_t, k, :] = float("-inf")
        z[absent_i, :, k] = float("-inf")
    return torch.log_softmax(z.view(-1, N_SENT * N_SENT), 1)


def pair_fused_log_probs(pair_logp: torch.Tensor) -> torch.Tensor:
    """log P(fused label) from ``pair_log_probs`` by MVSA's rule (agree → that label, one neutral → the other)."""
    return torch.stack([torch.logsumexp(pair_logp[:, [N_SENT * t + i for t, i in RULE_PAIRS[c]]], 1)
                        for c in (NEG, NEU, POS)], 1)


class _Factored(nn.Module):
    """Base of the networks. The last layer gives ``N_SENT`` fused logits; or, with ``factored``, MVSA's own
    labelling rule is the structure: 9 outputs — text-label and image-label logits fused by ``rule_log_probs``
    (independent modalities) plus a ``residual`` correction of the fused logits; or, with ``joint``, 9 logits of
    the (text_label, image_label) pair (``pair_log_probs``), fused by ``pair_fused_log_probs``. ``parts`` returns
    (fused logits, text logits, image logits) — for ``joint``, (fused, pair log-probs, None) — for training on
    ``label``, ``text_label`` and ``image_label``."""

    factored: bool = False
    residual: bool = False
    joint: bool = False

    def outputs(self) -> int:
        return 3 * N_SENT if self.factored or self.joint else N_SENT

    def head(self, tp, ip, te, ie, mask) -> torch.Tensor:  # the raw last-layer output
        raise NotImplementedError

    def parts(self, tp, ip, te, ie, mask) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        z = self.head(tp, ip, te, ie, mask)
        if self.joint:
            pairs = pair_log_probs(z, mask)
            return pair_fused_log_probs(pairs), pairs, None
        if not self.factored:
            return z, None, None
        zt, zi, zr = z[:, :N_SENT], z[:, N_SENT:2 * N_SENT], z[:, 2 * N_SENT:]
        fused = rule_log_probs(zt, zi, mask)
        return (fused + zr if self.residual else fused), zt, zi

    def forward(self, tp, ip, te, ie, mask):
        return self.parts(tp, ip, te, ie, mask)[0]


class StackedNet(_Factored):
    """MLP over ``[p_text, p_image, mask]`` (missing modality: zeros and mask 0)."""

    def __init__(self, hidden: int = 32, dropout: float = 0.1, factored: bool = False, residual: bool = False,
                 joint: bool = False) -> None:
        super().__init__()
        self.factored, self.residual, self.joint = factored, residual, joint
        self.mlp = nn.Sequential(nn.Linear(2 * N_SENT + 2, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, self.outputs()))

    def head(self, tp, ip, te, ie, mask):
        m = mask.to(tp.dtype)
        return self.mlp(torch.cat([tp * m[:, :1], ip * m[:, 1:], m], dim=1))


class ConcatNet(_Factored):
    """MLP over standardised ``[e_text, e_image, mask]`` (missing modality: zeros and mask 0); with ``probs`` also
    over each modality's (calibrated) sentiment probabilities, so it can weigh the text head's evidence."""

    def __init__(self, hidden: int = 128, dropout: float = 0.5, probs: bool = False, factored: bool = False,
                 residual: bool = False, joint: bool = False) -> None:
        super().__init__()
        self.probs, self.factored, self.residual, self.joint = probs, factored, residual, joint
        self.norm_t, self.norm_i = _Standardize(TEXT_DIM), _Standardize(IMAGE_DIM)
        extra = 2 * N_SENT if probs else 0
        self.mlp = nn.Sequential(nn.Dropout(0.2), nn.Linear(TEXT_DIM + IMAGE_DIM + 2 + extra, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, self.outputs()))

    def head(self, tp, ip, te, ie, mask):
        m = mask.to(te.dtype)
        parts = [self.norm_t(te) * m[:, :1], self.norm_i(ie) * m[:, 1:], m]
        if self.probs:  # centred so that a missing modality (zeros) and a flat distribution both read as ~0
            parts += [(tp - 1.0 / N_SENT) * 3.0 * m[:, :1], (ip - 1.0 / N_SENT) * 3.0 * m[:, 1:]]
        return self.mlp(torch.cat(parts, dim=1))


class AttentionNet(_Factored):
    """Transformer encoder over ``[CLS, text, image]`` tokens; absent modalities are key-padding-masked."""

    def __init__(self, d: int = 64, layers: int = 1, heads: int = 4, dropout: float = 0.2, factored: bool = False,
                 residual: bool = False, joint: bool = False) -> None:
        super().__init__()
        self.factored, self.residual, self.joint = factored, residual, joint
        self.norm_t, self.norm_i = _Standardize(TEXT_DIM), _Standardize(IMAGE_DIM)
        self.proj_t = nn.Sequential(nn.Dropout(0.2), nn.Linear(TEXT_DIM + N_SENT, d))
        self.proj_i = nn.Sequential(nn.Dropout(0.2), nn.Linear(IMAGE_DIM + N_SENT, d))
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.type_emb = nn.Parameter(torch.zeros(3, d))
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.type_emb, std=0.02)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, self.outputs()))

    def head(self, tp, ip, te, ie, mask):
        n = te.shape[0]
        tok_t = self.proj_t(torch.cat([self.norm_t(te), tp], 1)) + self.type_emb[1]
        tok_i = self.proj_i(torch.cat([self.norm_i(ie), ip], 1)) + self.type_emb[2]
        tokens = torch.stack([self.cls.expand(n, 1, -1)[:, 0] + self.type_emb[0], tok_t, tok_i], dim=1)
        pad = torch.cat([torch.zeros(n, 1, dtype=torch.bool, device=te.device), ~mask.bool()], dim=1)
        return self.out(self.encoder(tokens, src_key_padding_mask=pad)[:, 0])


NETWORKS: dict[str, type[nn.Module]] = {"stacked": StackedNet, "concat": ConcatNet, "attention": AttentionNet}


class Averaged(nn.Module):
    """Seed ensemble: the log of the members' mean softmax (so a softmax of the output is that mean)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, tp, ip, te, ie, mask):
        probs = torch.stack([torch.softmax(m(tp, ip, te, ie, mask), dim=1) for m in self.members]).mean(0)
        return torch.log(probs.clamp(min=1e-12))


def build_network(strategy: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A fresh network for ``strategy`` with the hyper-parameters in ``config``."""
    return NETWORKS[strategy](**(config or {}))


def build_ensemble(strategy: str, config: dict[str, Any] | None = None, members: int = 1) -> Averaged:
    """``members`` fresh networks for ``strategy``, averaged."""
    return Averaged([build_network(strategy, config) for _ in range(members)])


# --------------------------------------------------------------------------------------------------
# Batching helpers
# --------------------------------------------------------------------------------------------------


def stack_inputs(text: Sequence[ModalityResult | None], image: Sequence[ModalityResult | None],
                 ) -> dict[str, np.ndarray]:
    """Arrays ``tp, ip, te, ie, mask`` (float32; zeros where a modality is missing) and ``faces`` (int)."""
    n = len(text)
    out = {"tp": np.zeros((n, N_SENT), np.float32), "ip": np.zeros((n, N_SENT), np.float32),
           "te": np.zeros((n, TEXT_DIM), np.float32), "ie": np.zeros((n, IMAGE_DIM), np.float32),
           "tq": np.zeros((n, N_EMO), np.float32), "iq": np.zeros((n, N_EMO), np.float32),
           "mask": np.zeros((n, 2), np.float32), "faces": np.zeros(n, np.int64)}
    for k, (t, i) in enumerate(zip(text, image, strict=True)):
        if t is not None:
            out["tp"][k], out["tq"][k], out["te"][k], out["mask"][k, 0] = t.sentiment, t.emotion, t.embedding, 1
        if i is not None:
            out["ip"][k], out["iq"][k], out["ie"][k], out["mask"][k, 1] = i.sentiment, i.emotion, i.embedding, 1
            out["faces"][k] = int(i.faces or 0)
    return out


def late_probs(tp: np.ndarray, ip: np.ndarray, mask: np.ndarray, w_text: float) -> np.ndarray:
    """Weighted average of the present modalities' probabilities (weights renormalised over what is present)."""
    w = mask * np.asarray([w_text, 1.0 - w_text], np.float32)
    w_sum = w.sum(1, keepdims=True)
    w = np.where(w_sum > 0, w / np.maximum(w_sum, 1e-12), mask / np.maximum(mask.sum(1, keepdims=True), 1))
    return w[:, :1] * tp + w[:, 1:] * ip


def emotion_rule(tq: np.ndarray, iq: np.ndarray, mask: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Fused emotion: face-derived image emotion weighted ``f/(f+1)`` by ``f`` faces, text emotion the rest."""
    f = faces.astype(np.float32)
    w_img = np.where(mask[:, 0] > 0, np.where(mask[:, 1] > 0, f / (f + 1.0), 0.0), 1.0)[:, None]
    out = (1.0 - w_img) * tq + w_img * iq
    return out / np.maximum(out.sum(1, keepdims=True), 1e-12)


def run_network(net: nn.Module, arrays: dict[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """Softmax output of a network on (a subset of) stacked inputs."""
    sel = slice(None) if rows is None else rows
    args = [torch.from_numpy(np.ascontiguousarray(arrays[k][sel])) for k in ("tp", "ip", "te", "ie", "mask")]
    with torch.inference_mode():
        return torch.softmax(net(*args).float(), dim=1).numpy()


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class FusionModel:
    """Every fusion strategy of a pack; ``strategy`` is the one ``fuse`` uses unless told otherwise."""

    def __init__(self, config: dict[str, Any], networks: dict[str, nn.Module], strategy: str | None = None,
                 single_modality: str | None = None) -> None:
        self.config = config
        self.networks = networks
        self.strategy = strategy or config.get("default", "late")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown fusion strategy {self.strategy!r}; one of {STRATEGIES}")
        if self.strategy in NETWORK_STRATEGIES and self.strategy not in networks:
            raise ValueError(f"fusion strategy {self.strategy!r} has no weights in this pack")
        self.single_modality = single_modality or config.get("single_modality", "fallback")
        self.w_text = float(config.get("late", {}).get("w_text", 0.5))

    @classmethod
    def load(cls, pack_dir: Path | str | None = None, strategy: str | None = None,
             single_modality: str | None = None) -> FusionModel:
        """Load ``fusion.json`` and every ``fusion_<strategy>.safetensors`` of a pack (default: the packaged one)."""
        from safetensors.torch import load_file

        from serving.pack import PackError, load_pack

        pack_dir = load_pack(pack_dir).dir
        cfg_path = pack_dir / CONFIG_FILE
        if not cfg_path.is_file():
            raise PackError(f"model pack {pack_dir} is missing {CONFIG_FILE!r}")
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        networks: dict[str, nn.Module] = {}
        for name in NETWORK_STRATEGIES:
            path = pack_dir / weights_file(name)
            if not path.is_file():
                continue
            net = build_ensemble(name, config.get(name, {}).get("arch"), int(config.get(name, {}).get("members", 1)))
            net.load_state_dict(load_file(str(path)), strict=True)
            networks[name] = net.eval()
        return cls(config, networks, strategy, single_modality)

    @property
    def strategies(self) -> tuple[str, ...]:
        """Strategies this model can run."""
        return ("late", *[s for s in NETWORK_STRATEGIES if s in self.networks])

    def sentiment(self, arrays: dict[str, np.ndarray], strategy: str | None = None) -> np.ndarray:
        """Fused sentiment probabilities (N,3) from ``stack_inputs`` arrays."""
        strategy = strategy or self.strategy
        mask = arrays["mask"]
        if (mask.sum(1) == 0).any():
            raise ValueError("an item has neither a text nor an image result")
        out = late_probs(arrays["tp"], arrays["ip"], mask, self.w_text)  # also the single-modality fallback
        both = mask.sum(1) == 2
        if strategy == "late":
            if both.any():
                out[both] = apply_temperature(out[both], self.temperature("late"))
            return out
        if strategy not in self.networks:
            raise ValueError(f"fusion strategy {strategy!r} is not in this pack ({', '.join(self.strategies)})")
        rows = np.arange(len(mask)) if self.single_modality == "model" else np.flatnonzero(both)
        if len(rows):
            probs = run_network(self.networks[strategy], arrays, rows)
            out[rows] = apply_temperature(probs, self.temperature(strategy))
        return out

    def temperature(self, strategy: str | None = None) -> float:
        """The calibration temperature of a strategy (``fusion.json`` → ``<strategy>.temperature``; 1.0 if absent),
        applied to its output on two-modality posts (one-modality posts get that modality's calibrated output)."""
        return float(self.config.get(strategy or self.strategy, {}).get("temperature", 1.0))

    def fuse(self, text: Sequence[ModalityResult | None], image: Sequence[ModalityResult | None],
             strategy: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per item (fused sentiment probs (3,), fused emotion probs (7,)); each item needs ≥ 1 modality."""
        if len(text) != len(image):
            raise ValueError(f"{len(text)} text results but {len(image)} image results")
        if not text:
            return []
        arrays = stack_inputs(text, image)
        sent = self.sentiment(arrays, strategy)
        emo = emotion_rule(arrays["tq"], arrays["iq"], arrays["mask"], arrays["faces"])
        return [(sent[k].astype(np.float32), emo[k].astype(np.float32)) for k in range(len(text))]
