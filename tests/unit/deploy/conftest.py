"""Fixtures for the offline checks of deploy/: loaders, the Settings defaults, and a tiny kustomize resolver.

No Docker engine, cluster or kustomize binary runs here; these checks read the files and validate them
against the schemas that ship in Python packages (check-jsonschema's compose-spec, kubernetes-validate).
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from moodstream.config import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
IMAGE_REPO = "ghcr.io/moodstream/moodstream"

# Kustomization fields the resolver below understands; any other field would be silently ignored, so fail.
SUPPORTED_KUSTOMIZE_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "patches"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def defaults() -> dict[str, Any]:
    """Every Settings field and its default (not the environment's value)."""
    return {name: f.default for name, f in Settings.model_fields.items()}


def env_names() -> set[str]:
    return {f"MOODSTREAM_{name.upper()}" for name in Settings.model_fields}


# ---- a tiny kustomize ---------------------------------------------------------------------------------


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply_json6902(doc: dict, ops: list[dict]) -> None:
    """Apply RFC 6902 add/replace/remove operations in place."""
    for op in ops:
        parts = [_unescape(p) for p in op["path"].lstrip("/").split("/")]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if kind not in ("add", "replace", "remove"):
            raise ValueError(f"unsupported JSON patch op {kind!r}")
        if isinstance(parent, list):
            if kind == "add":
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                del parent[int(last)]
        else:
            if kind in ("replace", "remove") and last not in parent:
                raise KeyError(f"{op['path']} does not exist")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(op["value"])


def merge_patch(doc: dict, patch: dict) -> None:
    """Strategic merge as kustomize applies it to CRDs: maps merge, lists and scalars are replaced."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merge_patch(doc[key], value)
        else:
            doc[key] = copy.deepcopy(value)


def target_matches(doc: dict, target: dict) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    return (
        doc["kind"] == target.get("kind", doc["kind"])
        and doc["metadata"]["name"] == target.get("name", doc["metadata"]["name"])
        and group == target.get("group", group)
        and version == target.get("version", version)
    )


def build(kdir: Path) -> list[dict]:
    """Resolve a kustomization directory like ``kustomize build`` would, for the features we use.

    Fails (AssertionError) when a referenced file is missing, a patch matches no resource, or the
    kustomization uses a field this resolver does not implement.
    """
    kfile = kdir / "kustomization.yaml"
    assert kfile.is_file(), f"{kdir} has no kustomization.yaml"
    k = load_yaml(kfile)
    unknown = set(k) - SUPPORTED_KUSTOMIZE_KEYS
    assert not unknown, f"{kfile}: fields the offline resolver does not implement: {sorted(unknown)}"
    docs: list[dict] = []
    for ref in k.get("resources", []):
        path = (kdir / ref).resolve()
        assert path.exists(), f"{kfile}: resource {ref} does not exist"
        docs.extend(build(path) if path.is_dir() else load_all(path))
    for entry in k.get("patches", []):
        path = kdir / entry["path"]
        assert path.is_file(), f"{kfile}: patch {entry['path']} does not exist"
        body = load_yaml(path)
        target = entry.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
        hits = [d for d in docs if target_matches(d, target)]
        assert hits, f"{kfile}: patch {entry['path']} targets {target}, which no resource matches"
        for doc in hits:
            if isinstance(body, list):
                apply_json6902(doc, body)
            else:
                patch = copy.deepcopy(body)
                for key in ("apiVersion", "kind", "metadata"):
                    patch.pop(key, None)
                merge_patch(doc, patch)
    for doc in docs:
        if k.get("namespace") and doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = k["namespace"]
        for label_set in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label_set.get("pairs", {}))
    return docs


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = find(docs, kind, name)
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def pod_specs(doc: dict) -> list[dict]:
    """Every pod spec in a workload or a RayService (head and worker groups)."""
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [doc["spec"]["template"]["spec"]]
    if doc["kind"] == "RayService":
        cluster = doc["spec"]["rayClusterConfig"]
        groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
        return [g["template"]["spec"] for g in groups]
    return []


def containers(docs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for doc in docs:
        for spec in pod_specs(doc):
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                out.append((f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}", c))
    return out


@pytest.fixture(scope="session")
def lib() -> ModuleType:
    """This module: the loaders and the resolver above, for the test modules."""
    return sys.modules[__name__]


@pytest.fixture(scope="session")
def compose() -> dict:
    return load_yaml(DEPLOY / "docker-compose.yml")


@pytest.fixture(scope="session")
def compose_gpu() -> dict:
    return load_yaml(DEPLOY / "docker-compose.gpu.yml")


@pytest.fixture(scope="session")
def base_docs() -> list[dict]:
    return build(K8S / "base")


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, build(K8S / "overlays" / request.param)


@pytest.fixture(scope="session")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def promql() -> ModuleType:
    """``testkit.promql``: metric names in PromQL and the names the code's registries export."""
    from testkit import promql

    return promql
