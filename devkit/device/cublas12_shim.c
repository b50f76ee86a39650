/* libcublas.so.12 for a GPU host that has only CUDA 13's cuBLAS.

   The faiss-gpu-cu12 wheel (the indexer's `gpu` extra) links
   libcublas.so.12 and asks for its symbols at version "libcublas.so.12".
   Production images install nvidia-cublas-cu12 beside it and need none of
   this. The GPU machine our benchmarks run on is offline and carries CUDA
   13 only, and the cu12 cuBLAS wheel (~500 MB) cannot travel there, so this
   library answers for it: it defines the eight entry points faiss calls,
   under that version, and each jumps straight to the same function in
   libcublas.so.13 (same signatures in both releases). A jump, not a call,
   so arguments and return values pass through untouched.

   Build (devkit/device/prepare.sh does):
     gcc -O2 -shared -fPIC -Wl,-soname,libcublas.so.12 \
         -Wl,--version-script=cublas12.map -o libcublas.so.12 cublas12_shim.c -ldl
   CUBLAS_SHIM_TARGET names the library to forward to (libcublas.so.13). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/* The order of this list is the order of the jump table below. */
static const char *const forwarded[] = {
    "cublasCreate_v2",   "cublasDestroy_v2", "cublasGemmEx",      "cublasGemmStridedBatchedEx",
    "cublasGetMathMode", "cublasSetMathMode", "cublasSetStream_v2", "cublasSgemmEx",
};
#define COUNT (sizeof forwarded / sizeof *forwarded)

__attribute__((visibility("hidden"))) void *cublas12_targets[COUNT];

__attribute__((constructor)) static void bind_targets(void) {
    const char *target = getenv("CUBLAS_SHIM_TARGET");
    if (target == NULL)
        target = "libcublas.so.13";
    void *lib = dlopen(target, RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL) {
        fprintf(stderr, "cublas12 shim: cannot open %s: %s\n", target, dlerror());
        abort();
    }
    for (size_t i = 0; i < COUNT; i++) {
        cublas12_targets[i] = dlsym(lib, forwarded[i]);
        if (cublas12_targets[i] == NULL) {
            fprintf(stderr, "cublas12 shim: %s has no %s\n", target, forwarded[i]);
            abort();
        }
    }
}

#define JUMP(name, slot)                                                   \
    __asm__(".text\n.globl " #name "\n.type " #name ", @function\n" #name \
            ":\n\tjmp *cublas12_targets+" #slot "*8(%rip)\n.size " #name ", .-" #name "\n");

JUMP(cublasCreate_v2, 0)
JUMP(cublasDestroy_v2, 1)
JUMP(cublasGemmEx, 2)
JUMP(cublasGemmStridedBatchedEx, 3)
JUMP(cublasGetMathMode, 4)
JUMP(cublasSetMathMode, 5)
JUMP(cublasSetStream_v2, 6)
JUMP(cublasSgemmEx, 7)
