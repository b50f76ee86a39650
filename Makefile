# FaceSearch. `make run` starts the whole stack; `make test` runs every test.
# Both do their own set-up on a fresh machine (uv, the locked environment,
# redis-server, the generated API stubs).
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

.PHONY: help deps proto run test test-gpu unit e2e bench load clean

help:
	@echo "make run    start Envoy, gateway, embedder (Triton), indexer and redis on loopback"
	@echo "make test   unit and end-to-end tests against the real processes"
	@echo "make test-gpu  the GPU tests (faiss-gpu shards) on a machine with a CUDA device"
	@echo "make bench  benchmarks (bench/), figures and ratios"
	@echo "make load   search/crops under load at concurrency 1, 8, 32 (ghz configs, tools/ghz.py)"
	@echo "make proto  generate Python stubs, the Envoy descriptor set and the OpenAPI description"

# The locked environment. uv is installed with pip when missing.
$(STAMP): pyproject.toml uv.lock services/*/pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.5'
	@rm -f $(VENV)/.synced*
	@[ ! -x $(PY) ] || uv pip uninstall --quiet --python $(PY) faiss-cpu faiss-gpu faiss-gpu-cu12 2>/dev/null || true
	$(SYNC)
	@touch $@

# redis-server is Debian's; nothing else here is a system package.
.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# kubectl renders the Kubernetes overlays (kustomize) in tests/test_k8s.py.
.PHONY: kubectl
kubectl:
	@command -v kubectl >/dev/null || { \
	  echo "installing kubectl"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubectl >/dev/null; }

deps: $(STAMP) redis-server kubectl

$(GEN)/.stamp: $(PROTOS) $(STAMP) tools/openapi.py
	@rm -rf $(GEN) && mkdir -p $(GEN)/python $(GEN)/envoy $(GEN)/openapi
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=$(GEN)/python --pyi_out=$(GEN)/python --grpc_python_out=$(GEN)/python \
	  $(PROTOS)
	$(PY) -m grpc_tools.protoc -Iproto -I$(SITE) --include_imports --include_source_info \
	  --descriptor_set_out=$(GEN)/envoy/facesearch.pb \
	  proto/facesearch/v1/facesearch.proto google/rpc/status.proto
	$(PY) -m tools.openapi $(GEN)/envoy/facesearch.pb > $(GEN)/openapi/facesearch.json
	@touch $@

proto: $(GEN)/.stamp

run: deps proto
	$(PY) -m tools.run

test: deps proto
	$(PY) -m pytest

test-gpu:
	$(MAKE) FAISS=gpu deps proto
	$(PY) -m pytest -m gpu

bench: deps proto
	$(SYNC) --group bench
	$(PY) -m bench

load: deps proto
	$(PY) -m bench.load

clean:
	rm -rf $(GEN) .pytest_cache
