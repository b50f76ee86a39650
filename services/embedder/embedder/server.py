"""Embedder: a real tritonserver serving the crop embedder (crop to unit
embedding in one model) and, for whole photos, the face detector (YuNet), as
Python-backend models with dynamic batching, on CUDA when present (the
official Triton image serves the same graphs without Python: embedder.export).

This process checks the settings, resolves the weights, exports the ONNX
graph once when that engine runs, writes the model repository, then becomes
tritonserver (exec), so its pid is the server's."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from facesearch_common import logs
from facesearch_common.specs import YUNET, get_spec

from . import graphs, launcher, repository, weights
from .config import Settings


def exported(path: Path, export: str, *args: Any) -> Path:
    """A cached graph, exported first (with PyTorch, imported only then) if it is not."""
    if path.is_file():
        return path
    from . import engines

    made: Path = getattr(engines, export)(*args)
    return made


def entries(settings: Settings, device: str) -> list[repository.Entry]:
    """The crop embedder and the face detector, with their weights resolved
    and, where ONNX Runtime runs them, their graphs exported once."""
    spec = get_spec(settings.model)
    path = weights.resolve(spec, settings.weights, settings.data_dir / "models")
    detector = weights.resolve(YUNET, settings.detector_weights, settings.data_dir / "models")
    engine = graphs.choose(settings.engine, device, spec)
    precision = graphs.precision(settings.precision, device)
    cache = settings.data_dir / "onnx"
    crops = graphs.crops_path(spec, path, detector, cache)
    onnx = exported(crops, "onnx_file", spec, path, detector, cache) if engine == "onnxruntime" else None
    instances, threads = settings.face_instances()
    gpu = device.startswith("cuda")
    photos = exported(graphs.photos_path(detector, cache), "photos_onnx_file", detector, cache) if not gpu else None
    return [
        repository.crop_entry(spec, engine, path, detector, onnx, instances, threads, gpu, precision),
        repository.photo_entry(detector, photos, settings.detector_instances, 0),
    ]


def main() -> None:
    settings = Settings()
    log = logs.setup("embedder", settings.log_level)
    device = settings.resolved_device()
    try:
        served = entries(settings, device)
    except (weights.WeightsError, ValueError) as exc:
        log.error("cannot start", extra={"reason": str(exc)})
        print(f"embedder: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    root = settings.data_dir / "triton"
    models = repository.write(
        root / "models", served, settings.max_batch_size, settings.queue_delay_us(), gpu=device.startswith("cuda")
    )
    run = launcher.command(
        models,
        launcher.backends(root / "backends"),
        settings.bind,
        settings.grpc_port,
        settings.http_port,
        settings.metrics_port,
    )
    orphans = launcher.stop_orphaned_stubs()
    stale = launcher.remove_stale_regions()
    if orphans or stale:
        log.info("cleared up after killed servers", extra={"stubs": len(orphans), "regions": len(stale)})
    log.info(
        "starting tritonserver",
        extra={
            "models": [e.name for e in served],
            "device": device,
            "engine": served[0].parameters.get("engine", "torch"),
            "instances": {e.name: e.instances for e in served},
            "grpc_port": settings.grpc_port,
            "http_port": settings.http_port,
        },
    )
    os.execve(run.argv[0], run.argv, run.env)


if __name__ == "__main__":
    main()
