"""The indexer: FAISS shards per collection, following the system of record."""

import os

from facesearch_common import grpc_settings

# FAISS's OpenMP threads spin after every parallel region unless told
# otherwise, taking cores from the rest of the stack between searches: at
# 1,300 faces and 32 search/crops in flight they cost 2.7 to 3.6 ms of CPU
# per request, against 0.55 ms sleeping (2 cores; 2026-12-02, the message
# of commit 6482e58). libgomp reads this once, when faiss is first
# imported, hence here, before any module of the package;
# OMP_WAIT_POLICY=ACTIVE in the environment still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
grpc_settings.apply()  # before any module of the package imports grpc
