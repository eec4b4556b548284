"""``FusionModel`` deployment: batched (text result, image result) pairs → fused sentiment and emotion."""

from __future__ import annotations

from typing import Any

from ray import serve

from moodstream.config import get_settings
from moodstream.types import ModalityResult
from serving.deployments.base import ModelReplica, total_items
from serving.serve_metrics import BatchMeta

_defaults = get_settings()
Pair = tuple[ModalityResult | None, ModalityResult | None]


@serve.deployment(name="FusionModel")
class FusionDeployment(ModelReplica):
    """Hosts ``serving.fusion.FusionModel``; a request is a list of (text, image) modality results."""

    model_name = "fusion"

    def _load(self) -> Any:
        from serving.fusion import FusionModel

        return FusionModel.load(pack_dir=self.settings.model_dir, strategy=self.settings.fusion_strategy)

    def _infer(self, items: list[Pair]) -> list[Any]:
        fused = self.model.fuse([t for t, _ in items], [i for _, i in items])
        return [(s, e, self.model.strategy) for s, e in fused]

    def status(self) -> dict[str, Any]:
        return {**super().status(), "strategy": self.model.strategy if self.model is not None else None}

    @serve.batch(max_batch_size=_defaults.serve_max_batch_size, batch_wait_timeout_s=_defaults.serve_batch_wait_s,
                 batch_size_fn=total_items)
    async def predict(self, items: list[list[Pair]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Pairs → one (sentiment probs, emotion probs) each, plus the batch's meta on its first request."""
        return await self._run_batch(items)
