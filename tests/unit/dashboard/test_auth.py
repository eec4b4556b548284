"""The dashboard password gate."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dashboard import auth
from moodstream.config import Settings


def test_password_check_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(dashboard_password=SecretStr("pä55 word"))
    monkeypatch.setattr(auth, "get_settings", lambda: s)
    assert auth.required() and auth.check("pä55 word")
    for wrong in ("", "pä55 word ", "PÄ55 WORD", "pä55"):
        assert not auth.check(wrong)
    monkeypatch.setattr(auth, "get_settings", lambda: Settings(dashboard_password=None))
    assert not auth.required()


def test_password_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``hmac.compare_digest``, on fixed-length digests (so the length does not leak either)."""
    import hmac

    seen: list[tuple[int, int]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: seen.append((len(a), len(b))) or real(a, b))
    monkeypatch.setattr(auth, "get_settings", lambda: Settings(dashboard_password=SecretStr("short")))
    assert not auth.check("a much longer guess") and auth.check("short")
    assert seen == [(32, 32), (32, 32)]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_failures_close_the_gate_longer_and_longer() -> None:
    from dashboard.login_throttle import MAX_DELAY_S, LoginThrottle, delay_after

    assert [delay_after(n) for n in range(1, 7)] == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert delay_after(100) == MAX_DELAY_S
    clock = Clock()
    t = LoginThrottle(clock=clock)
    assert t.failed("a") == 0.0 and t.failed("a") == 0.0 and t.wait_s("a") == 0.0  # two typos are free
    assert t.failed("a") == 1.0 and t.wait_s("a") == 1.0
    assert t.wait_s("b") == 0.0  # per client
    clock.t += 1.0
    assert t.wait_s("a") == 0.0 and t.failed("a") == 2.0
    t.succeeded("a")
    assert t.wait_s("a") == 0.0 and t.failed("a") == 0.0  # a success starts the count again


def test_throttle_keeps_a_bounded_number_of_clients() -> None:
    from dashboard.login_throttle import LoginThrottle

    t = LoginThrottle(max_clients=2)
    for key in ("a", "b", "c"):
        t.failed(key)
    assert len(t._state) == 2 and "a" not in t._state
