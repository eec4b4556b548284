"""``serving.app``: deployment options come from settings; the builder has Serve's one-dict-arg signature."""

from __future__ import annotations

import pytest
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

from serving.app import build_app, ingress_config, replica_config
from serving.auth import InsecureBindError


def _deployments(app) -> dict:
    ingress = app._bound_deployment
    models = {a._bound_deployment.name: a._bound_deployment for a in ingress.init_args[:3]}
    return {"Classifier": ingress, **models}


def test_options_from_args() -> None:
    app = call_user_app_builder_with_args_if_necessary(
        build_app, {"serve_max_batch_size": 48, "serve_num_cpus": 1.5, "serve_num_gpus": 0.5, "serve_replicas": 2})
    deps = _deployments(app)
    assert set(deps) == {"Classifier", "TextModel", "VisionModel", "FusionModel"}
    for name in ("TextModel", "VisionModel", "FusionModel"):
        d = deps[name]
        assert d.max_ongoing_requests >= 48, name  # the Ray default (5) would cap @serve.batch
        assert d.num_replicas == 2 and d.ray_actor_options["num_cpus"] == 1.5
    assert deps["TextModel"].ray_actor_options["num_gpus"] == 0.5
    assert deps["VisionModel"].ray_actor_options["num_gpus"] == 0.5
    assert deps["FusionModel"].ray_actor_options["num_gpus"] == 0  # a tiny MLP: CPU
    assert deps["Classifier"].max_ongoing_requests >= 48
    config = deps["TextModel"].init_args[0]
    assert config["serve_max_batch_size"] == 48 and "database_url" not in config


def test_autoscaling_from_args() -> None:
    deps = _deployments(build_app({"serve_autoscale": True, "serve_min_replicas": 1, "serve_max_replicas": 3,
                                   "serve_target_ongoing_requests": 8}))
    cfg = deps["VisionModel"]._deployment_config.autoscaling_config
    assert (cfg.min_replicas, cfg.max_replicas, cfg.target_ongoing_requests) == (1, 3, 8)


def test_model_resource_places_only_the_model_replicas() -> None:
    deps = _deployments(build_app({"serve_model_resource": "model_node"}))
    for name in ("TextModel", "VisionModel", "FusionModel"):
        assert deps[name].ray_actor_options["resources"] == {"model_node": 0.01}, name
    assert "resources" not in deps["Classifier"].ray_actor_options  # the ingress may run anywhere
    assert "resources" not in _deployments(build_app({}))["TextModel"].ray_actor_options


def test_unknown_args_are_rejected() -> None:
    with pytest.raises(ValueError, match="serve_max_batchsize"):
        build_app({"serve_max_batchsize": 8})


def test_replica_config_is_json_safe_and_has_no_secrets() -> None:
    import json

    from moodstream.config import Settings

    cfg = replica_config(Settings(database_url="postgresql://u:secret@db/x", model_dir="/tmp/pack"))
    text = json.dumps(cfg)
    assert "secret" not in text and cfg["model_dir"] == "/tmp/pack"


def test_only_the_ingress_gets_the_api_token() -> None:
    from moodstream.config import Settings

    settings = Settings(api_token="tok-123", serve_host="0.0.0.0")
    assert "api_token" not in replica_config(settings)
    assert ingress_config(settings)["api_token"] == "tok-123" and ingress_config(Settings())["api_token"] is None
    deps = _deployments(build_app({"api_token": "tok-123", "serve_host": "0.0.0.0"}))
    assert deps["Classifier"].init_args[3]["api_token"] == "tok-123"
    assert all("api_token" not in deps[n].init_args[0] for n in ("TextModel", "VisionModel", "FusionModel"))


def test_build_app_refuses_a_public_bind_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOODSTREAM_API_TOKEN", raising=False)
    with pytest.raises(InsecureBindError, match="MOODSTREAM_API_TOKEN"):
        build_app({"serve_host": "0.0.0.0"})


def test_per_deployment_overrides() -> None:
    from moodstream.config import Settings
    from serving.app import bind_app

    deps = _deployments(bind_app(Settings(serve_autoscale=True), overrides={"VisionModel": {"num_replicas": 2}}))
    assert deps["VisionModel"].num_replicas == 2 and deps["VisionModel"]._deployment_config.autoscaling_config is None
    assert deps["TextModel"]._deployment_config.autoscaling_config is not None
    with pytest.raises(ValueError, match="Vision"):
        bind_app(Settings(), overrides={"Vision": {}})
