"""deploy/docker-compose.yml and the GPU override: valid Compose, wired the way Settings expects."""

from __future__ import annotations

import json
import re
from importlib.metadata import distribution

import jsonschema
import pytest
from sqlalchemy.engine import make_url

APP_SERVICES = ("topics", "ray", "worker", "dashboard", "publisher")
INFRA_SERVICES = ("kafka", "postgres", "redis")
OBSERVABILITY_SERVICES = ("prometheus", "grafana")


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    """The Compose specification's JSON schema, vendored by check-jsonschema (offline)."""
    dist = distribution("check-jsonschema")
    path = dist.locate_file("check_jsonschema/builtin_schemas/vendor/compose-spec.json")
    return json.loads(path.read_text())


def _validate(schema: dict, doc: dict) -> None:
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_files_validate_against_compose_spec(compose_schema, compose, compose_gpu):
    assert "services" in compose_schema["properties"]
    _validate(compose_schema, compose)
    _validate(compose_schema, compose_gpu)


def test_schema_check_catches_a_mistake(compose_schema, compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_ready"
    with pytest.raises(AssertionError):
        _validate(compose_schema, broken)


def test_services_present(compose):
    assert set(compose["services"]) == {*APP_SERVICES, *INFRA_SERVICES, *OBSERVABILITY_SERVICES}
    for name in OBSERVABILITY_SERVICES:  # optional: only with `--profile observability`
        assert compose["services"][name]["profiles"] == ["observability"], name
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_app_services_share_image_env_file_and_build(lib, compose):
    for name in APP_SERVICES:
        svc = compose["services"][name]
        assert svc["image"] == f"{lib.IMAGE_REPO}:{_project_version(lib)}", name
        assert svc["env_file"] == ".env", name
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert (lib.DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()


def _project_version(lib) -> str:
    return re.search(r'^version = "([^"]+)"', (lib.ROOT / "pyproject.toml").read_text(), re.M).group(1)


def test_commands_pick_the_role(compose):
    s = compose["services"]
    assert s["ray"]["command"] == ["serve"]
    assert s["worker"]["command"] == ["worker"]
    assert s["dashboard"]["command"] == ["dashboard"]
    assert s["publisher"]["command"] == ["publish", "--synthetic"]
    assert s["publisher"]["profiles"] == ["publisher"]
    # The one-shot creates the topics named by Settings (not a second copy of the names).
    script = s["topics"]["command"][0]
    assert "create_topics(" in script and "s.topics.values()" in script and "s.kafka_partitions" in script


def test_healthchecks_and_dependencies(compose):
    services = compose["services"]
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc, f"{name} has no healthcheck"
        if name in ("topics", "publisher"):
            assert hc == {"disable": True}
        else:
            assert hc["test"][0] in ("CMD", "CMD-SHELL"), name
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert services[dep]["healthcheck"].get("test"), f"{name} waits for {dep}, which has no check"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    worker_deps = services["worker"]["depends_on"]
    assert worker_deps["topics"]["condition"] == "service_completed_successfully"
    assert {"kafka", "postgres", "redis", "ray"} <= set(worker_deps)


def test_healthchecks_probe_the_role(compose):
    s = compose["services"]
    assert s["ray"]["healthcheck"]["test"] == ["CMD", "moodstream-healthcheck", "serve"]
    assert s["worker"]["healthcheck"]["test"] == ["CMD", "moodstream-healthcheck", "worker"]
    assert s["dashboard"]["healthcheck"]["test"] == ["CMD", "moodstream-healthcheck", "dashboard"]


def test_worker_can_scale(compose):
    worker = compose["services"]["worker"]
    # `--scale worker=N` fails on fixed host ports or container names.
    assert "ports" not in worker and "container_name" not in worker
    assert not any("container_name" in svc for svc in compose["services"].values())


def test_ports_agree_with_settings(lib, compose):
    d = lib.defaults()
    s = compose["services"]
    assert s["ray"]["ports"] == [f"{d['serve_port']}:{d['serve_port']}"]
    assert s["dashboard"]["ports"] == [f"{d['dashboard_port']}:{d['dashboard_port']}"]
    assert s["ray"]["environment"]["MOODSTREAM_SERVE_HOST"] == "0.0.0.0"
    assert s["dashboard"]["environment"]["MOODSTREAM_DASHBOARD_HOST"] == "0.0.0.0"
    assert s["worker"]["environment"]["MOODSTREAM_SERVE_URL"] == f"http://ray:{d['serve_port']}"


def test_named_volumes_declared_and_used(compose):
    declared = set(compose["volumes"])
    sources = {v.split(":", 1)[0] for svc in compose["services"].values() for v in svc.get("volumes", [])}
    used = {s for s in sources if not s.startswith((".", "/"))}  # bind mounts are paths
    assert used == declared == {"kafka-data", "postgres-data", "redis-data", "prometheus-data", "grafana-data"}


def test_wiring_addresses_name_real_services(compose):
    env = compose["services"]["worker"]["environment"]
    services = compose["services"]
    host, port = env["MOODSTREAM_KAFKA_BROKERS"].split(":")
    assert host in services and f"PLAINTEXT://{host}:{port}" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]
    db = make_url(env["MOODSTREAM_DATABASE_URL"])
    assert db.drivername == "postgresql+psycopg" and db.host in services
    pg = services["postgres"]["environment"]
    assert (db.username, db.database, db.password) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"], pg["POSTGRES_PASSWORD"])
    assert env["MOODSTREAM_REDIS_URL"].split("//")[1].split(":")[0] in services


def test_moodstream_env_values_are_valid_settings(lib, compose, compose_gpu, monkeypatch):
    for doc in (compose, compose_gpu):
        for name, svc in doc["services"].items():
            env = svc.get("environment", {})
            for key, value in env.items():
                if key.startswith("MOODSTREAM_"):
                    assert key in lib.env_names(), f"{name}: {key} is not a Settings field"
                    monkeypatch.setenv(key, re.sub(r"\$\{[^}]+\}", "secret", str(value)))
            lib.Settings(_env_file=None)  # raises if a value does not parse
            for key in env:
                monkeypatch.delenv(key, raising=False)


def test_gpu_override_gives_ray_the_gpu(lib, compose, compose_gpu):
    assert set(compose_gpu["services"]) == {"ray"}
    ray = compose_gpu["services"]["ray"]
    devices = ray["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert float(ray["environment"]["MOODSTREAM_SERVE_NUM_GPUS"]) > 0
    assert ray["build"]["args"]["VARIANT"] == "cuda"
    assert ray["image"] == compose["services"]["ray"]["image"] + "-cuda"
