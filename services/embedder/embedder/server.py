"""Embedder: a real tritonserver (through PyTriton) serving the detector and
the face embedding model, with dynamic batching, on CUDA when present."""

from __future__ import annotations

import os
import sys
import sysconfig

import torch
from pytriton.triton import Triton, TritonConfig

from facesearch_common import logs
from facesearch_common.specs import get_spec

from . import engines, weights
from .config import Settings
from .detector import Detector
from .models import Binding, detector_binding, embedder_binding


def _python_libdir_on_loader_path() -> None:
    # Triton's Python-backend stub links libpython; a non-system Python
    # (pyenv, uv) keeps it in its own LIBDIR, which the stub must find.
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir and libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir


def bindings(settings: Settings) -> list[Binding]:
    if settings.models not in ("all", "detector"):
        raise ValueError(f"EMBEDDER_MODELS must be all or detector, got {settings.models!r}")
    device = settings.resolved_device()
    detectors = [Detector(device) for _ in range(settings.instances)]
    served = [detector_binding(detectors, settings.max_batch_size, settings.max_queue_delay_us)]
    if settings.models == "all":
        spec = get_spec(settings.model)
        path = weights.resolve(spec, settings.weights, settings.data_dir / "models")
        models = [engines.build(settings.engine, spec, path, device, settings.data_dir / "onnx", settings.threads)
                  for _ in range(settings.instances)]
        served.insert(0, embedder_binding(spec, models, settings.max_batch_size, settings.max_queue_delay_us))
    return served


def main() -> None:
    settings = Settings()
    log = logs.setup("embedder", settings.log_level)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        served = bindings(settings)
    except (weights.WeightsError, ValueError) as exc:
        log.error("cannot start", extra={"reason": str(exc)})
        print(f"embedder: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    _python_libdir_on_loader_path()
    config = TritonConfig(
        grpc_address=settings.bind,
        http_address=settings.bind,
        grpc_port=settings.grpc_port,
        http_port=settings.http_port,
        metrics_port=settings.metrics_port,
        log_verbose=0,
        exit_on_error=True,
    )
    with Triton(config=config) as triton:
        for b in served:
            triton.bind(model_name=b.name, infer_func=b.infer, inputs=b.inputs,
                        outputs=b.outputs, config=b.config, strict=True)
        log.info("serving", extra={"models": [b.name for b in served], "device": settings.resolved_device(),
                                   "engine": engines.choose(settings.engine, settings.resolved_device(),
                                                            get_spec(settings.model)),
                                   "grpc_port": settings.grpc_port, "http_port": settings.http_port})
        triton.serve()


if __name__ == "__main__":
    main()
