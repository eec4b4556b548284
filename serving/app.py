"""The moodstream Ray Serve application: ``build_app(args)`` binds TextModel, VisionModel, FusionModel and the
Classifier ingress with options taken from settings.

``serve deploy serving/serve_config.yaml`` imports ``serving.app:build_app`` and calls it with the config's
``args`` (any ``Settings`` field, e.g. ``serve_max_batch_size``, ``device``, ``model_dir``); the config's
``deployments:`` section can then override per-deployment options (replicas, autoscaling, resources,
``user_config: {max_batch_size, batch_wait_timeout_s}``).
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from moodstream.config import Settings
from serving.auth import check_bind, token_value

# The settings a replica needs (the rest, e.g. database credentials, never leave the driver).
SERVING_FIELDS = (
    "serve_max_batch_size", "serve_batch_wait_s", "serve_num_cpus", "serve_num_gpus", "serve_max_request_bytes",
    "serve_replicas", "serve_autoscale", "serve_min_replicas", "serve_max_replicas", "serve_target_ongoing_requests",
    "device", "torch_threads", "model_dir", "text_model", "vision_model", "fusion_strategy", "face_model",
    "text_max_tokens",
    "text_max_chars", "image_max_bytes", "image_max_pixels", "log_level",
    "serve_host", "api_token", "api_rate_per_s", "api_rate_burst",
)
# build_app args that are not settings: testing knobs.
EXTRA_ARGS = ("load_delay_s",)


def app_settings(args: dict[str, Any] | None = None) -> Settings:
    """Settings with ``args`` applied over the environment; unknown keys are an error."""
    args = {k: v for k, v in (args or {}).items() if k not in EXTRA_ARGS}
    unknown = sorted(set(args) - set(Settings.model_fields))
    if unknown:
        raise ValueError(f"unknown build_app args: {', '.join(unknown)} (expected Settings field names)")
    return Settings(**args)


def replica_config(settings: Settings) -> dict[str, Any]:
    """The serving subset of the settings, JSON-safe, passed to every model replica; no secrets."""
    return settings.model_dump(mode="json", include=set(SERVING_FIELDS) - {"api_token"})


def ingress_config(settings: Settings) -> dict[str, Any]:
    """``replica_config`` plus the API token in clear, for the ``Classifier`` only (a JSON dump would mask it;
    ``None`` lets the replica read its own ``MOODSTREAM_API_TOKEN``, e.g. from a Kubernetes Secret)."""
    return {**replica_config(settings), "api_token": token_value(settings.api_token)}


def scaling_options(settings: Settings) -> dict[str, Any]:
    """``num_replicas`` or ``autoscaling_config`` from settings."""
    if settings.serve_autoscale:
        return {"autoscaling_config": {
            "min_replicas": settings.serve_min_replicas,
            "max_replicas": max(settings.serve_max_replicas, settings.serve_min_replicas, 1),
            "target_ongoing_requests": settings.serve_target_ongoing_requests,
        }}
    return {"num_replicas": settings.serve_replicas}


MODEL_RESOURCE_SHARE = 0.01  # of ``serve_model_resource`` per model replica: placement, not a capacity limit


def model_options(settings: Settings, gpu: bool = True) -> dict[str, Any]:
    """Deployment options of a model deployment: room for one running and one filling batch; with
    ``serve_model_resource`` set, the replicas need a little of that custom Ray resource (so they run only on the
    nodes started with it, e.g. ``ray start --resources='{"model_node": 1}'``)."""
    actor: dict[str, Any] = {"num_cpus": settings.serve_num_cpus, "num_gpus": settings.serve_num_gpus if gpu else 0.0}
    if settings.serve_model_resource:
        actor["resources"] = {settings.serve_model_resource: MODEL_RESOURCE_SHARE}
    return {
        **scaling_options(settings),
        "max_ongoing_requests": max(2 * settings.serve_max_batch_size, 8),
        "ray_actor_options": actor,
        "graceful_shutdown_timeout_s": 5.0,
    }


def ingress_options(settings: Settings) -> dict[str, Any]:
    """Deployment options of the Classifier: light (no model), many requests in flight."""
    return {
        **scaling_options(settings),
        "max_ongoing_requests": max(4 * settings.serve_max_batch_size, 64),
        "ray_actor_options": {"num_cpus": 0},
        "graceful_shutdown_timeout_s": 5.0,
    }


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The bound application (Serve's application-builder signature: one dict of args).

    ``args``: ``Settings`` overrides, as in a Serve config's ``args``, plus ``load_delay_s`` (testing: model
    replicas wait this long before loading).
    """
    settings = app_settings(args)
    check_bind(settings.serve_host, settings.api_token)
    return bind_app(settings, load_delay_s=float((args or {}).get("load_delay_s", 0.0)))


def bind_app(settings: Settings, load_delay_s: float = 0.0,
             overrides: dict[str, dict[str, Any]] | None = None) -> Application:
    """Bind the four deployments with options from ``settings``; ``overrides`` maps a deployment name
    (``TextModel``, ``VisionModel``, ``FusionModel``, ``Classifier``) to options that replace those (as a Serve
    config's ``deployments:`` section does), e.g. ``{"VisionModel": {"num_replicas": 2}}``."""
    from serving.deployments.classifier import Classifier
    from serving.deployments.fusion import FusionDeployment
    from serving.deployments.text import TextDeployment
    from serving.deployments.vision import VisionDeployment

    config = replica_config(settings)
    extra = overrides or {}
    unknown = set(extra) - {"TextModel", "VisionModel", "FusionModel", "Classifier"}
    if unknown:
        raise ValueError(f"unknown deployments in overrides: {', '.join(sorted(unknown))}")

    def opts(name: str, base: dict[str, Any]) -> dict[str, Any]:
        merged = {**base, **extra.get(name, {})}
        if "autoscaling_config" in extra.get(name, {}):
            merged.pop("num_replicas", None)
        elif "num_replicas" in extra.get(name, {}):
            merged.pop("autoscaling_config", None)
        return merged

    text = TextDeployment.options(**opts("TextModel", model_options(settings))).bind(config, load_delay_s)
    vision = VisionDeployment.options(**opts("VisionModel", model_options(settings))).bind(config, load_delay_s)
    fusion = FusionDeployment.options(**opts("FusionModel", model_options(settings, gpu=False))).bind(
        config, load_delay_s)
    return Classifier.options(**opts("Classifier", ingress_options(settings))).bind(
        text, vision, fusion, ingress_config(settings))
