"""FAKE classifier backend outage: the lexicon STAND-IN, except that every call raises while the file named by
``MOODSTREAM_TEST_CLASSIFIER_DOWN`` exists (a model server that is down, as a whole-batch failure).

Used where the real Ray Serve app cannot run yet (no model pack): it shows what the worker does with the posts of
batches whose classifier call keeps failing.
"""

from __future__ import annotations

import os
from pathlib import Path

from testkit.lexicon_classifier import LexiconClassifier


class FlakyClassifier(LexiconClassifier):
    def classify(self, items):  # type: ignore[no-untyped-def]
        flag = os.environ.get("MOODSTREAM_TEST_CLASSIFIER_DOWN")
        if flag and Path(flag).exists():
            raise ConnectionError("FAKE: the model server is down")
        return super().classify(items)
