"""Stage lines for long commands: what is happening now, and how long each step took.

``Stages`` prints ``▸ what …`` when a step starts and ``✓ what  12.3 s`` (or ``✗ … failed after``) when it ends,
to stderr through rich, so stdout stays clean for results. ``since`` renders the time since the command started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


def duration(seconds: float) -> str:
    """``850 ms``, ``12.3 s``, ``4m05s``, ``1h02m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s"
    h, m = divmod(round(seconds) // 60, 60)
    return f"{h}h{m:02d}m"


class Stages:
    """Numbered, timed steps of one command. ``clock`` is injectable so a test can drive it."""

    def __init__(self, console: Console | None = None, total: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console or Console(stderr=True)
        self.total = total
        self.clock = clock
        self.started = clock()
        self.done: list[tuple[str, float]] = []
        self._n = 0
        self._current: tuple[str, float] | None = None

    def since(self) -> str:
        return duration(self.clock() - self.started)

    def _label(self, what: str) -> str:
        return f"[{self._n}/{self.total}] {what}" if self.total else what

    def begin(self, what: str, detail: str = "") -> None:
        """Start a step (ending the current one, if any, as done)."""
        self.end()
        self._n += 1
        self._current = (what, self.clock())
        extra = f"  [dim]{detail}[/]" if detail else ""
        self.console.print(f"[cyan]▸[/] {self._label(what)} …{extra}", highlight=False)

    def end(self, ok: bool = True, note: str = "") -> float | None:
        """End the current step; returns how long it took (None when no step was running)."""
        if self._current is None:
            return None
        what, t0 = self._current
        took = self.clock() - t0
        self._current = None
        self.done.append((what, took))
        extra = f"  {note}" if note else ""
        if ok:
            self.console.print(f"[green]✓[/] {what}  [bold]{duration(took)}[/]{extra}", highlight=False)
        else:
            self.console.print(f"[red]✗[/] {what} failed after {duration(took)}{extra}", highlight=False)
        return took

    @contextmanager
    def step(self, what: str, detail: str = "") -> Iterator[None]:
        self.begin(what, detail)
        try:
            yield
        except BaseException:
            self.end(ok=False)
            raise
        self.end()
