"""Face detection with MTCNN (Zhang et al. 2016): our own P/R/O-net modules, box maths and NMS, loading the
pretrained weights shipped in ``facenet-pytorch`` (whose own code needs torchvision, so it is not imported).

``FaceDetector.detect(image)`` returns ``Face`` boxes (pixel coordinates in the given image) with scores;
``detect_batch(images)`` the same for a batch, with R-net and O-net run once over all the images' candidates. To keep
CPU cost bounded, detection runs on a copy whose longer side is at most ``max_side``; boxes are mapped back.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from serving.torch_opt import for_inference


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: box (x1, y1, x2, y2) in pixels of the input image, and the O-net score."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float

    @property
    def area(self) -> float:
        return max(self.x2 - self.x1, 0.0) * max(self.y2 - self.y1, 0.0)


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12×12 receptive field, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x).softmax(1)


class RNet(nn.Module):
    """Refine net on 24×24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))  # Caffe (W, H, C) flattening
        return self.dense5_2(x), self.dense5_1(x).softmax(1)


class ONet(nn.Module):
    """Output net on 48×48 crops (box regression, score; landmarks unused here)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_1(x).softmax(1)


def mtcnn_weights_dir() -> Path:
    """``facenet_pytorch/data`` (located without importing facenet_pytorch, which imports torchvision)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("install facenet-pytorch (--no-deps) for the MTCNN weights")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; ``mode`` "union" (IoU) or "min" (overlap / smaller area). Returns indices."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= thresh]
    return np.asarray(keep, dtype=np.int64)


