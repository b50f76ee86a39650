#!/usr/bin/env bash
# There, on the lent GPU machine (see prepare.sh): the GPU tests, then the
# embedder and indexer benchmarks on the device, each step's output in
# $OUT/<step>.log. Steps share one deadline (CHECK_BUDGET_S, 530 s) so the
# call ends inside its limit with whatever finished.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
OUT=${OUT:-$root/.device/out}
mkdir -p "$OUT"
deadline=$((SECONDS + ${CHECK_BUDGET_S:-530}))

site=/tmp/facesearch-site
rm -rf "$site" && mkdir -p "$site" && xz -dc .device/site.tar.xz | tar -C "$site" -xf -
export PYTHONPATH=$site:$root/gen/python:$root/common:$root/services/indexer:$root/services/embedder:$root/services/gateway:$root
export FACESEARCH_SHARED_DATA=$root/.device/shared/data PYTHONUNBUFFERED=1
# The Procfile runs `python` (the project environment's, which is not
# here): the machine's own python3, through a wrapper ahead on the PATH. A
# wrapper, not a link, so that python3 still finds its virtual environment.
bin=/tmp/facesearch-bin
mkdir -p "$bin"
printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v python3)" > "$bin/python"
chmod +x "$bin/python"
export PATH=$bin:$PATH
# faiss-gpu loads CUDA 12's runtime (it runs on the newer driver) and the
# cuBLAS 12 shim from the packed nvidia/ folder; the shim forwards to this
# machine's CUDA 13 cuBLAS.
cublas13=$(find /usr /opt /lib -name 'libcublas.so.13*' 2>/dev/null | head -1)
export CUBLAS_SHIM_TARGET=$cublas13
export LD_LIBRARY_PATH=$(dirname "$cublas13")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  echo "cores: $(nproc)"; python3 --version
  echo "cuBLAS 12 shim onto: ${cublas13:-nothing}"
  python3 -c 'import torch, numpy; print("torch", torch.__version__, torch.cuda.get_device_name(0), "numpy", numpy.__version__)'
  python3 - <<'PY'
import faiss, grpc, google.protobuf, numpy as np
print("faiss", faiss.__version__, "gpus", faiss.get_num_gpus(), "grpc", grpc.__version__,
      "protobuf", google.protobuf.__version__, "numpy", np.__version__)
x = np.random.default_rng(0).standard_normal((100_000, 512)).astype("float32")
cpu = faiss.IndexFlatIP(512); cpu.add(x)
gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, faiss.IndexFlatIP(512)); gpu.add(x)
q = x[:64] + 0.01
print("GPU and CPU exact top-10 agree:", (gpu.search(q, 10)[1] == cpu.search(q, 10)[1]).mean())
PY
} > "$OUT/env.log" 2>&1
cat "$OUT/env.log"

step() {  # step NAME SECONDS COMMAND...: at most SECONDS, never past the deadline
  local name=$1 limit=$2 left=$((deadline - SECONDS)); shift 2
  (( limit > left )) && limit=$left
  (( limit < 10 )) && { echo "== $name: no time left"; return; }
  echo "== $name (at most ${limit}s)"
  timeout -k 5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: exit $? at ${SECONDS}s"
  tail -n 60 "$OUT/$name.log"
}

# CHECK_STEPS chooses (all by default).
wanted() { [[ " ${CHECK_STEPS:-tests-indexer tests-embedder embedder layers indexer} " == *" $1 "* ]]; }
wanted tests-indexer && step tests-indexer 150 python3 -m pytest -m gpu -p no:cacheprovider -q services/indexer
wanted tests-embedder && step tests-embedder 90 python3 -m pytest -m gpu -p no:cacheprovider -q \
  services/embedder/tests/test_weights_and_network.py
wanted embedder && step embedder 150 python3 -m bench.embedder_gpu --device cuda:0 --round-crops 1024
wanted layers && step layers 120 sh -c 'for n in 1000000 100000; do
  python3 -m bench.indexer_layers --device cuda:0 --faces $n; done'
wanted indexer && step indexer 600 python3 -m bench.indexer --device cuda:0 --sizes 1000000 100000 \
  --paths raw service --real-faces .device/lfw-embeddings.npz
