# Fidus: `make run` serves the API, `make test` runs the suite. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FIDUS := $(VENV)/bin/fidus
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

$(STAMP): requirements.txt requirements-dev.txt mt5_bridge_service/requirements.txt pyproject.toml
	@python="$(call find_python)"; \
	if [ -z "$$python" ]; then \
		echo "Fidus needs Python 3.13: install it (python.org, your package manager or 'pyenv install 3.13') or pass PYTHON=/path/to/python3.13" >&2; \
		exit 1; \
	fi; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)'; then \
		rm -rf $(VENV); echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with Python 3.13, install the requirements and the `fidus` command

# The operator targets run `fidus` and exit with its code. make itself answers 2 for any failed
# recipe, so keep_code also prints the command's own code; cron and monitoring call
# .venv/bin/fidus directly to get 0 ok, 1 findings left, 2 error.
keep_code = { code=$$?; echo "fidus $@ exited $$code (0 ok, 1 findings left, 2 error)" >&2; exit $$code; }

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
	@$(FIDUS) indexes $(ARGS) || $(keep_code)

bridge: install ## Start the MT5 bridge with the simulated terminal on 127.0.0.1:BRIDGE_PORT
	BRIDGE_PORT=$(BRIDGE_PORT) BRIDGE_SIM_DEPOSITS_FILE=$${BRIDGE_SIM_DEPOSITS_FILE:-var/demo_mt5_deposits.json} $(PY) -m mt5_bridge_service

sync: install ## One MT5 sync pass over every active account mapping
	@$(FIDUS) sync $(ARGS) || $(keep_code)

worker: install ## The worker: MT5 sync every SYNC_INTERVAL_SECONDS, scheduled backups and drills
	@$(FIDUS) worker $(ARGS) || $(keep_code)

reconcile: install ## MT5 deposits and withdrawals against recorded investments
	@$(FIDUS) reconcile $(ARGS) || $(keep_code)

lifecycle: install ## Apply the lifecycle transitions due today (the worker runs it daily)
	@$(FIDUS) lifecycle $(ARGS) || $(keep_code)

statements: install ## Every client's statement (PDF + JSON) for a period: ARGS="--period 2026-10"
	@$(FIDUS) statements $(ARGS) || $(keep_code)

migrate: install ## Apply pending migrations (ARGS="--down VERSION" reverts)
	@$(FIDUS) migrate $(ARGS) || $(keep_code)

validate-data: install ## Report documents that break the schema (ARGS=--fix migrates legacy users)
	@$(FIDUS) validate-data $(ARGS) || $(keep_code)

dedupe: install ## Quarantine duplicate investments (ARGS="--rollback RUN_ID" puts them back)
	@$(FIDUS) dedupe $(ARGS) || $(keep_code)

verify: install ## Integrity check: references, money, duplicates
	@$(FIDUS) verify $(ARGS) || $(keep_code)

seed: install ## Seed a data set: STATE=empty|dev|demo|test
	@$(FIDUS) seed --state $(STATE) $(ARGS) || $(keep_code)

backup: install ## Back up the database to one encrypted file (ARGS: --out FILE --collections a,b)
	@$(FIDUS) backup $(ARGS) || $(keep_code)

restore: install ## Restore a backup file (ARGS: FILE [--replace])
	@$(FIDUS) restore $(ARGS) || $(keep_code)

restore-drill: install ## Restore the newest backup into a scratch database, compare, verify, drop it
	@$(FIDUS) restore-drill $(ARGS) || $(keep_code)

clean: ## Remove the virtualenv and the development database
	rm -rf $(VENV) var
