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
