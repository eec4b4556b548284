"""`moodstream worker --model`: the factory it names gets the settings when it takes them."""

from __future__ import annotations

from ops.cli.worker import load_object


def test_load_object_passes_settings_to_a_factory_that_takes_them(tmp_path):
    f = tmp_path / "models.py"
    f.write_text("def with_settings(settings):\n    return ('built with', settings)\n\n"
                 "def bare():\n    return 'bare'\n\n"
                 "class Model:\n    def classify(self, items):\n        return items\n\nINSTANCE = Model()\n")
    assert load_object(f"{f}:with_settings", "S") == ("built with", "S")
    assert load_object(f"{f}:bare", "S") == "bare"
    assert type(load_object(f"{f}:Model", "S")).__name__ == "Model"  # a class without parameters
    instance = load_object(f"{f}:INSTANCE", "S")
    assert instance.classify([1]) == [1]  # an object with classify is used as it is
