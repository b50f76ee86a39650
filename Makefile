# FaceSearch. `make run` starts the whole stack; `make test` runs every test.
# Both do their own set-up on a fresh machine (uv, the locked environment,
# redis-server, PostgreSQL, the generated API stubs).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
SITE     = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
GEN     := gen
PROTOS  := $(shell find proto -name '*.proto')
# FAISS=gpu installs faiss-gpu in place of faiss-cpu (both provide the
# `faiss` module, so switching removes both first).
FAISS   ?= cpu
STAMP   := $(VENV)/.synced-faiss-$(FAISS)
SYNC    := uv sync --frozen --inexact --python 3.11 $(if $(filter gpu,$(FAISS)),--no-group faiss-cpu --group faiss-gpu)

export PATH := $(CURDIR)/$(VENV)/bin:$(HOME)/.local/bin:$(PATH)

.PHONY: help deps proto run test check lint format test-gpu bench load images clean redis-server postgresql kubectl chromium buildah

help:  ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The locked environment. uv is installed with pip when missing.
$(STAMP): pyproject.toml uv.lock services/*/pyproject.toml common/pyproject.toml cli/pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.5'
	@rm -f $(VENV)/.synced*
	@[ ! -x $(PY) ] || uv pip uninstall --quiet --python $(PY) faiss-cpu faiss-gpu faiss-gpu-cu12 2>/dev/null || true
	$(SYNC)
	@touch $@

# redis-server, PostgreSQL and Chromium are Debian's; nothing else here is a system package.
redis-server:  ## install Debian's redis-server when missing
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# The local stack runs its own server (devkit/postgres.py); Debian's package
# is installed for its binaries, and its own cluster is left stopped.
postgresql:  ## install Debian's PostgreSQL server when missing
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  (service postgresql stop || true) >/dev/null 2>&1; }

# kubectl renders the Kubernetes overlays (kustomize) in tests/test_k8s.py.
kubectl:  ## install kubectl when missing (tests render the Kubernetes overlays with it)
	@command -v kubectl >/dev/null || { \
	  echo "installing kubectl"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null; }

# Headless Chromium drives the web console in tests/test_console.py.
chromium:  ## install Debian's chromium and chromium-driver when missing
	@command -v chromedriver >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# buildah builds the Kubernetes images (`make images`, tests/test_images.py),
# on base images debootstrap makes where the registry's cannot be pulled.
buildah:  ## install Debian's buildah and debootstrap when missing
	@command -v buildah >/dev/null && command -v debootstrap >/dev/null || { \
	  echo "installing buildah and debootstrap (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null; }

deps: $(STAMP) redis-server postgresql kubectl chromium buildah  ## the locked environment (uv) and the system packages

$(GEN)/.stamp: $(PROTOS) $(STAMP) proto/openapi.py
	@rm -rf $(GEN) && mkdir -p $(GEN)/python $(GEN)/envoy $(GEN)/openapi
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=$(GEN)/python --pyi_out=$(GEN)/python --grpc_python_out=$(GEN)/python \
	  $(PROTOS)
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) --include_imports --include_source_info \
	  --descriptor_set_out=$(GEN)/envoy/facesearch.pb \
	  proto/facesearch/v1/facesearch.proto google/rpc/status.proto
	$(PY) proto/openapi.py $(GEN)/envoy/facesearch.pb > $(GEN)/openapi/facesearch.json
	@touch $(GEN)/python/facesearch/py.typed  # the stubs come with .pyi files: let mypy read them
	@touch $@

proto: $(GEN)/.stamp  ## Python stubs, the Envoy descriptor set and the OpenAPI description, from proto/

run: deps proto  ## the whole stack on loopback under supervisord: Envoy, 2 gateways, embedder (Triton), indexer, Redis, PostgreSQL
	$(PY) -m devkit.run

images: deps  ## every image the Kubernetes manifests name (facesearch/*), built with buildah
	$(PY) -m devkit.images

test: deps proto lint  ## lint and types, then every unit and end-to-end test against the real processes
	$(PY) -m pytest

check: deps proto lint  ## the fast loop (under 2 minutes): lint and types, then the unit tests beside each service but the slow ones
	$(PY) -m pytest services -m "not slow"

lint: deps proto  ## ruff (lint and format check) over the tree, mypy (strict on services/, common/ and cli/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: deps  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-gpu:  ## the GPU tests (faiss-gpu shards, fp16 embedder) on a machine with a CUDA device
	$(MAKE) FAISS=gpu deps proto
	$(PY) -m pytest -m gpu

bench: deps proto  ## benchmarks (bench/): figures, ratios and plots (bench/RESULTS.md)
	$(SYNC) --group bench
	$(PY) -m bench

load: deps proto  ## search/crops under load at concurrency 1 to 32 (ghz configs, devkit/ghz.py), with its plot
	$(PY) -m bench.load

clean:  ## remove generated files
	rm -rf $(GEN) .pytest_cache .mypy_cache .ruff_cache
