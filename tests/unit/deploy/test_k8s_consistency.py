"""The Kubernetes manifests agree with moodstream/config.py and with each other: topics, partitions, env
names, ports, Service names, images, secrets, probes and resources, and the Serve config."""

from __future__ import annotations

import re
from importlib.metadata import version

import yaml
from sqlalchemy.engine import make_url

SERVE_CONFIGS = {"cpu": "serving/serve_config.yaml", "gpu": "serving/serve_config.gpu.yaml"}


def _settings_data(lib, docs) -> dict[str, str]:
    return lib.one(docs, "ConfigMap", "moodstream-settings")["data"]


def test_topics_and_partitions_match_settings(lib, overlay):
    _, docs = overlay
    d = lib.defaults()
    topics = {t["spec"]["topicName"]: t["spec"]["partitions"] for t in lib.find(docs, "KafkaTopic")}
    wanted = {d[f"topic_{role}"] for role in ("posts", "predictions", "trends", "alerts", "dlq")}
    assert set(topics) == wanted
    assert set(topics.values()) == {d["kafka_partitions"]}
    data = _settings_data(lib, docs)
    assert int(data["MOODSTREAM_KAFKA_PARTITIONS"]) == d["kafka_partitions"]
    for role in ("posts", "predictions", "trends", "alerts", "dlq"):
        assert data[f"MOODSTREAM_TOPIC_{role.upper()}"] == d[f"topic_{role}"]


def test_scaledobject_bounded_by_partitions(lib, overlay):
    _, docs = overlay
    d = lib.defaults()
    so = lib.one(docs, "ScaledObject")
    worker = lib.one(docs, "Deployment", so["spec"]["scaleTargetRef"]["name"])
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    posts = next(t for t in lib.find(docs, "KafkaTopic") if t["spec"]["topicName"] == d["topic_posts"])
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= posts["spec"]["partitions"]
    (trigger,) = so["spec"]["triggers"]
    meta = trigger["metadata"]
    assert meta["topic"] == d["topic_posts"]
    assert meta["consumerGroup"] == d["consumer_group"] == _settings_data(lib, docs)["MOODSTREAM_CONSUMER_GROUP"]
    assert meta["bootstrapServers"] == _settings_data(lib, docs)["MOODSTREAM_KAFKA_BROKERS"]


