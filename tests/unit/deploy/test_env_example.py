"""deploy/.env.example documents every setting, with its real default, and nothing else."""

from __future__ import annotations

import re

from pydantic import SecretStr, TypeAdapter

LINE = re.compile(r"^#? ?(MOODSTREAM_[A-Z0-9_]+)=(.*)$")


def _documented(lib) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (lib.DEPLOY / ".env.example").read_text().splitlines():
        m = LINE.match(line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} documented twice"
            out[m.group(1)] = m.group(2)
    return out


def test_every_setting_documented_and_only_settings(lib):
    assert set(_documented(lib)) == lib.env_names()


def test_documented_defaults_equal_settings_defaults(lib):
    documented = _documented(lib)
    for name, field in lib.Settings.model_fields.items():
        shown = documented[f"MOODSTREAM_{name.upper()}"]
        if field.default is None:
            assert shown == "", f"{name}: default is unset, documented {shown!r}"
            continue
        value = TypeAdapter(field.annotation).validate_python(shown)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        assert value == field.default, f"{name}: documented {shown!r}, default {field.default!r}"


def test_defaults_are_commented_and_compose_password_is_set(lib):
    lines = (lib.DEPLOY / ".env.example").read_text().splitlines()
    active = [ln for ln in lines if ln and not ln.startswith("#")]
    # Only the compose-level password is active; every setting stays at its default until uncommented.
    assert [ln.split("=", 1)[0] for ln in active] == ["POSTGRES_PASSWORD"]
