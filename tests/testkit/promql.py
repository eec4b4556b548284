"""Metric names in PromQL expressions, and the metric names the code exports (read from its registries).

Used by test_grafana.py and test_prometheus.py: every query on the dashboard and in the alert rules must name
only metrics that ``streams/metrics.py`` (the stream worker) and ``serving/serve_metrics.py`` (the Serve
ingress) register, so a renamed or removed metric breaks the tests instead of leaving an empty panel or an
alert that can never fire.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

# Series Prometheus makes itself: scrape health and the alerts' own series.
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "atan2"}

# The series a family of each type is exposed as (prometheus_client: a Counter `x` is `x_total`, ...).
EXPOSED_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.$])[a-zA-Z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords or label names."""
    s = _STRING.sub('""', expr)
    s = _MATCHERS.sub(" ", s)  # label matchers (label names and values)
    s = _RANGES.sub(" ", s)  # range and subquery durations, Grafana's [$__rate_interval]
    s = _GROUPING.sub(" ", s)  # by (le, stage), ignoring (stage), group_left (...)
    names = set()
    for m in _IDENT.finditer(s):
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or m.group(0) in KEYWORDS:  # a function or aggregation, or an operator
            continue
        names.add(m.group(0))
    return names


def exposed_names(*registries: CollectorRegistry) -> set[str]:
    """Every series name the registries expose, from their collectors' families and types."""
    out = set()
    for registry in registries:
        for family in registry.collect():
            out.update(family.name + suffix for suffix in EXPOSED_SUFFIXES[family.type])
    return out


def families_used(names: set[str], *registries: CollectorRegistry) -> set[str]:
    """The metric families (as registered) that a set of series names refers to."""
    out = set()
    for registry in registries:
        for family in registry.collect():
            if any(family.name + suffix in names for suffix in EXPOSED_SUFFIXES[family.type]):
                out.add(family.name)
    return out


def code_registries() -> list[CollectorRegistry]:
    """The worker's registry and a fresh Serve ingress registry, as the code builds them."""
    from serving.serve_metrics import ServeMetrics
    from streams.metrics import REGISTRY

    return [REGISTRY, ServeMetrics().registry]


def unknown_metrics(exprs: dict[str, str], registries: list[CollectorRegistry]) -> dict[str, set[str]]:
    """``{where: names}`` for every expression naming a series the code does not export."""
    known = exposed_names(*registries) | BUILTIN_SERIES
    bad = {where: metric_names(expr) - known for where, expr in exprs.items()}
    return {where: names for where, names in bad.items() if names}
