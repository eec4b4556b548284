"""deploy/grafana/moodstream.json: a well-formed dashboard whose every query names metrics the code exports,
provisioned in compose and shipped as a ConfigMap for Kubernetes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

# Grafana's built-in interval variables are not PromQL; promtool sees a fixed window instead.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# issue #15: throughput, consumer lag, batch latency, DLQ rate, cache hit rate, Serve latency
REQUIRED_FAMILIES = {"moodstream_classified", "moodstream_consumer_lag", "moodstream_batch_seconds",
                     "moodstream_dead_lettered", "moodstream_cached", "moodstream_classify_seconds"}


@pytest.fixture(scope="module")
def dashboard(lib) -> dict:
    return json.loads((lib.DEPLOY / "grafana" / "moodstream.json").read_text())


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows carry their panels
    return out


def _queries(dashboard: dict) -> dict[str, str]:
    out = {f"panel {p['id']} {p['title']!r} [{t['refId']}]": t["expr"]
           for p in _panels(dashboard) for t in p.get("targets", [])}
    assert len(out) == sum(len(p.get("targets", [])) for p in _panels(dashboard))
    return out


def test_dashboard_basics(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    (var,) = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert var["type"] == "datasource" and var["query"] == "prometheus"


def test_every_panel_is_readable_and_uses_the_datasource_variable(dashboard):
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 12
    for p in graphs:
        assert p["title"] and len(p.get("description", "")) > 20, p["title"]
        assert p["fieldConfig"]["defaults"].get("unit"), f"{p['title']}: no unit"
        assert p["targets"], p["title"]
        for t in [p, *p["targets"]]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


def test_panels_fit_the_grid_without_overlap(dashboard):
    taken: set[tuple[int, int]] = set()
    for p in _panels(dashboard):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_queries_use_only_exported_metrics(dashboard, promql):
    registries = promql.code_registries()
    queries = _queries(dashboard)
    assert promql.unknown_metrics(queries, registries) == {}
    used = set().union(*(promql.metric_names(q) for q in queries.values()))
    families = promql.families_used(used, *registries)
    assert families >= REQUIRED_FAMILIES
    # Every metric the code exports is on the dashboard: a new metric needs a panel (or a reason here).
    assert families == {f.name for r in registries for f in r.collect()}


def test_metric_check_catches_a_typo(promql):
    registries = promql.code_registries()
    bad = {"typo": 'sum(rate(moodstream_classifed_total{job="x"}[5m]))',
           "counter without _total": "rate(moodstream_consumed[5m])",
           "histogram without _bucket": "histogram_quantile(0.9, sum by (le) (rate(moodstream_batch_seconds[5m])))",
           "good": 'sum by (le, stage) (rate(moodstream_stage_seconds_bucket{stage="classify"}[$__rate_interval]))'}
    assert promql.unknown_metrics(bad, registries) == {
        "typo": {"moodstream_classifed_total"}, "counter without _total": {"moodstream_consumed"},
        "histogram without _bucket": {"moodstream_batch_seconds"}}


def test_metric_name_extraction(promql):
    expr = ('sum by (topic) (max by (topic, partition) (deriv(moodstream_consumer_lag[15m]))) > 0 and '
            'sum(rate(a_total{le="0.5", job=~"w.*"}[5m] offset 1h)) / ignoring (stage) group_left '
            'sum(b:recorded) + 1e-9 * count(up == bool 1) unless absent(ALERTS)')
    assert promql.metric_names(expr) == {"moodstream_consumer_lag", "a_total", "b:recorded", "up", "ALERTS"}


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package `prometheus`; `make test` installs it)")
def test_every_query_parses(dashboard, tmp_path):
    # promtool parses rule files; each query becomes a recording rule.
    rules = []
    for n, expr in enumerate(_queries(dashboard).values()):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout


# ---- wiring: compose provisioning and the Kubernetes ConfigMap ----------------------------------------


def _mounts(svc: dict) -> dict[str, str]:
    return {target: src for src, target, *_ in (v.split(":") for v in svc["volumes"])}


def test_compose_grafana_provisions_datasource_and_dashboard(lib, compose, dashboard):
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = (lib.DEPLOY / mounts["/etc/grafana/provisioning"]).resolve()
    assert provisioning == lib.DEPLOY / "grafana" / "provisioning"
    (ds,) = lib.load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prom = compose["services"]["prometheus"]
    assert ds["type"] == "prometheus" and ds["isDefault"]
    assert ds["url"] == f"http://prometheus:{prom['ports'][0].split(':')[-1]}"
    (provider,) = lib.load_yaml(provisioning / "dashboards" / "moodstream.yml")["providers"]
    folder = provider["options"]["path"]
    shipped = {Path(target).name: (lib.DEPLOY / src).resolve() for target, src in mounts.items()
               if Path(target).parent == Path(folder)}
    assert shipped == {"moodstream.json": lib.DEPLOY / "grafana" / "moodstream.json"}
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{folder}/moodstream.json"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_k8s_dashboard_configmap_equals_the_json(lib, base_docs, dashboard):
    cm = lib.one(base_docs, "ConfigMap", "moodstream-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"  # what Grafana's dashboard sidecar looks for
    assert json.loads(cm["data"]["moodstream.json"]) == dashboard, (
        "deploy/k8s/base/grafana-dashboard.yaml differs from deploy/grafana/moodstream.json; paste the file")
