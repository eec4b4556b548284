"""The kustomize overlays resolve (offline resolver in conftest.py) and the gpu overlay adds what it should."""

from __future__ import annotations

import pytest
import yaml


def test_overlays_resolve_to_the_base_resources(lib, base_docs, overlay):
    _, docs = overlay
    ids = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert ids == sorted((d["kind"], d["metadata"]["name"]) for d in base_docs)
    assert len(set(ids)) == len(ids), "duplicate resources"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "moodstream"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "moodstream"


def test_every_base_file_is_listed(lib):
    listed = set(lib.load_yaml(lib.K8S / "base" / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in (lib.K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_every_overlay_file_is_used(lib):
    for name in lib.OVERLAYS:
        kdir = lib.K8S / "overlays" / name
        k = lib.load_yaml(kdir / "kustomization.yaml")
        used = {p["path"] for p in k.get("patches", [])}
        on_disk = {p.name for p in kdir.glob("*.yaml")} - {"kustomization.yaml"}
        assert used == on_disk, name


def test_resolver_rejects_a_patch_without_target(lib, tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - path: p.yaml\n")
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {}\n")
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {x: y}\n")
    with pytest.raises(AssertionError, match="no resource matches"):
        lib.build(tmp_path)


def test_resolver_applies_json6902(lib):
    doc = {"spec": {"groups": [{"n": 1}]}}
    lib.apply_json6902(doc, [{"op": "add", "path": "/spec/groups/-", "value": {"n": 2}},
                             {"op": "replace", "path": "/spec/groups/0/n", "value": 0}])
    assert doc == {"spec": {"groups": [{"n": 0}, {"n": 2}]}}


def _gpu_groups(rs: dict) -> list[dict]:
    out = []
    for group in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        if "nvidia.com/gpu" in limits:
            out.append(group)
    return out


def test_cpu_overlay_has_no_gpu(lib):
    docs = lib.build(lib.K8S / "overlays" / "cpu")
    rs = lib.one(docs, "RayService")
    assert _gpu_groups(rs) == []
    assert [g["groupName"] for g in rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]] == ["cpu"]
    assert float(lib.one(docs, "ConfigMap", "moodstream-settings")["data"]["MOODSTREAM_SERVE_NUM_GPUS"]) == 0


def test_gpu_overlay_adds_a_gpu_worker_group(lib):
    docs = lib.build(lib.K8S / "overlays" / "gpu")
    rs = lib.one(docs, "RayService")
    groups = rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["cpu", "gpu"]
    (gpu,) = _gpu_groups(rs)
    container = gpu["template"]["spec"]["containers"][0]
    gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
    assert gpus >= 1 and container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"][
        "limits"]["nvidia.com/gpu"]
    assert int(gpu["rayStartParams"]["num-gpus"]) == gpus
    assert container["image"].endswith("-cuda")
    share = float(lib.one(docs, "ConfigMap", "moodstream-settings")["data"]["MOODSTREAM_SERVE_NUM_GPUS"])
    assert 0 < share <= gpus
    # The Serve config asks for GPUs, and the GPU group can hold every GPU replica autoscaling may start.
    app = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"][0]
    demand = sum(
        dep.get("autoscaling_config", {}).get("max_replicas", dep.get("num_replicas", 1))
        * dep.get("ray_actor_options", {}).get("num_gpus", 0)
        for dep in app["deployments"]
    )
    assert demand > 0
    assert gpu["maxReplicas"] * gpus >= demand
    # The gpu overlay leaves the head and the CPU group as they are.
    base = lib.one(lib.build(lib.K8S / "base"), "RayService")
    assert groups[0] == base["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert rs["spec"]["rayClusterConfig"]["headGroupSpec"] == base["spec"]["rayClusterConfig"]["headGroupSpec"]
