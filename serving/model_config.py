"""What the models need from the settings, as plain values: built once at an entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moodstream.config import DEFAULT_CONFLICT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_BELOW, Settings
from serving.encoders import DEFAULT_MAX_TOKENS
from serving.image_decode import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The pack and the models to load, where to run them, and the input limits. Defaults: the packaged pack."""

    pack_dir: Path | None = None
    text_encoder: str | None = None  # hub id or local dir; None: the pack's encoder
    vision_backbone: str | None = None  # local .pth; None: the packaged MobileNetV2
    fusion_strategy: str | None = None  # None: the pack's default
    face_model: str | None = None  # None: the pack's default face-expression setting (expression.json)
    face_gate: bool = True  # skip face detection where the pack's face gate calls an image faceless
    device: str = "auto"
    torch_threads: int | None = None
    text_max_tokens: int = DEFAULT_MAX_TOKENS
    image_max_bytes: int = DEFAULT_MAX_BYTES
    image_max_pixels: int = DEFAULT_MAX_PIXELS
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW  # the per-prediction flags' thresholds
    conflict_min_confidence: float = DEFAULT_CONFLICT_MIN_CONFIDENCE
    runtime: str = "torch"  # "onnx" | "torch" (serving.onnx_runtime.RUNTIMES)
    onnx_cache: Path | None = None  # None: serving.onnx_export.DEFAULT_CACHE_DIR

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelConfig:
        return cls(pack_dir=settings.model_dir, text_encoder=settings.text_model,
                   vision_backbone=settings.vision_model, fusion_strategy=settings.fusion_strategy,
                   face_model=settings.face_model, face_gate=settings.face_gate,
                   device=settings.device, torch_threads=settings.torch_threads,
                   text_max_tokens=settings.text_max_tokens, image_max_bytes=settings.image_max_bytes,
                   image_max_pixels=settings.image_max_pixels, uncertain_below=settings.uncertain_below,
                   conflict_min_confidence=settings.conflict_min_confidence, runtime=settings.runtime,
                   onnx_cache=settings.onnx_cache_dir)