def test_addresses_point_at_the_services_that_exist(lib, overlay):
    _, docs = overlay
    data = _settings_data(lib, docs)
    kafka = lib.one(docs, "Kafka")
    (listener,) = [x for x in kafka["spec"]["kafka"]["listeners"] if not x["tls"]]
    assert data["MOODSTREAM_KAFKA_BROKERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    rs = lib.one(docs, "RayService")
    assert data["MOODSTREAM_SERVE_URL"] == f"http://{rs['metadata']['name']}-serve-svc:{lib.defaults()['serve_port']}"
    redis = lib.one(docs, "Service", data["MOODSTREAM_REDIS_URL"].split("//")[1].split(":")[0])
    assert redis["spec"]["ports"][0]["port"] == int(data["MOODSTREAM_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])


def test_secret_database_url_matches_postgres(lib, overlay):
    _, docs = overlay
    secret = lib.one(docs, "Secret", "moodstream-secrets")["stringData"]
    url = make_url(secret["MOODSTREAM_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg"
    assert url.password == secret["POSTGRES_PASSWORD"]
    svc = lib.one(docs, "Service", url.host)
    assert svc["spec"]["ports"][0]["port"] == url.port
    env = {e["name"]: e for e in lib.one(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert (env["POSTGRES_USER"]["value"], env["POSTGRES_DB"]["value"]) == (url.username, url.database)
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert "MOODSTREAM_DASHBOARD_PASSWORD" in secret
    assert not any("PASSWORD" in k or ("URL" in k and "@" in v) for k, v in _settings_data(lib, docs).items())


def test_env_names_are_settings_fields_and_values_parse(lib, overlay, monkeypatch):
    _, docs = overlay
    names = lib.env_names()
    data = dict(_settings_data(lib, docs))
    data.update({k: v for k, v in lib.one(docs, "Secret")["stringData"].items() if k.startswith("MOODSTREAM_")})
    for _, c in lib.containers(docs):
        data.update({e["name"]: e["value"] for e in c.get("env", []) if e["name"].startswith("MOODSTREAM_")})
    assert set(data) <= names, sorted(set(data) - names)
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    s = lib.Settings(_env_file=None)
    assert s.kafka_brokers and s.redis_url and s.serve_url


def test_every_moodstream_name_in_deploy_is_a_setting(lib):
    names = lib.env_names()
    files = [p for p in lib.DEPLOY.rglob("*") if p.is_file() and p.suffix in {"", ".yml", ".yaml", ".md", ".py"}]
    files += [lib.DEPLOY / ".env.example", lib.DEPLOY / "Dockerfile"]
    seen = set()
    for path in files:
        for name in re.findall(r"MOODSTREAM_[A-Z0-9_]*[A-Z0-9]", path.read_text()):
            seen.add(name)
            assert name in names, f"{path.relative_to(lib.ROOT)}: {name} is not a Settings field"
    assert len(seen) >= len(names)  # .env.example alone names them all


def test_ports_agree_with_settings(lib, overlay):
    _, docs = overlay
    d = lib.defaults()
    data = _settings_data(lib, docs)
    assert int(data["MOODSTREAM_SERVE_PORT"]) == d["serve_port"]
    assert int(data["MOODSTREAM_DASHBOARD_PORT"]) == d["dashboard_port"]
    assert int(data["MOODSTREAM_WORKER_WEB_PORT"]) == d["worker_web_port"]
    dash = lib.one(docs, "Deployment", "moodstream-dashboard")["spec"]["template"]["spec"]["containers"][0]
    assert dash["ports"][0]["containerPort"] == d["dashboard_port"]
    assert dash["readinessProbe"]["httpGet"] == {"path": "/_stcore/health", "port": d["dashboard_port"]}
    assert lib.one(docs, "Service", "moodstream-dashboard")["spec"]["ports"][0]["port"] == d["dashboard_port"]
    ingress = lib.one(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "moodstream-dashboard"
    worker = lib.one(docs, "Deployment", "moodstream-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["ports"][0]["containerPort"] == d["worker_web_port"]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": d["worker_web_port"]}
    head = lib.one(docs, "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in head["containers"][0]["ports"]}
    assert ports["serve"] == d["serve_port"] and ports["client"] == 10001 and ports["dashboard"] == 8265


def test_every_container_has_resources_and_probes(lib, overlay):
    _, docs = overlay
    found = lib.containers(docs)
    assert len(found) >= 6
    for where, c in found:
        res = c.get("resources", {})
        for key in ("cpu", "memory"):
            assert key in res.get("requests", {}) and key in res.get("limits", {}), f"{where}: {key}"
        assert "readinessProbe" in c and "livenessProbe" in c, where
    for pool in lib.find(docs, "KafkaNodePool"):
        assert {"requests", "limits"} <= set(pool["spec"]["resources"])


def test_one_image_everywhere(lib, overlay, compose):
    _, docs = overlay
    image = compose["services"]["worker"]["image"]
    assert image.startswith(lib.IMAGE_REPO + ":")
    for where, c in lib.containers(docs):
        if c["image"].startswith(lib.IMAGE_REPO):
            assert c["image"] in (image, image + "-cuda"), where
        else:
            assert c["image"].split(":")[0] in ("postgres", "redis"), where
            assert c["image"] in {s["image"] for s in compose["services"].values()}, where
    moodstream = [c for _, c in lib.containers(docs) if c["image"].startswith(lib.IMAGE_REPO)]
    assert len(moodstream) >= 4


def test_rayservice_carries_the_serve_config(lib, overlay):
    _, docs = overlay
    rs = lib.one(docs, "RayService")
    config = yaml.safe_load(rs["spec"]["serveConfigV2"])
    d = lib.defaults()
    (app,) = config["applications"]
    assert app["import_path"] == "serving.app:build_app"
    assert app["name"] == d["serve_app_name"]
    assert config["http_options"]["port"] == d["serve_port"]
    assert config["http_options"]["host"] == "0.0.0.0"


def test_rayservice_serve_config_equals_the_shipped_file(lib, overlay):
    name, docs = overlay
    path = lib.ROOT / SERVE_CONFIGS[name]
    shipped = yaml.safe_load(path.read_text())
    rs = lib.one(docs, "RayService")
    assert yaml.safe_load(rs["spec"]["serveConfigV2"]) == shipped, (
        f"the {name} overlay's RayService serveConfigV2 differs from {SERVE_CONFIGS[name]}; paste the file into it")
    # The settings every Ray pod loads agree with the config's GPU share.
    num_gpus = shipped["applications"][0]["args"]["serve_num_gpus"]
    assert float(_settings_data(lib, docs)["MOODSTREAM_SERVE_NUM_GPUS"]) == num_gpus


def test_cpu_group_holds_every_cpu_replica(lib):
    rs = lib.one(lib.build(lib.K8S / "overlays" / "cpu"), "RayService")
    app = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]
    demand = sum(
        dep.get("autoscaling_config", {}).get("max_replicas", dep.get("num_replicas", 1))
        * dep.get("ray_actor_options", {}).get("num_cpus", 1)
        for dep in app.get("deployments", [])
    )
    (group,) = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    cpus = float(group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    assert group["maxReplicas"] * cpus >= demand
    head = rs["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]
    assert head["num-cpus"] == "0"  # replicas go to worker pods, the head keeps its CPU for GCS and Serve


def test_compose_gpu_share_matches_gpu_serve_config(lib, compose_gpu):
    path = lib.ROOT / SERVE_CONFIGS["gpu"]
    num_gpus = yaml.safe_load(path.read_text())["applications"][0]["args"]["serve_num_gpus"]
    assert float(compose_gpu["services"]["ray"]["environment"]["MOODSTREAM_SERVE_NUM_GPUS"]) == num_gpus


def test_ray_version_matches_installed_ray(lib, base_docs):
    ray_version = lib.one(base_docs, "RayService")["spec"]["rayClusterConfig"]["rayVersion"]
    assert ray_version.split(".")[:2] == version("ray").split(".")[:2]
