"""deploy/prometheus/: the alert rules (promtool check + unit tests), the names they use, and the scrape config
that compose and Kubernetes wire in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REQUIRED_ALERTS = {  # issue #15: lag growing, DLQ rate, worker down, classifier outage
    "MoodstreamConsumerLagGrowing", "MoodstreamDLQRateHigh", "MoodstreamWorkerDown", "MoodstreamClassifierOutage"}
JOBS = {"moodstream-worker", "moodstream-serve"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed (Debian package `prometheus`; `make test` installs it via `make sysdeps`)")


def _prom(lib) -> Path:
    return lib.DEPLOY / "prometheus"


def _alerts(lib) -> dict:
    return lib.load_yaml(_prom(lib) / "alerts.yml")


def _rules(lib) -> list[dict]:
    return [r for g in _alerts(lib)["groups"] for r in g["rules"]]


def _promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_check_rules(lib):
    r = _promtool("check", "rules", _prom(lib) / "alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_rules(lib))} rules found" in r.stdout


@needs_promtool
def test_promtool_check_rules_rejects_a_bad_expression(lib, tmp_path):
    # The check above can fail: a broken expression is refused.
    doc = _alerts(lib)
    doc["groups"][0]["rules"][0]["expr"] = "sum by (topic) (moodstream_consumer_lag"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(doc))
    assert _promtool("check", "rules", tmp_path / "bad.yml").returncode != 0


@needs_promtool
def test_promtool_unit_tests_of_the_alerts(lib):
    r = _promtool("test", "rules", _prom(lib) / "alerts.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    tested = {case["alertname"] for test in lib.load_yaml(_prom(lib) / "alerts.test.yml")["tests"]
              for case in test["alert_rule_test"] if case.get("exp_alerts")}
    assert tested == {r["alert"] for r in _rules(lib)}, "every alert has a case in which it fires"


@needs_promtool
def test_promtool_unit_tests_can_fail(lib, tmp_path):
    # Same tests against rules whose worker-down alert waits too long: the 5m case must fail.
    doc = _alerts(lib)
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        if rule["alert"] == "MoodstreamWorkerDown":
            rule["for"] = "30m"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc))
    shutil.copy(_prom(lib) / "alerts.test.yml", tmp_path / "alerts.test.yml")
    r = _promtool("test", "rules", tmp_path / "alerts.test.yml")
    assert r.returncode != 0 and "MoodstreamWorkerDown" in r.stdout + r.stderr


@needs_promtool
def test_promtool_check_config(lib):
    r = _promtool("check", "config", _prom(lib) / "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_alerts_are_complete(lib):
    rules = _rules(lib)
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    assert len({r["alert"] for r in rules}) == len(rules), "alert names are unique"
    for r in rules:
        assert r.get("for"), f"{r['alert']}: no `for`, one bad scrape would page"
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert {"summary", "description", "runbook"} <= set(r["annotations"]), r["alert"]
        assert "deploy/README.md#alerts" in r["annotations"]["runbook"], r["alert"]


def test_rules_use_only_exported_metrics(lib, promql):
    exprs = {r["alert"]: r["expr"] for r in _rules(lib)}
    assert promql.unknown_metrics(exprs, promql.code_registries()) == {}
    used = set().union(*(promql.metric_names(e) for e in exprs.values()))
    # the worker's own series, the Serve ingress's, and the scrape health of both jobs
    assert {"moodstream_consumer_lag", "moodstream_dead_lettered_total", "moodstream_classify_retries_total",
            "moodstream_posts_total", "up"} <= used


def test_rules_name_the_scrape_jobs(lib):
    text = (_prom(lib) / "alerts.yml").read_text()
    for job in JOBS:
        assert f'job="{job}"' in text, job


def test_readme_explains_every_alert(lib):
    text = (lib.DEPLOY / "README.md").read_text()
    section = text[text.index("### Alerts"):]
    for r in _rules(lib):
        assert r["alert"] in section, r["alert"]


# ---- the scrape config and its wiring ----------------------------------------------------------------


def _scrape(lib) -> dict[str, dict]:
    config = lib.load_yaml(_prom(lib) / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]  # beside prometheus.yml, in the repo and in the container
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_scrape_config_targets_compose_services_on_settings_ports(lib, compose):
    d = lib.defaults()
    jobs = _scrape(lib)
    assert set(jobs) >= JOBS
    worker = jobs["moodstream-worker"]
    (sd,) = worker["dns_sd_configs"]  # every replica of `--scale worker=N`
    assert sd["type"] == "A" and sd["port"] == d["worker_web_port"] and sd["names"] == ["worker"]
    serve = jobs["moodstream-serve"]
    assert serve["static_configs"][0]["targets"] == [f"ray:{d['serve_port']}"]
    for job in JOBS:
        assert jobs[job]["metrics_path"] == "/metrics"
    assert {"worker", "ray"} <= set(compose["services"])


def test_compose_prometheus_mounts_config_and_rules(lib, compose):
    prom = compose["services"]["prometheus"]
    mounts = {target: src for src, target, *_ in (v.split(":") for v in prom["volumes"])}
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert (lib.DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).resolve() == _prom(lib) / "prometheus.yml"
    assert (lib.DEPLOY / mounts["/etc/prometheus/alerts.yml"]).resolve() == _prom(lib) / "alerts.yml"
    port = prom["ports"][0].split(":")[-1]
    assert port in prom["healthcheck"]["test"][-1]


def test_k8s_prometheus_rule_equals_alerts_file(lib, base_docs):
    rule = lib.one(base_docs, "PrometheusRule", "moodstream")
    assert rule["spec"]["groups"] == _alerts(lib)["groups"], (
        "deploy/k8s/base/prometheus-rules.yaml differs from deploy/prometheus/alerts.yml; paste the file's groups")


def test_k8s_pod_monitors_scrape_the_jobs_the_rules_use(lib, base_docs):
    d = lib.defaults()
    ports = {"moodstream-worker": ("web", d["worker_web_port"]), "moodstream-serve": ("serve", d["serve_port"])}
    for job, (port_name, port) in ports.items():
        monitor = lib.one(base_docs, "PodMonitor", job)
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["path"] == "/metrics" and endpoint["port"] == port_name
        assert {"action": "replace", "targetLabel": "job", "replacement": job} in endpoint["relabelings"]
        # the selected pods have a container port of that name and number
        selector = monitor["spec"]["selector"]["matchLabels"]
        if job == "moodstream-worker":
            pod = lib.one(base_docs, "Deployment", job)["spec"]["template"]
            assert selector.items() <= pod["metadata"]["labels"].items()
            specs = [pod["spec"]]
        else:  # KubeRay labels the head pod ray.io/node-type=head
            assert selector == {"ray.io/node-type": "head"}
            specs = [lib.one(base_docs, "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]]
        named = {p["name"]: p["containerPort"] for s in specs for c in s["containers"] for p in c.get("ports", [])}
        assert named[port_name] == port, job
