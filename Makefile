# rowloom: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEMO_ROWS ?= 200

.PHONY: demo test install install-dev lint typecheck pytest clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[dev]"
	$(VENV)/bin/rowloom serve-local --download-only > /dev/null
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/rowloom create examples/qa_judge.yaml -n $(DEMO_ROWS) --name qa_judge_demo --artifact-dir artifacts

lint: install-dev
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

typecheck: install-dev
	$(VENV)/bin/mypy

pytest: install-dev
	$(PY) -m pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) artifacts .mypy_cache .ruff_cache .pytest_cache
