"""The Triton Python-backend model for every served network. It runs inside
Triton's stub process, which provides `triton_python_backend_utils`."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import triton_python_backend_utils as pb_utils

from facesearch_common import logs

from . import served


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        gpu = args.get("model_instance_kind") == "GPU"
        device = f"cuda:{args['model_instance_device_id']}" if gpu else "cpu"
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.run = served.build(parameters, device)
        log = logs.setup("embedder", os.environ.get("FACESEARCH_LOG_LEVEL", "INFO"))
        log.info(
            "model ready",
            extra={
                "model": config["name"],
                "instance": args["model_instance_name"],
                "device": device,
                "engine": parameters.get("engine", "torch"),
            },
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        tensors = [
            {name: pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.inputs} for r in requests
        ]
        try:
            answers = served.run_batch(self.run, tensors)
        except Exception as exc:
            logging.getLogger(__name__).exception("batch failed")
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor(name, value) for name, value in answer.items()])
            for answer in answers
        ]
