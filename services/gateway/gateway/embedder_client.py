"""The embedder, through tritonclient: the same calls work against our tritonserver
locally and the official Triton image in Kubernetes, where the face model
(exported to ONNX) and `mtcnn` (the embedder image) may be served apart."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton
from tritonclient.utils import InferenceServerException

from facesearch_common import triton as contract
from facesearch_common.specs import ModelSpec

from .errors import unavailable


class EmbedderClient:
    def __init__(self, url: str, spec: ModelSpec, timeout_s: float, detector_url: str | None = None):
        self._client = triton.InferenceServerClient(url)
        self._detector = (
            triton.InferenceServerClient(detector_url) if detector_url and detector_url != url else self._client
        )
        self.spec = spec
        self._timeout = timeout_s

    async def ready(self) -> bool:
        try:
            return all(
                [
                    await self._client.is_model_ready(self.spec.name),
                    await self._detector.is_model_ready(contract.DETECTOR_MODEL),
                ]
            )
        except InferenceServerException:
            return False

    async def detect(self, images: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float32]]:
        """uint8 [N, H, W, 3] -> boxes [N, K, 4], scores [N, K], landmarks [N, K, 5, 2]."""
        return await self._infer(
            contract.DETECTOR_MODEL, contract.DETECTOR_INPUT, images, contract.DETECTOR_OUTPUTS, self._detector
        )

    async def embed(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """uint8 [N, H, W, 3] aligned faces -> float32 [N, D], unit length."""
        out = await self._infer(self.spec.name, contract.FACE_INPUT, faces, (contract.FACE_OUTPUT,), self._client)
        return out[contract.FACE_OUTPUT]

    async def _infer(
        self,
        model: str,
        name: str,
        array: npt.NDArray[np.uint8],
        outputs: tuple[str, ...],
        client: triton.InferenceServerClient,
    ) -> dict[str, npt.NDArray[np.float32]]:
        tensor = triton.InferInput(name, list(array.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(array))
        try:
            response = await client.infer(
                model,
                [tensor],
                outputs=[triton.InferRequestedOutput(o) for o in outputs],
                client_timeout=self._timeout,
            )
        except InferenceServerException as exc:
            raise unavailable("embedder_unavailable", f"the embedder did not answer: {exc.message()}") from None
        return {o: response.as_numpy(o) for o in outputs}

    async def close(self) -> None:
        await self._client.close()
        if self._detector is not self._client:
            await self._detector.close()
