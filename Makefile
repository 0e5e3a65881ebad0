# Fidus: `make run` serves the API, `make test` runs the suite. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
BRIDGE_PORT ?= 8100
STATE ?= dev
ARGS ?=

# The first Python 3.13 that really runs: $(PYTHON) if given, then python3.13, then pyenv's.
find_python = $(shell \
	for c in $(PYTHON) python3.13 "$$(pyenv root 2>/dev/null)/versions/3.13"*/bin/python3.13; do \
		if [ -n "$$c" ] && "$$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' >/dev/null 2>&1; then \
			echo "$$c"; break; \
		fi; \
	done)

.PHONY: help install run test fuzz lint indexes bench bridge sync worker reconcile lifecycle migrate \
	validate-data dedupe verify seed backup restore restore-drill statements clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt mt5_bridge_service/requirements.txt
	@python="$(call find_python)"; \
	if [ -z "$$python" ]; then \
		echo "Fidus needs Python 3.13: install it (python.org, your package manager or 'pyenv install 3.13') or pass PYTHON=/path/to/python3.13" >&2; \
		exit 1; \
	fi; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)'; then \
		rm -rf $(VENV); echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with Python 3.13 and install the requirements (quick when nothing changed)

run: install ## Serve the API on HOST:PORT (embedded database unless MONGODB_URI is set)
	$(PY) -m backend --host $(HOST) --port $(PORT)

test: install ## Run the whole test suite
	$(PY) -m pytest $(ARGS)

fuzz: install ## schemathesis, every check, 25 examples per operation as admin and as client
	FIDUS_FUZZ_EXAMPLES=$${FIDUS_FUZZ_EXAMPLES:-25} $(PY) -m pytest tests/test_api_schemathesis.py -q $(ARGS)

lint: install ## ruff and mypy
	$(PY) -m ruff check backend mt5_bridge_service scripts tests
	$(PY) -m mypy backend mt5_bridge_service scripts

bench: install ## Run the benchmarks and print one table
	$(PY) -m tests.benchmarks $(ARGS)

indexes: install ## Create collections, validators and indexes from schemas/ (ARGS: --dry-run --allow-drop --json)
	$(PY) -m scripts.create_indexes $(ARGS)

bridge: install ## Start the MT5 bridge with the simulated terminal on 127.0.0.1:BRIDGE_PORT
	BRIDGE_PORT=$(BRIDGE_PORT) BRIDGE_SIM_DEPOSITS_FILE=$${BRIDGE_SIM_DEPOSITS_FILE:-var/demo_mt5_deposits.json} $(PY) -m mt5_bridge_service

sync: install ## One MT5 sync pass over every active account mapping
	$(PY) -m scripts.sync $(ARGS)

worker: install ## The worker: MT5 sync every SYNC_INTERVAL_SECONDS, scheduled backups and drills
	$(PY) -m scripts.sync --loop $(ARGS)

reconcile: install ## MT5 deposits and withdrawals against recorded investments
	$(PY) -m scripts.reconcile $(ARGS)

lifecycle: install ## Apply the lifecycle transitions due today (the worker runs it daily)
	$(PY) -m scripts.lifecycle $(ARGS)

statements: install ## Every client's statement (PDF + JSON) for a period: ARGS="--period 2026-10"
	$(PY) -m scripts.statements $(ARGS)

migrate: install ## Apply pending migrations (ARGS="--down VERSION" reverts)
	$(PY) -m scripts.migrate $(ARGS)

validate-data: install ## Report documents that break the schema (ARGS=--fix migrates legacy users)
	$(PY) -m scripts.validate_data $(ARGS)

dedupe: install ## Quarantine duplicate investments (ARGS="--rollback RUN_ID" puts them back)
	$(PY) -m scripts.dedupe $(ARGS)

verify: install ## Integrity check: references, money, duplicates
	$(PY) -m scripts.verify $(ARGS)

seed: install ## Seed a data set: STATE=empty|dev|demo|test
	$(PY) -m scripts.seed --state $(STATE) $(ARGS)

backup: install ## Back up the database to one encrypted file (ARGS: --out FILE --collections a,b)
	$(PY) -m scripts.backup $(ARGS)

restore: install ## Restore a backup file (ARGS: FILE [--replace])
	$(PY) -m scripts.restore $(ARGS)

restore-drill: install ## Restore the newest backup into a scratch database, compare, verify, drop it
	$(PY) -m scripts.restore_drill $(ARGS)

clean: ## Remove the virtualenv and the development database
	rm -rf $(VENV) var
