"""Storage unit-test fixtures: the record factories (loaded by path: tests are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FACTORIES = Path(__file__).with_name("factories.py")


def load_factories() -> ModuleType:
    """tests/unit/storage/factories.py as a module (one instance per process)."""
    name = "moodstream_storage_test_factories"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FACTORIES)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def fx() -> ModuleType:
    return load_factories()
