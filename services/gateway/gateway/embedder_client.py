"""The embedder, through tritonclient: the same calls work against our
tritonserver locally and the official Triton image in Kubernetes, which
serves the crop embedder and the face detector exported to ONNX."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from facesearch_common import triton as contract
from facesearch_common.specs import ModelSpec

from . import canvas, metrics
from .crop_calls import Crops, Embedded, SharedCalls
from .errors import unavailable


class EmbedderClient:
    def __init__(self, url: str, spec: ModelSpec, timeout_s: float, max_crop_calls: int):
        self._client = triton.InferenceServerClient(url)
        self.spec = spec
        self._timeout = timeout_s
        self._crop_calls = SharedCalls(self._embed, max_crop_calls)

    async def ready(self) -> bool:
        """Whether both models are ready; also learns the crop embedder's max
        batch, which bounds a shared call (read each time: a redeployed
        embedder may change it)."""
        try:
            ready = all(
                [
                    await self._client.is_model_ready(self.spec.name),
                    await self._client.is_model_ready(contract.DETECTOR_MODEL),
                ]
            )
            if ready:
                answer = await self._client.get_model_config(self.spec.name)
                self._crop_calls.max_rows = int(answer.config.max_batch_size)
            return ready
        except InferenceServerException:
            return False

    async def detect(self, images: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float32]]:
        """uint8 [N, H, W, 3] -> boxes [N, K, 4], scores [N, K], landmarks [N, K, 5, 2]."""
        with metrics.STAGE.labels("triton").time():
            return await self._infer(
                contract.DETECTOR_MODEL, {contract.DETECTOR_INPUT: images}, contract.DETECTOR_OUTPUTS
            )

    async def embed_crops(self, crops: Crops) -> Embedded:
        """The crop embedder: crops (on canvases uint8 [N, S, S, 3], with sizes
        int32 [N, 2]) -> embeddings [N, D] and face scores [N, 1], in a call that may carry
        other requests' crops too (crop_calls.py); its stage time holds the
        wait for a free call."""
        with metrics.STAGE.labels("triton").time():
            return await self._crop_calls.embed(crops)

    async def _embed(self, crops: Crops) -> Embedded:
        # Its boxes and landmarks are not asked for: nothing here uses them.
        canvases, sizes = canvas.placed(crops.pixels)
        return await self._infer(
            self.spec.name,
            {contract.CROPS: canvases, contract.SIZES: sizes},
            (contract.EMBEDDINGS, contract.SCORES),
        )

    async def _infer(
        self,
        model: str,
        inputs: dict[str, npt.NDArray[np.uint8] | npt.NDArray[np.int32]],
        outputs: tuple[str, ...],
    ) -> dict[str, npt.NDArray[np.float32]]:
        tensors = []
        for name, array in inputs.items():
            tensor = triton.InferInput(name, list(array.shape), "UINT8" if array.dtype == np.uint8 else "INT32")
            tensor.set_data_from_numpy(np.ascontiguousarray(array))
            tensors.append(tensor)
        try:
            response = await self._client.infer(
                model,
                tensors,
                outputs=[triton.InferRequestedOutput(o) for o in outputs],
                client_timeout=self._timeout,
            )
        except InferenceServerException as exc:
            metrics.BACKEND_ERRORS.labels("triton").inc()
            raise unavailable("embedder_unavailable", f"the embedder did not answer: {exc.message()}") from None
        return {o: response.as_numpy(o) for o in outputs}

    async def close(self) -> None:
        await self._client.close()
