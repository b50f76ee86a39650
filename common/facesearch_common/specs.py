"""Face embedding models, described as data.

A spec says everything the gateway and the embedder must agree on: the input
tensor, how a face is cut out of an image (the model's own recipe), the
embedding size, where the weights come from, and how a cosine similarity
becomes a score in [0, 1] (its calibration, scores.py). The gateway reads it to align faces; the embedder
reads it to build and serve the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .scores import UNCALIBRATED, Calibration


class Alignment(StrEnum):
    # Similarity transform of the 5 MTCNN landmarks onto `template`.
    LANDMARKS = "landmarks"
    # MTCNN box plus a margin, squared and resized: how FaceNet was trained.
    BOX_MARGIN = "box_margin"


@dataclass(frozen=True)
class WeightsFile:
    """A weights file the embedder needs: where it comes from, how it is checked."""

    name: str  # what the file is for, in messages
    file: str
    sha256: str
    url: str
    variable: str  # the environment variable that names a local copy


@dataclass(frozen=True)
class ModelSpec:
    name: str
    height: int
    width: int
    dim: int
    alignment: Alignment
    # Landmark template in pixels of the (width x height) input:
    # left eye, right eye, nose, left mouth corner, right mouth corner.
    template: tuple[tuple[float, float], ...] = ()
    # BOX_MARGIN: margin in pixels of the output image, as facenet-pytorch's MTCNN.
    margin: int = 0
    weights_file: str = ""
    weights_sha256: str = ""
    weights_url: str = ""
    # The faster engine for this network on CPU on the served path, measured
    # by bench/embedder.py (`onnxruntime` or `torch`); on CUDA it is torch.
    cpu_engine: str = "onnxruntime"
    # The genuine and impostor cosine distributions, fitted per model on
    # labelled pairs (bench/calibrate.py): how a cosine becomes a score.
    calibration: Calibration = UNCALIBRATED

    @property
    def weights_source(self) -> WeightsFile:
        return WeightsFile(
            f"model {self.name!r}", self.weights_file, self.weights_sha256, self.weights_url, "FACESEARCH_WEIGHTS"
        )


FACENET_VGGFACE2 = ModelSpec(
    name="facenet-vggface2",
    height=160,
    width=160,
    dim=512,
    alignment=Alignment.BOX_MARGIN,
    margin=14,
    weights_file="20180402-114759-vggface2.pt",
    # facenet-pytorch's v2.2.9 release asset. The digest is the one published
    # alongside facenet-pytorch's MTCNN digests (which match the installed
    # package byte for byte); the file itself cannot be fetched on our CI.
    weights_url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
    weights_sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b",
    # InceptionResnetV1 on 2 CPU cores: ONNX Runtime 63.4 faces/s at batch 1
    # and 75.9 at 32, PyTorch 26.3 and 51.2 (2.4x, 1.5x).
    cpu_engine="onnxruntime",
    # Uncalibrated until fitted on labelled pairs with the real weights.
    calibration=UNCALIBRATED,
)

MOBILEFACENET_CASIA = ModelSpec(
    name="mobilefacenet-casia",
    height=112,
    width=96,
    dim=128,
    alignment=Alignment.LANDMARKS,
    template=(
        (30.2946, 51.6963),
        (65.5318, 51.5014),
        (48.0252, 71.7366),
        (33.5493, 92.3655),
        (62.7299, 92.2041),
    ),
    weights_file="mobilefacenet-casia-068.ckpt",
    weights_sha256="e839247cdbdfc023fb7cadeaf53a4549d50c8fc24ad154c02e35920ea8910d99",
    # MobileFaceNet's crop embedder on 2 CPU cores (bench/embedder.py,
    # 2026-12-01): served at 32 requests in flight, ONNX Runtime 167.8 crops/s
    # and PyTorch 134.8; in process at their best batches, 168.7 and 150.3.
    # (The face network alone, before the crop embedder, ran faster on
    # PyTorch: 214.7-226.1 served against 166.4-171.8.)
    cpu_engine="onnxruntime",
    # Fitted by `python -m bench.calibrate` on lfw-dev through the crop
    # embedder (4,500 genuine and 838,125 impostor pairs of the even
    # identities, 2026-12-01). On the odd ones, 1:1: min_score 0.5 FMR 0.83%
    # FNMR 2.0%; 0.9: 0.25% / 3.4%. 1:N with 1,300 faces searched, half the
    # probes strangers: min_score 0.9 accepts no stranger, finds 67.7% of
    # the enrolled, precision 0.995 (bench/RESULTS.md#scores-in-1n).
    calibration=Calibration(0.6449, 0.1296, -0.0191, 0.1427),
)

# The crop embedder's face finder (embedder/yunet.py): YuNet as OpenCV Zoo
# distributes it (models/face_detection_yunet, MIT licence). The Zoo keeps the
# file in Git LFS; the URL is its raw download.
YUNET = WeightsFile(
    name="the face detector YuNet",
    file="face_detection_yunet_2023mar.onnx",
    sha256="ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
    variable="FACESEARCH_YUNET_WEIGHTS",
)

SPECS: dict[str, ModelSpec] = {s.name: s for s in (FACENET_VGGFACE2, MOBILEFACENET_CASIA)}
DEFAULT_MODEL = FACENET_VGGFACE2.name


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(SPECS))}") from None
