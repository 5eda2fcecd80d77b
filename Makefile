# srsuite: `make train` runs the default experiment, `make test` the test suite. Both install what is
# missing into .venv first (PyTorch comes from the pinned wheels in pyproject.toml).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train evaluate test lint clean gpu-check

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) -m src.train $(ARGS)

evaluate: $(STAMP)
	$(PY) -m src.evaluate $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

gpu-check: $(STAMP)  # ~10 min on one GPU: pass/fail table, experiments/gpu_check/<gpu name>.md (ARGS="--cpu": CPU half)
	$(PY) experiments/gpu_check/gpu_check.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache
