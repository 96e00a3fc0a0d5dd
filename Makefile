# Two commands do all set-up: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit bench faults soak clean

$(STAMP): pyproject.toml
	@# the browser tests drive Debian's Chromium (Playwright never downloads one)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m services

test: $(STAMP)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m tests.bench

# fault injection and the long schemathesis run (tests/faults, 15-20 minutes; not in `make test`)
faults: $(STAMP)
	rm -f var/faults/results.txt
	$(BIN)/python -m pytest tests/faults -s
	@cat var/faults/results.txt

# SOAK_SECONDS (default 600) of steady ingest at half the measured single-POST capacity
soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak

clean:
	rm -rf $(VENV) var
