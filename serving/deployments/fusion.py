"""``FusionModel`` deployment: batched (text result, image result) pairs → fused sentiment and emotion."""

from __future__ import annotations

from typing import Any

from ray import serve

from moodstream.types import ModalityResult
from serving.deployments.base import DEFAULT_BATCH_WAIT_S, DEFAULT_MAX_BATCH, ModelReplica, total_items
from serving.serve_metrics import BatchMeta

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

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S,
                 batch_size_fn=total_items)
    async def predict(self, items: list[list[Pair]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Pairs → one (sentiment probs, emotion probs) each, plus the batch's meta on its first request."""
        return await self._run_batch(items)
