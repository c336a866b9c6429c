# The two commands: `make demo` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: demo test test-all lint format install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[dev,serving,tools,coco,onnx,nlp,hub,llm]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py --output_dir=$(DEMO_DIR)

# Style first: formatting, lint and module size, then the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) tools/check_module_size.py

# Rewrites files: the formatter, then the linter's safe fixes.
format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Test worker processes (pytest-xdist); TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2

test: lint
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --durations=20

test-all: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS)

clean:
	rm -rf $(VENV) runs build *.egg-info
