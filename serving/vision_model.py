"""The vision model: image bytes → image sentiment (MobileNetV2 features + a trained head), emotion from faces
(MTCNN + the pack's expression model), the face count, and an L2-normalised 1280-d embedding.

Emotion: every detected face is cropped (square, side ``FACE_MARGIN`` × the MTCNN box), turned 64×64 gray and classified
by the pack's face-expression setting (``serving.expression``: expression nets, test-time views and logit offsets as
one module); faces are combined by a mean weighted by area × detection score.
With no face there is no expression evidence, so the emotion is a deliberately weak prior derived from the image
sentiment: ``NO_FACE_MIX`` of the coarse map (positive → joy, neutral → neutral, negative → spread evenly over
anger/disgust/fear/sadness) plus the rest uniform. ``faces == 0`` tells fusion that this emotion is not face-based.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from moodstream import labels
from moodstream.types import ItemError, ModalityResult
from serving.backbones import FEATURE_DIM, IMAGE_SIZE, MobileNetV2, fast_embedder, load_backbone, preprocess
from serving.calibration import apply_temperature
from serving.dedup import unique
from serving.expression import load_expression
from serving.face_gate import FaceGate, load_face_gate
from serving.faces import Face, FaceDetector
from serving.fer_net import FER_INPUT, normalise_faces
from serving.heads import Head, load_head
from serving.image_decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image
from serving.onnx_runtime import check_runtime, effective_runtime
from serving.torch_opt import for_inference

log = logging.getLogger(__name__)

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "pack"
SENTIMENT_HEAD = "vision_sentiment.safetensors"
FER_WEIGHTS = "fer_mini_xception.safetensors"
META = "vision_meta.json"
# Crop side / MTCNN box side. MTCNN run on FER-2013 val faces finds boxes ≈ the FER frame (median ratio 0.98).
FACE_MARGIN = 1.0
NO_FACE_MIX = 0.5


def read_calibration(pack_dir: Path) -> dict[str, float]:
    """Temperatures of the image-sentiment head and the expression net (``vision_meta.json`` → ``calibration``)."""
    import json

    path = Path(pack_dir) / META
    return dict(json.loads(path.read_text(encoding="utf-8")).get("calibration", {})) if path.is_file() else {}


def _no_face_map() -> np.ndarray:
    """(3 sentiments, 7 emotions) coarse map used when no face is found."""
    m = np.zeros((len(labels.SENTIMENTS), len(labels.EMOTIONS)), dtype=np.float32)
    e = labels.EMOTION_INDEX
    m[labels.SENTIMENT_INDEX["positive"], e["joy"]] = 1.0
    m[labels.SENTIMENT_INDEX["neutral"], e["neutral"]] = 1.0
    for name in ("anger", "disgust", "fear", "sadness"):
        m[labels.SENTIMENT_INDEX["negative"], e[name]] = 0.25
    return m


NO_FACE_MAP = _no_face_map()


def no_face_emotion(sentiment: np.ndarray) -> np.ndarray:
    """Emotion distribution for an image without faces, from its sentiment probabilities (…, 3) → (…, 7)."""
    k = len(labels.EMOTIONS)
    return (NO_FACE_MIX * (sentiment @ NO_FACE_MAP) + (1.0 - NO_FACE_MIX) / k).astype(np.float32)


def faces_emotion(probs: np.ndarray, faces: list[Face]) -> np.ndarray:
    """One image's emotion from its faces' (F, 7) expression probabilities, each face weighted by area × score."""
    w = np.asarray([f.area * f.score for f in faces], dtype=np.float64) + 1e-9
    return (probs * (w / w.sum())[:, None]).sum(0).astype(np.float32)


def face_crop(image: Image.Image, face: Face, margin: float = FACE_MARGIN, size: int = FER_INPUT) -> np.ndarray:
    """Square gray crop (size×size uint8) centred on the face box; outside the image is black."""
    cx, cy = (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2
    half = max(face.x2 - face.x1, face.y2 - face.y1) * margin / 2
    box = tuple(round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    crop = image.crop(box).convert("L").resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(crop, dtype=np.uint8)


@dataclass
class VisionModel:
    """Backbone + image-sentiment head + face detector + expression net. Build with ``VisionModel.load``."""

    backbone: MobileNetV2
    sentiment_head: Head
    fer: torch.nn.Module  # the face-expression model: (N, 1, 64, 64) normalised faces → (N, 7) logits
    detector: FaceDetector
    device: torch.device
    meta: dict[str, Any]
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_size: int = 32
    # On CPU the backbone runs on chunks this small: at 32 images its activations are far larger than the caches
    # and it is 2-3× slower per image (same outputs either way).
    cpu_chunk: int = 4
    # Temperature of the expression model's probabilities, fit on FER val (expression.json / vision_meta.json).
    fer_temperature: float = 1.0
    face_setting: str = "mini_xception"  # the pack's expression setting in use (expression.json)
    # Faster equivalents of ``backbone.embed`` and ``fer`` (``torch_opt.for_inference``); eager when not given.
    embed_fn: Any = field(default=None, repr=False)
    fer_fn: Any = field(default=None, repr=False)
    # Skips the detector on images its backbone features call faceless (``serving.face_gate``); None: detect on all.
    face_gate: FaceGate | None = None
    runtime: str = "torch"  # "onnx" once ``serving.onnx_models.vision_graphs`` swapped the nets' sessions in

    def __post_init__(self) -> None:
        if self.embed_fn is None:
            self.embed_fn = self.backbone.embed
        if self.fer_fn is None:
            self.fer_fn = self.fer

    @classmethod
    def load(cls, pack_dir: str | Path | None = None, device: str = "cpu", backbone: str | None = None,
             max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS, runtime: str = "torch",
             onnx_cache: str | Path | None = None, face_model: str | None = None,
             face_gate: bool = True) -> VisionModel:
        """Load from a pack (default: the committed ``serving/pack``). ``backbone``: None → the packaged
        MobileNetV2; or a local torchvision-format .pth. ``max_bytes``/``max_pixels``: the decode limits.
        ``runtime="onnx"``: the nets, as loaded, are exported to (or found in) ``onnx_cache`` and run on ONNX
        Runtime (``serving.onnx_models``). ``face_model``: a face-expression setting of the pack's
        ``expression.json`` (None: its default). ``face_gate``: use the pack's ``face_gate.json`` if it has one."""
        check_runtime(runtime)
        from serving.device import select_device

        dev = torch.device(select_device(device) if device == "auto" else device)
        torch.set_flush_denormal(True)  # denormals make oneDNN convs (MTCNN) ~10× slower; harmless for inference
        pack = Path(pack_dir) if pack_dir is not None else DEFAULT_PACK_DIR
        head_path = pack / SENTIMENT_HEAD
        if not head_path.is_file():
            raise FileNotFoundError(f"model pack {pack} has no {SENTIMENT_HEAD} (run 'moodstream train vision')")
        head, meta = load_head(head_path, device=dev)
        calibration = read_calibration(pack)
        head.temperature = float(calibration.get("sentiment", 1.0))
        if head.in_dim != FEATURE_DIM or head.out_dim != len(labels.SENTIMENTS):
            raise ValueError(f"{SENTIMENT_HEAD} is {head.in_dim}→{head.out_dim}, expected {FEATURE_DIM}→3")
        fer, setting, fer_temperature = load_expression(pack, face_model)
        fer = fer.to(dev).eval()
        net = load_backbone(backbone, device=dev)
        onnx = effective_runtime(runtime, dev) == "onnx"
        model = cls(
            backbone=net, sentiment_head=head, fer=fer, detector=FaceDetector(device=dev), device=dev,
            meta=meta, max_bytes=max_bytes, max_pixels=max_pixels,
            embed_fn=None if onnx else fast_embedder(net),
            fer_fn=None if onnx else for_inference(fer, torch.zeros(2, 1, FER_INPUT, FER_INPUT, device=dev)),
            fer_temperature=fer_temperature, face_setting=setting,
            face_gate=load_face_gate(pack, FEATURE_DIM) if face_gate else None,
        )
        if onnx:
            from serving.onnx_models import vision_graphs

            vision_graphs(model, pack, onnx_cache)
        return model

    # ---- pieces (also used by training / evaluation) ---------------------------------------------------------
    def decode(self, data: bytes) -> Image.Image:
        """Defensive decode with this model's limits (raises ``ImageDecodeError``)."""
        if data is None:
            raise ImageDecodeError("no image bytes")
        # JPEGs decode straight to about the size used: longer side ≥ the detector's max_side, shorter ≥ 224.
        return decode_image(data, self.max_bytes, self.max_pixels, need=(self.detector.max_side, IMAGE_SIZE))

    @torch.inference_mode()
    def features(self, images: list[Image.Image]) -> np.ndarray:
        """Raw pooled backbone features (N, 1280), batched."""
        step = self.cpu_chunk if self.device.type == "cpu" else self.batch_size
        out = [self.embed_fn(preprocess(images[i:i + step]).to(self.device)).cpu() for i in range(0, len(images), step)]
        return torch.cat(out).numpy() if out else np.zeros((0, FEATURE_DIM), np.float32)

    @torch.inference_mode()
    def expressions(self, gray_faces: np.ndarray) -> np.ndarray:
        """(N, 64, 64) uint8 gray faces → (N, 7) calibrated emotion probabilities of the expression model."""
        if len(gray_faces) == 0:
            return np.zeros((0, len(labels.EMOTIONS)), np.float32)
        x = normalise_faces(gray_faces).to(self.device)
        if x.shape[-1] != FER_INPUT or x.shape[-2] != FER_INPUT:
            x = F.interpolate(x, size=(FER_INPUT, FER_INPUT), mode="bilinear", align_corners=False)
        p = self.fer_fn(x).softmax(1)
        return apply_temperature(p.cpu().numpy(), self.fer_temperature)

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in one image; a detector failure counts as no face (logged), never fails the item."""
        try:
            return self.detector.detect(image)
        except Exception:
            log.warning("face detection failed on a %sx%s image", *image.size, exc_info=True)
            return []

    def detect_all(self, images: list[Image.Image], features: np.ndarray | None = None) -> list[list[Face]]:
        """Faces of each image, detected as one batch; if that fails, image by image (see ``detect``). With the
        images' backbone ``features`` and a face gate, images the gate calls faceless get no detector run."""
        if features is not None and self.face_gate is not None and len(images):
            keep = self.face_gate.keep(features)
            found = iter(self.detect_all([im for im, k in zip(images, keep, strict=True) if k]) if keep.any() else [])
            return [next(found) if k else [] for k in keep]
        try:
            return self.detector.detect_batch(images)
        except Exception:
            log.warning("batched face detection failed; retrying image by image", exc_info=True)
            return [self.detect(im) for im in images]

    # ---- the batch API ---------------------------------------------------------------------------------------
    def predict(self, images: list[bytes]) -> list[ModalityResult | ItemError]:
        """One result per input, in order: a ``ModalityResult``, or an ``ItemError`` for that item only. An image
        repeated in the batch (a repost) is computed once."""
        distinct, pos = unique(list(images))
        if len(distinct) < len(images):
            once = self.predict(distinct)
            return [once[p] for p in pos]
        results: list[ModalityResult | ItemError | None] = [None] * len(images)
        ok: list[int] = []
        decoded: list[Image.Image] = []
        for i, data in enumerate(images):
            try:
                decoded.append(self.decode(data))
                ok.append(i)
            except ImageDecodeError as e:
                results[i] = ItemError(e.reason, stage="decode")
        if decoded:
            feats = self.features(decoded)
            sent = self.sentiment_head.predict_proba(feats)
            emb = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            faces = self.detect_all(decoded, feats)
            crops = [face_crop(im, f) for im, fs in zip(decoded, faces, strict=True) for f in fs]
            probs = self.expressions(np.stack(crops)) if crops else None
            k = 0
            for j, i in enumerate(ok):
                fs = faces[j]
                if fs:
                    emo = faces_emotion(probs[k:k + len(fs)], fs)
                    k += len(fs)
                else:
                    emo = no_face_emotion(sent[j])
                results[i] = ModalityResult(sentiment=sent[j].astype(np.float32), emotion=emo,
                                            embedding=emb[j].astype(np.float32), faces=len(fs))
        return results  # type: ignore[return-value]
