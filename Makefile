# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

# DEMO=1 points every command at the drift demo's sandbox (.demo/, see `make drift-demo`).
ifeq ($(DEMO),1)
export DAGSTER_HOME := $(CURDIR)/.demo/dagster_home
export MLFLOW_TRACKING_URI := sqlite:///$(CURDIR)/.demo/mlflow.db
export CONVERSATION_STORE_URL := sqlite:///$(CURDIR)/.demo/conversations.db
export LAKE_DIR := $(CURDIR)/.demo/lake
export MONITORING_REPORTS_DIR := $(CURDIR)/.demo/reports
endif
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.mlflow/mlflow.db
export PYTHONUNBUFFERED := 1
DAGSTER_PORT ?= 3001
MLFLOW_PORT ?= 5000
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: install system-deps run pipeline serve token screenshots status promote rollback monitor monitor-ui scheduler drift-demo evaluate ui test lint format lock bench clean

# The chat tier signs tokens with CHAT_JWT_SECRET. Locally a random one is made once and kept in
# .chat-secret (gitignored, mode 0600: it signs agent tokens); deployments set the variable.
CHAT_SECRET_FILE := .chat-secret
export CHAT_JWT_SECRET ?= $(shell test -s $(CHAT_SECRET_FILE) || (umask 077 && python3 -c "import secrets; print(secrets.token_urlsafe(48))" > $(CHAT_SECRET_FILE)); chmod 600 $(CHAT_SECRET_FILE); cat $(CHAT_SECRET_FILE))
# `make token` user: CHAT_USER, or USER given on the command line. The shell's own $USER is
# never used: Make imports the environment, so `USER ?= …` would always be the login name.
CHAT_USER ?= $(if $(filter command line,$(origin USER)),$(USER),customer-1)
ROLE ?= customer
# Debian packages the tests drive for real: a Redis server (chat fan-out), Chromium (pages) and
# PostgreSQL (the production profile's stores; Debian keeps initdb in /usr/lib/postgresql/*/bin).
SYSTEM_PACKAGES := redis-server chromium postgresql
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)

install: $(STAMP)

system-deps:
	@command -v redis-server >/dev/null && command -v chromium >/dev/null && \
		{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || ( \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) )

# uv installs the locked stack in seconds where plain pip backtracks for minutes. Bytecode is
# compiled at install: with PYTHONDONTWRITEBYTECODE set, each run process otherwise compiles
# ~1,300 modules from source (bench/README.md, data scaling).
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

run: pipeline serve

# Serves the registry's champion (needs `make pipeline` once) and the chat tier. Ctrl-C stops it.
# Dev login (the pages hand a token to whoever asks, agents included) is off; a local demo turns
# it on with `make serve CHAT_DEV_LOGIN=true`, which the service refuses unless HOST is loopback.
# The URLs are printed once /readyz answers (serving/launch.py); a refusal to start is one line.
serve: $(STAMP)
	CHAT_DEV_LOGIN=$(or $(CHAT_DEV_LOGIN),false) $(PY) -m serving.launch --host $(HOST) --port $(PORT)

# A terminal chat with the served model (`make serve` in another terminal): each line's intent,
# confidence, alternatives, fallback and the bot's reply. SERVICE_URL points it elsewhere.
.PHONY: shell
shell: $(STAMP)
	@$(PY) -m serving.shell --url "$(or $(SERVICE_URL),http://$(HOST):$(PORT))"

# make token CHAT_USER=alice ROLE=customer|agent: a chat token signed with CHAT_JWT_SECRET.
token: $(STAMP)
	@test -n "$(CHAT_USER)" || (echo "usage: make token CHAT_USER=alice ROLE=customer|agent" >&2 && exit 2)
	@$(PY) -m serving.chat.token_cli --user "$(CHAT_USER)" --role "$(ROLE)"

