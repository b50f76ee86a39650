#!/usr/bin/env bash
# Here, on a machine with the package registries and ../shared/data: packs
# into .device/ (git-ignored) everything devkit/device/check.sh needs on the
# lent GPU machine, which is offline, has CUDA 13 and its own Python 3.12
# with PyTorch, and takes at most 64 MiB of carried files:
#   site.tar.xz      the project's Python dependencies that machine lacks, at
#                    the versions uv.lock pins (faiss-gpu for faiss-cpu), as
#                    cp312 wheels unpacked and xz-compressed, with only the
#                    sm_90 (H100/H200) kernels left in libfaiss.so
#                    (fatbin_keep.py): 200 MB of wheels become about 40 MB;
#                    Where faiss looks for the CUDA 12 wheels' libraries
#                    (nvidia/<part>/lib) it finds libcublas.so.12 forwarding
#                    to CUDA 13's cuBLAS (cublas12_shim.c says why), and empty
#                    libcublasLt.so.12 and libcurand.so.10, which it loads but
#                    never calls;
#   lfw-embeddings.npz  the real faces bench.indexer mixes in;
#   shared/data/     the first 60 lfw-dev identities, YuNet and the MobileFaceNet
#                    weights, for the GPU tests and bench.embedder_gpu.
# Then, from the repository root, with the device tool:
#   run(command="bash devkit/device/check.sh", carry=[".device", "gen"])
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device
shared=${FACESEARCH_SHARED_DATA:-../shared/data}
rm -rf "$out/whl" "$out/lib" "$out/shared" "$out/site.tar.xz"
mkdir -p "$out/whl" "$out/shared/data/lfw-dev/identities" "$out/shared/data/models"

# What the GPU machine's image lacks (it has numpy, torch, httpx, rich, psutil).
packages=(grpcio grpcio-health-checking grpcio-reflection protobuf pydantic pydantic-core pydantic-settings
          python-dotenv annotated-types typing-inspection pyjwt cryptography cffi pycparser supervisor facenet-pytorch
          tritonclient python-rapidjson)
version() { .venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
locked() { awk -v name="name = \"$1\"" '$0 == name { getline; gsub(/"/, "", $3); print $3; exit }' uv.lock; }
pins=("faiss-gpu==$(locked faiss-gpu)" "nvidia-cuda-runtime-cu12==12.8.90")
for p in "${packages[@]}"; do pins+=("$p==$(version "$p")"); done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$out/whl" "${pins[@]}"
site=$(mktemp -d)
for w in "$out"/whl/*.whl; do python3 -m zipfile -e "$w" "$site"; done
python3 devkit/device/fatbin_keep.py --arch "${GPU_ARCH:-90}" "$site/faiss/libfaiss.so"
mkdir -p "$site/nvidia/cublas/lib" "$site/nvidia/curand/lib"
gcc -O2 -shared -fPIC -Wl,-soname,libcublas.so.12 -Wl,--version-script=devkit/device/cublas12.map \
  -o "$site/nvidia/cublas/lib/libcublas.so.12" devkit/device/cublas12_shim.c -ldl
for soname in cublas/lib/libcublasLt.so.12 curand/lib/libcurand.so.10; do
  echo 'void not_called(void) {}' | gcc -shared -fPIC -Wl,-soname,"${soname##*/}" -o "$site/nvidia/$soname" -x c -
done
tar -C "$site" -cf - . | xz -T0 -6 > "$out/site.tar.xz"
rm -rf "$site" "$out/whl"

# bench.indexer reads psutil, which only the bench group installs.
uv sync --frozen --inexact --python 3.11 --group bench --quiet
.venv/bin/python -c "from pathlib import Path; from bench.indexer import lfw_embeddings; lfw_embeddings(Path('$out/lfw-embeddings.npz'))"
for name in $(ls "$shared/lfw-dev/identities" | head -60); do
  cp -r "$shared/lfw-dev/identities/$name" "$out/shared/data/lfw-dev/identities/"
done
cp "$shared/models/mobilefacenet-casia-068.ckpt" "$shared/models/face_detection_yunet_2026may.onnx" "$out/shared/data/models/"
du -sh "$out"
