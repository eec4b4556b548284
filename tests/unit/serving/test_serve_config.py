"""The shipped Serve config files are valid ``serve deploy`` configs that build this app."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeDeploySchema

from moodstream.config import Settings

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "serving").glob("serve_config*.yaml"))


def test_both_variants_exist() -> None:
    assert {p.name for p in CONFIGS} == {"serve_config.yaml", "serve_config.gpu.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_builds(path: Path) -> None:
    from serving.app import build_app

    schema = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    (app,) = schema.applications
    assert app.import_path == "serving.app:build_app"
    assert set(app.args) <= set(Settings.model_fields)
    built = call_user_app_builder_with_args_if_necessary(build_app, app.args)
    names = {built._bound_deployment.name} | {a._bound_deployment.name for a in built._bound_deployment.init_args[:3]}
    deployments = {d.name: d for d in app.deployments}
    assert set(deployments) == names
    for name in ("TextModel", "VisionModel", "FusionModel"):
        d = deployments[name]
        batch = d.user_config["max_batch_size"]
        assert d.max_ongoing_requests >= batch, name
    gpus = {n: d.ray_actor_options.num_gpus or 0 for n, d in deployments.items()}
    if "gpu" in path.name:
        assert app.args["device"] == "cuda" and gpus["TextModel"] > 0 and gpus["VisionModel"] > 0
    else:
        assert app.args["device"] == "cpu" and not any(gpus.values())