# Drives the chat pages (widget on another origin's page, customer page, agent console, dev login
# form) in headless Chromium and saves their screenshots in docs/screenshots.
screenshots: $(STAMP) system-deps
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q -p no:cacheprovider \
		tests/serving/chat/test_chat_pages.py tests/serving/chat/test_web_pages.py \
		tests/serving/chat/test_dev_login.py::test_dev_login_on_loopback_serves_tokens_and_the_page_uses_it
	@ls -1 docs/screenshots/*.png

pipeline: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipelines.cli materialize

status: $(STAMP)
	@$(PY) -m pipelines.cli status

# make promote VERSION=n REASON="why": force a champion, recorded in gate_history.
promote: $(STAMP)
	@test -n "$(VERSION)" || (echo "usage: make promote VERSION=n REASON='why'" && exit 2)
	@$(PY) -m pipelines.cli promote --version "$(VERSION)" --reason "$(or $(REASON),forced by make promote)"

# One monitoring run over the last 24 hours (Dagster monitoring_job): verdict, HTML under reports/.
monitor: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipelines.cli monitor

# Trends across monitoring runs: Evidently's UI over the workspace each run adds its snapshot to.
EVIDENTLY_PORT ?= 8000
monitor-ui: $(STAMP)
	$(VENV)/bin/evidently ui --host 127.0.0.1 --port $(EVIDENTLY_PORT) --workspace \
	  "$(or $(MONITORING_EVIDENTLY_WORKSPACE),$(or $(MONITORING_REPORTS_DIR),$(REPORTS_DIR),reports)/evidently_workspace)"

# The APScheduler runner: daily monitoring and weekly retraining without the Dagster daemon.
scheduler: $(STAMP)
	$(PY) -m pipelines.scheduler

# The whole loop in a sandbox (.demo/): drift, agent labels, a promoted retrain, a refused one.
drift-demo: $(STAMP)
	$(PY) -m pipelines.drift_demo
	@echo; echo "gate history (make status DEMO=1):"
	@$(MAKE) --no-print-directory status DEMO=1

# Benchmark mode: train through the pipeline on EVALUATE_DIR's train.csv only (default: the
# Banking77 folder), serve that version, score its test.csv over HTTP, print and log the table.
# All in a sandbox (EVALUATE_SANDBOX, default .evaluate/): the champion is never touched.
evaluate: $(STAMP)
	$(PY) -m pipelines.evaluate

# Move champion back to the version it replaced.
rollback: $(STAMP)
	@$(PY) -m pipelines.cli rollback --reason "$(or $(REASON),manual rollback)"

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	@echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)   MLflow UI: http://127.0.0.1:$(MLFLOW_PORT)"
	set -m; \
	$(VENV)/bin/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 & \
	mlflow_pid=$$!; \
	trap 'kill $$mlflow_pid 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

# Most tests wait on a server of their own, so pytest-xdist runs two files at once (a 2-core
# machine's second core idled). loadfile keeps a file's tests and module fixtures on one worker;
# files start longest first (tests/scheduling.py). PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# A type error fails the tests before pytest starts (typecheck: mypy, below).
test: $(STAMP) system-deps typecheck
	$(PY) -m pytest -q $(PYTEST_XDIST)

# The inner loop: everything but the end-to-end tests marked @pytest.mark.slow.
.PHONY: test-fast
test-fast: $(STAMP) system-deps typecheck
	$(PY) -m pytest -q $(PYTEST_XDIST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	@$(MAKE) --no-print-directory typecheck

# mypy over the packages named in pyproject.toml [tool.mypy]; make lint, test and test-fast run it.
# .mypy_cache makes a rerun fast (about 1 s; a first run on a fresh clone, about 45 s of CPU).
.PHONY: typecheck
typecheck: $(STAMP)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

# Re-pin the transitive dependency set after editing pyproject.toml.
lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra dev -p 3.11 -o requirements.lock

# wrk is the load generator (a Python client would steal the CPU it measures).
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/feature_throughput.py
	$(PY) bench/serve.py
	$(PY) bench/chat.py
	$(PY) bench/monitor.py

clean:
	rm -rf .dagster_home .mlflow .lake reports .demo
