"""The worker's metrics as the benchmark reads them: per-stage time per batch between two scrapes."""

from __future__ import annotations

from ops.bench.worker_stats import parse, summarise
from streams import metrics


def test_stage_times_and_batch_sizes_between_two_scrapes() -> None:
    before = parse(metrics.render().decode())
    for size, classify_s in ((10, 0.2), (30, 0.4)):
        metrics.batch_size.observe(size)
        metrics.batch_seconds.observe(classify_s + 0.1)
        metrics.stage_seconds.labels("classify").observe(classify_s)
        metrics.stage_seconds.labels("persist").observe(0.1)
    metrics.cached.inc(7)
    got = summarise(before, parse(metrics.render().decode()))
    assert got["batches"] == 2
    assert got["mean_batch_size"] == 20.0
    assert got["mean_batch_ms"] == 400.0
    assert got["stage_ms_per_batch"]["classify"] == 300.0
    assert got["stage_ms_per_batch"]["persist"] == 100.0
    assert got["cached"] == 7


def test_no_batches_means_no_summary() -> None:
    snap = parse(metrics.render().decode())
    assert summarise(snap, snap) == {}


def test_timed_records_a_stage_even_when_the_block_fails() -> None:
    before = parse(metrics.render().decode())
    try:
        with metrics.timed("publish"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    after = parse(metrics.render().decode())
    assert after["moodstream_stage_seconds_count{publish}"] == before.get("moodstream_stage_seconds_count{publish}",
                                                                           0) + 1
