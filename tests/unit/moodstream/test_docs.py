"""The README documents every setting and the two commands; the Makefile and CI run what it says."""

from __future__ import annotations

from pathlib import Path

from moodstream.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f"MOODSTREAM_{n.upper()}" for n in Settings.model_fields if f"`MOODSTREAM_{n.upper()}`" not in readme]
    assert not missing, f"README lacks settings: {missing}"


def test_readme_shows_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block


def test_ci_runs_make_test() -> None:
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci
    make = (ROOT / "Makefile").read_text()
    assert "pytest tests" in make and "moodstream up" in make
