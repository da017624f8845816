# The two commands: `make run` (the local stack in the foreground) and `make test` (the whole suite).
# Installs are pinned by lock/<lane>.txt and made with uv into .venv (latest lane) and .venv-mwaa (mwaa lane),
# with bytecode precompiled: these machines set PYTHONDONTWRITEBYTECODE=1 and Airflow imports slowly without it.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
PYTEST_ARGS ?=
# The job `make run` runs once the stack is up (JOB= runs none).
JOB ?= data_processor
# The Airflow processes `make run` starts: local (one of each, LocalExecutor) or celery (MWAA's shape).
TOPOLOGY ?= local

.PHONY: run airflow test test-unit test-mwaa test-tier install install-mwaa lock lint clean bundle

run: install
	.venv/bin/python -m local.stack --topology $(TOPOLOGY) $(if $(JOB),--run $(JOB))

# The airflow CLI against `make run`'s stack, e.g. make airflow ARGS="dags list-runs data_processor".
airflow: install
	.venv/bin/python -m local.cli --topology $(TOPOLOGY) $(ARGS)

test: install
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# The unit tests alone (in-process, no server, no subprocess): seconds, for the edit loop.
test-unit: install
	.venv/bin/python -m pytest -m unit $(PYTEST_ARGS)

test-mwaa: install-mwaa
	.venv-mwaa/bin/python -m pytest $(PYTEST_ARGS)

# Only the real-components tier (tests/tier): one stack driven through the REST API, the CLI and Chromium.
test-tier: install
	.venv/bin/python -m pytest -m tier tests/tier $(PYTEST_ARGS)

install: .venv/.installed
install-mwaa: .venv-mwaa/.installed

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv==$(UV_VERSION)

.venv/.installed: lock/latest.txt | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv
	VIRTUAL_ENV=.venv $(UV) pip sync -q --compile-bytecode lock/latest.txt
	touch $@

.venv-mwaa/.installed: lock/mwaa.txt | $(UV)
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-mwaa
	VIRTUAL_ENV=.venv-mwaa $(UV) pip sync -q --compile-bytecode lock/mwaa.txt
	touch $@

# Regenerate the lock files after changing lock/*.in (Python 3.11, the version these machines and CI run).
# The mwaa lane resolves as of Airflow 3.2.1's release day, as its constraints file did (MWAA applies that
# file); only the test-side moto is newer.
MWAA_RESOLVE_DATE := 2026-04-23
lock: | $(UV)
	$(UV) pip compile -q --python-version 3.11 lock/latest.in -o lock/latest.txt
	$(UV) pip compile -q --python-version 3.11 --exclude-newer $(MWAA_RESOLVE_DATE) \
		--exclude-newer-package moto=2026-11-01 --exclude-newer-package policy-sentry=2026-11-01 \
		lock/mwaa.in -o lock/mwaa.txt

# The Amazon MWAA bundle of the prod environment in dist/mwaa/, checked as MWAA would install and parse it
# (docs/deploy-mwaa.md).
bundle: install
	.venv/bin/python -m ecsjobs --env prod bundle --check

# ruff, the layer and cycle contracts between the library's packages (pyproject.toml [tool.importlinter]) and
# mypy, strict on the library (pyproject.toml [tool.mypy]).
lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/mypy -p ecsjobs

clean:
	rm -rf .venv .venv-mwaa .tools .local
