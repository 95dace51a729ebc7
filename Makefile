# Two commands on a fresh machine: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROTOS := $(shell find proto -name '*.proto')

.PHONY: help setup venv proto migrate run test test-unit lint typecheck bench clean

help:
	@echo "make run     set everything up and run the whole system (gateway on http://127.0.0.1:8080),"
	@echo "             all in one process; GOV_DEVRUN_MODE=processes make run: one process each"
	@echo "make test    set everything up and run the whole test suite"
	@echo "make lint    ruff"
	@echo "make typecheck  mypy on govkit, gateway and services (settings in pyproject.toml)"
	@echo "make bench   benchmarks (see bench/README.md)"

setup: venv proto

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# The repository root and the generated code are importable without packaging the project.
	@printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gov-platform.pth"
	@touch $@

# Generated code lives only in gen/ and is rebuilt from proto/ by this one target.
proto: gen/.stamp

gen/.stamp: $(VENV)/.installed $(PROTOS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iproto -I"$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
		--python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	@touch $@

migrate: setup
	$(PY) -m govkit.devrun migrate

run: setup
	$(PY) -m govkit.devrun run

test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadgroup

test-unit: setup
	$(PY) -m pytest tests/unit

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Reads the generated stubs in gen/ (mypy_path), so it runs after `make proto`.
typecheck: setup
	$(PY) -m mypy

bench: setup
	$(PY) bench/gateway_auth.py

clean:
	rm -rf $(VENV) gen .pytest_cache .ruff_cache .mypy_cache
