# Every target works on a fresh clone that has only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROTOS := $(shell find protos -name '*.proto' | sort)
GEN_DIRS := clients/modelreg/tracking/v1 clients/modelreg/registry/v1 clients/modelreg/access/v1
# The mypy plugins live in the venv, which need not be on PATH.
PROTOC := $(PY) -m grpc_tools.protoc -Iprotos --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc

.PHONY: install protos check-protos lint typecheck test test-all run-tracking run-registry run demo bench bench-quick bench-security bench-streams bench-events bench-webhooks bench-memory bench-mlflow-rest bench-serving bench-serving-swap up down clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Both distributions, editable: the client (clients/, with its sklearn and serve extras for the suites) and the
# server (the root). Named together, so pip takes the server's `modelreg` from ./clients, not PyPI.
install: $(PY)
	$(PY) -m pip install --quiet -e './clients[sklearn,serve]' -e '.[dev]'

# Regenerates the committed stubs; the proto path is the import path, so nothing is rewritten.
protos: install
	$(PROTOC) --python_out=clients --grpc_python_out=clients \
		--mypy_out=clients --mypy_grpc_out=clients $(PROTOS)

# Regenerates into a scratch dir and fails when the committed code differs.
check-protos: install
	@tmp=$$(mktemp -d); \
	$(PROTOC) --python_out=$$tmp --grpc_python_out=$$tmp \
		--mypy_out=$$tmp --mypy_grpc_out=$$tmp $(PROTOS) && \
	status=0; for d in $(GEN_DIRS); do \
		rel=$${d#clients/}; \
		diff -r -x '__init__.py' -x '__pycache__' $$tmp/$$rel $$d || status=1; \
	done; rm -rf $$tmp; \
	if [ $$status -ne 0 ]; then echo "generated code is out of date: run 'make protos'"; exit 1; fi; \
	echo "generated code matches protos/"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The test command: installs, then runs every suite. PostgreSQL/MySQL suites run when
# MODELREG_TEST_POSTGRES_URL / MODELREG_TEST_MYSQL_URL are set and say so when they skip.
test: install
	$(VENV)/bin/pytest

run-tracking: install
	$(PY) -m tracking_service serve

run-registry: install
	$(PY) -m registry_service serve

run: install
	$(VENV)/bin/modelreg server

demo: install
	$(PY) examples/run_demo.py

# MLflow cannot share the project venv (it pins older protobuf and pandas): bench/run.py builds
# .venv-bench-mlflow on first use and reuses it.
bench: install
	$(PY) bench/run.py
	$(PY) bench/security.py
	$(PY) bench/silent_streams.py

bench-quick: install
	$(PY) bench/run.py --quick
	$(PY) bench/security.py --quick
	$(PY) bench/silent_streams.py --quick

# Webhook delivery throughput, and registration latency while receivers hang (modelreg only).
bench-webhooks: install
	$(PY) bench/webhooks.py

# What access control and TLS cost (modelreg only): plain, auth, TLS and both in one run.
bench-security: install
	$(PY) bench/security.py

# GetRun's p99 while 64 uploads hang after their metadata, then while 64 downloads stop reading
# (target under 50 ms; modelreg only).
bench-streams: install
	$(PY) bench/silent_streams.py

# WatchModelEvents: commit-to-watcher latency p50/p99 with 1, 100 and 1,000 watchers on one
# registry, and its CPU seconds (SQLite; PostgreSQL too when MODELREG_TEST_POSTGRES_URL is set).
bench-events: install
	$(PY) bench/events.py

# The tracking service's resident memory before and after 40 distinct large filters (SQLite, and
# PostgreSQL when MODELREG_BENCH_POSTGRES_URL or MODELREG_TEST_POSTGRES_URL is set; modelreg only).
bench-memory: install
	$(PY) bench/filter_memory.py

# The unmodified mlflow client against MLflow's server and against modelreg's MLflow endpoint,
# and the same operations through the gRPC client: bench/results/mlflow_rest.md.
bench-mlflow-rest: install
	$(PY) bench/mlflow_rest.py

# /invocations latency (p50/p99, 1 and 100 rows) and requests/s of `modelreg serve` against
# `mlflow models serve --env-manager local` on the same model: bench/results/serving.md.
# Then the hot-swap section (bench/results/serving-swap.md).
bench-serving: install
	$(PY) bench/serving.py

# Only the hot swap: 4 clients on `modelreg serve models:/...@champion` while the alias moves 20
# times: move-to-first-answer p50/p90/max, failed requests, requests/s and RSS with and without swaps.
bench-serving-swap: install
	$(PY) bench/serving.py --swap

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) .venv-bench-mlflow .venv-mlflow2 .modelreg .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results
