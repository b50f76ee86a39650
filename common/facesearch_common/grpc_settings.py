"""gRPC core's settings for the services' Python processes. gRPC reads them
from the environment once, when it starts, so each service applies them in
its package's __init__, before anything imports grpc; a value already in
the environment wins."""

from __future__ import annotations

import os

# grpc.aio learns of finished operations from a poller. In the grpcio this
# project pins, an experiment on by default polls through gRPC's
# EventEngine; turned off, the older completion-queue poller thread costs
# less CPU a call: at 32 search/crops in flight through Envoy on two cores,
# the gateway 0.966x its CPU a search side by side with it on, and the
# indexer 0.70-0.77 ms a search against 0.81-0.86 in turns (2026-12-06,
# bench/RESULTS.md, "Load").
EXPERIMENTS = "-event_engine_poller_for_python"


def apply() -> None:
    os.environ.setdefault("GRPC_EXPERIMENTS", EXPERIMENTS)
