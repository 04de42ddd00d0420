# Everything a fresh machine needs is here: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck layers pytest bench lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

## the main job: every claimed flow, one lot each, on the embedded simulated line
run: $(STAMP)
	$(BIN)/fabline demo

## all checks: lint, types, tests
test: check pytest

check: lint typecheck layers

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## the dependency rules of docs/architecture.md as import-linter contracts (pyproject.toml)
layers: $(STAMP)
	$(BIN)/lint-imports --no-cache

## three test processes (pytest-xdist): most system tests wait on simulated time, so three
## share two cores well; work stealing keeps all three busy to the end, where the slow system
## tests would otherwise queue on one process (measured: 480 s instead of 675 s)
pytest: $(STAMP)
	$(BIN)/pytest -n 3 --dist worksteal

## benchmarks (minutes; PostgreSQL and Mosquitto on 127.0.0.1): figures as ratios to raw paths
bench: $(STAMP)
	$(BIN)/python bench/driver_overhead.py
	$(BIN)/python bench/gem.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/pieces.py
	$(BIN)/python bench/mes.py
	$(BIN)/python bench/genealogy.py
	$(BIN)/python bench/spc.py
	$(BIN)/python bench/line.py

## re-pin dependencies after editing pyproject.toml
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml build-requirements.in --extra dev --python-version 3.11 \
		--generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
