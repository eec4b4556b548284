"""Every Kubernetes manifest is valid: built-in kinds against the Kubernetes schemas (kubernetes-validate,
offline, strict: unknown fields fail), custom resources (Strimzi, KubeRay, KEDA, Prometheus Operator) by their
required fields."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

K8S_VERSION = "1.33.0"  # a fixed, recent Kubernetes; kubernetes-validate ships its schemas
CRD_GROUPS = ("kafka.strimzi.io/", "ray.io/", "keda.sh/", "monitoring.coreos.com/")


def _is_crd(doc: dict) -> bool:
    return doc["apiVersion"].startswith(CRD_GROUPS)


def test_schemas_are_offline_and_strict():
    # A typo in a field name must fail, not pass as an unknown field.
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_every_builtin_manifest_validates(overlay):
    _, docs = overlay
    builtin = [d for d in docs if not _is_crd(d)]
    assert {d["kind"] for d in builtin} >= {
        "Namespace", "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "Ingress"}
    for doc in builtin:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_file_parses_and_names_a_kind(lib):
    files = sorted(lib.K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None or isinstance(doc, list):  # JSON 6902 patches are lists of operations
                continue
            assert doc.get("apiVersion") and doc.get("kind"), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path


def _require(doc: dict, *paths: str) -> None:
    for path in paths:
        node = doc
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, f"{doc['kind']}/{doc['metadata']['name']}: no {path}"
            node = node[part]
        assert node not in (None, "", [], {}), f"{doc['kind']}/{doc['metadata']['name']}: empty {path}"


def test_strimzi_resources_have_required_fields(lib, overlay):
    _, docs = overlay
    kafka = lib.one(docs, "Kafka")
    _require(kafka, "spec.kafka.listeners", "spec.entityOperator.topicOperator")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    for listener in kafka["spec"]["kafka"]["listeners"]:
        assert {"name", "port", "type", "tls"} <= set(listener)
    pools = lib.find(docs, "KafkaNodePool")
    assert pools
    roles = set()
    for pool in pools:
        _require(pool, "spec.replicas", "spec.roles", "spec.storage.type")
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        roles |= set(pool["spec"]["roles"])
    assert roles == {"controller", "broker"}
    for topic in lib.find(docs, "KafkaTopic"):
        _require(topic, "spec.partitions", "spec.replicas", "spec.topicName")
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert 1 <= topic["spec"]["replicas"] <= sum(p["spec"]["replicas"] for p in pools)


def test_rayservice_has_required_fields(lib, overlay):
    _, docs = overlay
    rs = lib.one(docs, "RayService")
    assert rs["apiVersion"] == "ray.io/v1"
    _require(rs, "spec.serveConfigV2", "spec.rayClusterConfig.headGroupSpec.template.spec.containers",
             "spec.rayClusterConfig.headGroupSpec.rayStartParams", "spec.rayClusterConfig.rayVersion")
    assert isinstance(rs["spec"]["serveConfigV2"], str)  # KubeRay takes the Serve config as a YAML string
    for group in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        assert {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(group)
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_scaledobject_has_required_fields(lib, overlay):
    _, docs = overlay
    so = lib.one(docs, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    _require(so, "spec.scaleTargetRef.name", "spec.triggers")
    for trigger in so["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        _require(trigger, "metadata.bootstrapServers", "metadata.consumerGroup", "metadata.topic",
                 "metadata.lagThreshold")
        assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"


def test_prometheus_operator_resources_have_required_fields(lib, overlay):
    _, docs = overlay
    rule = lib.one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    _require(rule, "spec.groups")
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit", "partial_response_strategy"}, group["name"]
        assert group.get("name") and group.get("rules"), group
        for r in group["rules"]:
            assert set(r) <= {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, r
            assert ("alert" in r) != ("record" in r) and isinstance(r["expr"], str), r
    monitors = lib.find(docs, "PodMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"moodstream-worker", "moodstream-serve"}
    for m in monitors:
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        _require(m, "spec.selector.matchLabels", "spec.podMetricsEndpoints")
        for endpoint in m["spec"]["podMetricsEndpoints"]:
            assert {"port", "path"} <= set(endpoint), m["metadata"]["name"]
