"""``ops.bench.models.measure``: budgeted and fixed-call timing."""

from ops.bench.models import measure


def test_fixed_calls_replay_the_same_inputs() -> None:
    seen: list[int] = []

    def fn(k: int) -> int:
        seen.append(k)
        return 3

    r = measure(fn, budget_s=100.0, calls=4)
    assert seen == [0, 1, 2, 3, 4]  # warm-up 0, then exactly calls 1..4 whatever the budget
    assert r["calls"] == 4 and r["items"] == 12
    assert r["per_s"] > 0 and r["cpu_ms_per_item"] >= 0


def test_budget_runs_at_least_min_calls_and_reports_them() -> None:
    seen: list[int] = []
    r = measure(lambda k: seen.append(k) or 1, budget_s=0.0, min_calls=3)
    assert seen == [0, 1, 2, 3]
    assert r["calls"] == 3 and r["items"] == 3
