"""``TextModel`` deployment: batched caption → sentiment/emotion probabilities and an embedding."""

from __future__ import annotations

from typing import Any

from ray import serve

from serving.deployments.base import DEFAULT_BATCH_WAIT_S, DEFAULT_MAX_BATCH, ModelReplica, total_items
from serving.model_config import ModelConfig
from serving.serve_metrics import BatchMeta


@serve.deployment(name="TextModel")
class TextDeployment(ModelReplica):
    """Hosts ``serving.text_model.TextModel``; a request is a list of captions."""

    model_name = "text"

    def _load(self) -> Any:
        from serving.text_model import TextModel

        c = ModelConfig.from_settings(self.settings)
        return TextModel.load(pack_dir=c.pack_dir, encoder=c.text_encoder, device=self.device,
                              max_tokens=c.text_max_tokens, runtime=c.runtime, onnx_cache=c.onnx_cache)

    def _infer(self, items: list[str]) -> list[Any]:
        return self.model.predict(items)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S,
                 batch_size_fn=total_items)
    async def predict(self, items: list[list[str]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Captions → one ``ModalityResult`` (or ``ItemError``) each, plus the batch's meta on its first request."""
        return await self._run_batch(items)
