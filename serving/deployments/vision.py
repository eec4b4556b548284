"""``VisionModel`` deployment: batched image bytes → sentiment/emotion probabilities, faces and an embedding."""

from __future__ import annotations

from typing import Any

from ray import serve

from serving.deployments.base import DEFAULT_BATCH_WAIT_S, DEFAULT_MAX_BATCH, ModelReplica, total_items
from serving.model_config import ModelConfig
from serving.serve_metrics import BatchMeta


@serve.deployment(name="VisionModel")
class VisionDeployment(ModelReplica):
    """Hosts ``serving.vision_model.VisionModel``; a request is a list of encoded images (bytes)."""

    model_name = "vision"

    def _load(self) -> Any:
        from serving.vision_model import VisionModel

        c = ModelConfig.from_settings(self.settings)
        return VisionModel.load(pack_dir=c.pack_dir, device=self.device, backbone=c.vision_backbone,
                                max_bytes=c.image_max_bytes, max_pixels=c.image_max_pixels, runtime=c.runtime,
                                onnx_cache=c.onnx_cache, face_model=c.face_model)

    def _infer(self, items: list[bytes]) -> list[Any]:
        return self.model.predict(items)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S,
                 batch_size_fn=total_items)
    async def predict(self, items: list[list[bytes]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Images → one ``ModalityResult`` or ``ItemError`` (corrupt, too large...) each, plus the batch's meta."""
        return await self._run_batch(items)
