"""The API fuzzed against its own OpenAPI document, as a user would: the schemathesis 4 command line (``st run``)
with its default checks and phases (examples, coverage, fuzzing; no 5xx, answers as documented: status codes,
content types, headers, response schemas, valid input accepted, invalid input refused, the token enforced).

The app is the real ``Classifier`` ingress and HTTP API on a real Ray Serve, with its real ``/openapi.json``; the
models are stand-ins (``testkit.standin_serve``), so the few hundred requests take seconds. Bounded:
``--max-examples`` per operation and phase, a fixed seed. No schema can say that bytes decode as an image (the
document's 422 "could not be classified" covers those, tested with the real models in ``test_http_api.py``), so the
vision stand-in here classifies any bytes (``any_bytes``).

(schemathesis' pytest plugin, ``@schema.parametrize()``, reads ``request.node._nodeid``, which pytest 9 no longer
has; the command line is the tool as users run it anyway.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
TOKEN = "fuzz-t0ken"
MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def fuzzed_url(standin_app) -> str:
    """The app under fuzzing: a token, and no rate limit (the fuzzer's pace is not what is tested here)."""
    return standin_app("fuzzed", any_bytes=True, api_token=TOKEN, api_rate_per_s=0)


def test_api_matches_its_openapi_document(fuzzed_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{fuzzed_url}/openapi.json", "--url", fuzzed_url,
           "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", str(MAX_EXAMPLES), "--seed", "16",
           "--continue-on-failure", "--request-timeout", "60", "--no-color"]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-20000:]
    assert "4 selected / 4 total" in out and "Coverage" in out and "Fuzzing" in out, out[-5000:]
    generated = int(out.split(" generated")[0].rsplit(maxsplit=1)[-1])
    assert generated >= 100, out[-3000:]  # it really sent cases, not just loaded the document
