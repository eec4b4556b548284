"""The worker's own view of a row, from its Prometheus ``/metrics``: batch sizes and time per pipeline stage."""

from __future__ import annotations

from typing import Any


def scrape(port: int) -> dict[str, float]:
    """``parse`` of the worker's ``/metrics`` on ``port``."""
    import httpx

    return parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)


def parse(text: str) -> dict[str, float]:
    """Sums and counts of the batch and stage histograms, and the counters, as flat ``name{stage}`` keys."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith(("_sum", "_count", "_total")):
                stage = s.labels.get("stage")
                out[s.name + (f"{{{stage}}}" if stage else "")] = s.value
    return out


def summarise(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Mean batch size, mean ms per batch in each stage, and the cache/dedupe counts between two scrapes."""

    def d(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    batches = d("moodstream_batch_seconds_count")
    if batches <= 0:
        return {}
    stages = {k[len("moodstream_stage_seconds_sum{"):-1]: round(1000 * d(k) / batches, 1)
              for k in after if k.startswith("moodstream_stage_seconds_sum{")}
    return {"batches": int(batches), "mean_batch_size": round(d("moodstream_batch_size_sum") / batches, 1),
            "mean_batch_ms": round(1000 * d("moodstream_batch_seconds_sum") / batches, 1),
            "stage_ms_per_batch": stages, "classified": int(d("moodstream_classified_total")),
            "cached": int(d("moodstream_cached_total")), "deduplicated": int(d("moodstream_deduplicated_total"))}
