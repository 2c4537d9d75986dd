# The two commands that matter: `make run` (everything, locally) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_ENV := SECRET_KEY=lint-only-not-a-secret

.PHONY: run test test-reliability install lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

run: install
	$(BIN)/python -m config.devstack

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LINT_ENV) $(BIN)/mypy

test: lint
	$(BIN)/python -m tests.services -- $(BIN)/pytest $(PYTEST_ARGS)

# Whole-deployment fault tests (real processes killed, services restarted); .ci/run runs them after `make test`.
test-reliability: install
	$(BIN)/python -m tests.services -- $(BIN)/pytest tests/reliability -m reliability --timeout 1500 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m tests.services -- $(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .run .mypy_cache .ruff_cache db.sqlite3*
