"""``VisionModel`` deployment: batched image bytes → sentiment/emotion probabilities, faces and an embedding."""

from __future__ import annotations

from typing import Any

from ray import serve

from moodstream.config import get_settings
from serving.deployments.base import ModelReplica, total_items
from serving.serve_metrics import BatchMeta

_defaults = get_settings()


@serve.deployment(name="VisionModel")
class VisionDeployment(ModelReplica):
    """Hosts ``serving.vision_model.VisionModel``; a request is a list of encoded images (bytes)."""

    model_name = "vision"

    def _load(self) -> Any:
        from serving.vision_model import VisionModel

        return VisionModel.load(pack_dir=self.settings.model_dir, device=self.device)

    def _infer(self, items: list[bytes]) -> list[Any]:
        return self.model.predict(items)

    @serve.batch(max_batch_size=_defaults.serve_max_batch_size, batch_wait_timeout_s=_defaults.serve_batch_wait_s,
                 batch_size_fn=total_items)
    async def predict(self, items: list[list[bytes]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Images → one ``ModalityResult`` or ``ItemError`` (corrupt, too large...) each, plus the batch's meta."""
        return await self._run_batch(items)
