"""Stage lines: each step says what it does and how long it took (driven by a test clock, not wall time)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from ops.progress import Stages, duration


def test_duration_reads_naturally():
    assert [duration(x) for x in (0.25, 12.34, 65, 3725)] == ["250 ms", "12.3 s", "1m05s", "1h02m"]


def test_steps_are_numbered_and_timed():
    now = [100.0]
    out = io.StringIO()
    stages = Stages(Console(file=out, width=200, color_system=None), total=2, clock=lambda: now[0])
    stages.begin("broker", "embedded Tansu")
    now[0] += 2.5
    stages.begin("serve")  # ends the broker step
    now[0] += 70
    assert stages.end() == 70
    with pytest.raises(RuntimeError), stages.step("worker"):
        now[0] += 1
        raise RuntimeError("boom")
    lines = out.getvalue().splitlines()
    assert lines == ["▸ [1/2] broker …  embedded Tansu", "✓ broker  2.5 s", "▸ [2/2] serve …", "✓ serve  1m10s",
                     "▸ [3/2] worker …", "✗ worker failed after 1.0 s"]
    assert stages.done == [("broker", 2.5), ("serve", 70), ("worker", 1.0)]
    assert stages.since() == "1m14s"