def _square(b: np.ndarray) -> np.ndarray:
    """Grow boxes (x1, y1, x2, y2, ...) to squares around their centres."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += (w - side) * 0.5
    b[:, 1] += (h - side) * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = b.copy()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


def _crop_arrays(image: Image.Image, boxes: np.ndarray, size: int) -> list[np.ndarray]:
    """Crop boxes (MTCNN's 1-based inclusive convention; outside the image is black) and resize to size×size
    (Pillow bilinear, antialiased when shrinking): uint8 (size, size, 3) arrays."""
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    return [np.asarray(image.crop((int(x1) - 1, int(y1) - 1, int(x2), int(y2))).resize((size, size), Image.BILINEAR))
            if x2 > x1 and y2 > y1 else np.zeros((size, size, 3), np.uint8) for x1, y1, x2, y2 in b]


def _to_input(arr: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float (N, 3, H, W) scaled to about [-1, 1]."""
    return (torch.from_numpy(arr).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


class FaceDetector:
    """MTCNN with the usual thresholds; ``min_face`` in pixels of the (downscaled) detection image.

    ``detect_batch`` runs R-net and O-net over the candidates of all the images at once (in L2-sized chunks, with
    the TorchScript/oneDNN versions of the nets); P-net still runs per image and pyramid level. Results equal
    ``detect`` on each image alone (up to float rounding).
    """

    def __init__(
        self,
        weights_dir: str | Path | None = None,
        *,
        min_face: int = 24,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9),
        factor: float = 0.709,
        max_side: int = 640,
        device: str | torch.device = "cpu",
    ) -> None:
        d = Path(weights_dir) if weights_dir else mtcnn_weights_dir()
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, name in ((self.pnet, "pnet"), (self.rnet, "rnet"), (self.onet, "onet")):
            net.load_state_dict(torch.load(d / f"{name}.pt", map_location="cpu", weights_only=True), strict=True)
            net.eval().to(self.device)
        # Faster equivalents on CPU (torch_opt.for_inference); ONNX sessions replace them on that runtime.
        self.pnet_fn = self.pnet
        self.rnet_fn = for_inference(self.rnet, torch.zeros(2, 3, 24, 24, device=self.device))
        self.onet_fn = for_inference(self.onet, torch.zeros(2, 3, 48, 48, device=self.device))
        self.min_face, self.thresholds, self.factor, self.max_side = min_face, thresholds, factor, max_side
        # R/O-net crops per call: small chunks keep the activations in a core's L2 cache (bigger ones were no faster).
        self.crop_chunk = 16

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in an RGB image, best first."""
        return self.detect_batch([image])[0]

    @torch.inference_mode()
    def detect_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        """Faces of each image (best first), in input order."""
        small, scale = [], []
        for image in images:
            w0, h0 = image.size
            s = min(1.0, self.max_side / max(w0, h0))
            if s < 1.0:
                image = image.resize((max(1, round(w0 * s)), max(1, round(h0 * s))), Image.BILINEAR,
                                     reducing_gap=2.0)
            small.append(image.convert("RGB"))
            scale.append(s)
        boxes = self._detect(small)
        return [[Face(float(b[0] / s), float(b[1] / s), float(b[2] / s), float(b[3] / s), float(b[4])) for b in bs]
                for bs, s in zip(boxes, scale, strict=True)]

    # ---- stages --------------------------------------------------------------------------------------------------
    def _scales(self, w: int, h: int) -> list[float]:
        m = 12.0 / self.min_face
        scales, minl = [], min(h, w) * m
        while minl >= 12:
            scales.append(m * self.factor ** len(scales))
            minl *= self.factor
        return scales

    def _proposals(self, image: Image.Image) -> np.ndarray:
        """Stage 1: P-net over the image pyramid → squared candidate boxes (x1, y1, x2, y2, score).

        One image and one pyramid level per call: P-net is compute-bound, and batching levels of several images
        on a padded canvas (masking the padding out of the ceil-mode pool) measured no faster."""
        w, h = image.size
        t1 = self.thresholds[0]
        cands = []
        for sc in self._scales(w, h):
            x = np.array(image.resize((int(w * sc + 1), int(h * sc + 1)), Image.BILINEAR))[None]
            reg, prob = self.pnet_fn(_to_input(x).to(self.device))
            p = prob[0, 1].cpu().numpy()
            ys, xs = np.nonzero(p >= t1)
            if len(ys) == 0:
                continue
            r = reg[0].cpu().numpy()[:, ys, xs].T
            q1x, q1y = np.floor((2 * xs + 1) / sc), np.floor((2 * ys + 1) / sc)
            q2x, q2y = np.floor((2 * xs + 12) / sc), np.floor((2 * ys + 12) / sc)
            b = np.column_stack([q1x, q1y, q2x, q2y, p[ys, xs], r]).astype(np.float64)
            cands.append(b[nms(b[:, :4], b[:, 4], 0.5)])
        if not cands:
            return np.zeros((0, 5))
        b = np.concatenate(cands)
        b = b[nms(b[:, :4], b[:, 4], 0.7)]
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        b = np.column_stack([b[:, 0] + b[:, 5] * bw, b[:, 1] + b[:, 6] * bh,
                             b[:, 2] + b[:, 7] * bw, b[:, 3] + b[:, 8] * bh, b[:, 4]])
        return _square(b)

    def _run_crops(self, net, images: list[Image.Image], boxes: list[np.ndarray], size: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
        """One ``net`` call over the size×size crops of every image's boxes → per image (regression, face score)."""
        arrays = [a for im, b in zip(images, boxes, strict=True) if len(b) for a in _crop_arrays(im, b, size)]
        if not arrays:
            return [(np.zeros((0, 4)), np.zeros(0)) for _ in boxes]
        x = _to_input(np.stack(arrays)).to(self.device)
        outs = [net(x[i:i + self.crop_chunk]) for i in range(0, len(x), self.crop_chunk)]
        reg = torch.cat([o[0] for o in outs]).cpu().numpy()
        score = torch.cat([o[1][:, 1] for o in outs]).cpu().numpy()
        out, k = [], 0
        for b in boxes:
            out.append((reg[k:k + len(b)], score[k:k + len(b)]))
            k += len(b)
        return out

    def _detect(self, images: list[Image.Image]) -> list[np.ndarray]:
        """Boxes (x1, y1, x2, y2, score) per image, best first, in that image's pixels."""
        _, t2, t3 = self.thresholds
        boxes = [self._proposals(im) for im in images]
        # Stage 2: R-net on 24×24 crops.
        refined = []
        for b, (reg, score) in zip(boxes, self._run_crops(self.rnet_fn, images, boxes, 24), strict=True):
            ok = score > t2
            b, reg = np.column_stack([b[ok, :4], score[ok]]), reg[ok]
            if len(b) == 0:
                refined.append(np.zeros((0, 5)))
                continue
            keep = nms(b[:, :4], b[:, 4], 0.7)
            refined.append(_square(_regress(b[keep], reg[keep])))
        # Stage 3: O-net on 48×48 crops.
        out = []
        for im, b, (reg, score) in zip(images, refined, self._run_crops(self.onet_fn, images, refined, 48),
                                       strict=True):
            ok = score > t3
            b = _regress(np.column_stack([b[ok, :4], score[ok]]), reg[ok])
            if len(b) == 0:
                out.append(np.zeros((0, 5)))
                continue
            w, h = im.size
            b = b[nms(b[:, :4], b[:, 4], 0.7, mode="min")]
            b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
            b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
            out.append(b[np.argsort(-b[:, 4])])
        return out
