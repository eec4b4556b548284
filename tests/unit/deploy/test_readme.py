"""deploy/README.md walks through compose and Kubernetes and says what CI does (and does not) run."""

from __future__ import annotations

import re


def test_readme_covers_the_walkthrough(lib):
    text = (lib.DEPLOY / "README.md").read_text()
    for needle in (
        "cp deploy/.env.example deploy/.env",
        "--scale worker=",
        "-f deploy/docker-compose.gpu.yml",
        "--profile publisher",
        "kubectl apply -k deploy/k8s/overlays/cpu",
        "kubectl apply -k deploy/k8s/overlays/gpu",
        "Strimzi", "KubeRay", "KEDA",
        "Managed PostgreSQL and Redis",
        "No Docker engine and no Kubernetes cluster run in this project's CI",
    ):
        assert needle in text, needle


def test_readme_paths_exist(lib):
    text = (lib.DEPLOY / "README.md").read_text()
    for path in set(re.findall(r"`((?:deploy|serving)/[\w./{},-]+)`", text)):
        if path == "deploy/.env":  # the user's copy of .env.example
            continue
        for expanded in _expand(path):
            assert (lib.ROOT / expanded).exists(), path


def _expand(path: str) -> list[str]:
    m = re.search(r"\{([^}]+)\}", path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(",") for p in _expand(path[: m.start()] + alt + path[m.end():])]
