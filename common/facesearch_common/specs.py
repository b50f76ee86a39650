"""Face embedding models, described as data.

A spec says everything the gateway and the embedder must agree on: the input
tensor and its pixel normalisation, how a face is cut out of an image (the
model's own recipe), the embedding size, where the weights come from, and
how a cosine similarity becomes a score in [0, 1] (its calibration,
scores.py). The gateway reads it to score; the embedder reads it to build
and serve the network.

Two models are built in; any other is a model file (`FACESEARCH_MODEL` names
its path): a TOML file describing an ONNX face network, read by
`model_file`, written for a built-in one by `facesearch model export`.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

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
    # The network's input: channel order and (pixel - mean) / std per
    # channel, pixels 0-255. Both built-in models: RGB, 127.5 and 128.
    channels: str = "RGB"
    pixel_mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    pixel_std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    # A model file's ONNX network (absolute path); empty for a built-in model.
    network_file: str = ""

    @property
    def weights_source(self) -> WeightsFile:
        return WeightsFile(
            f"model {self.name!r}", self.weights_file, self.weights_sha256, self.weights_url, "FACESEARCH_WEIGHTS"
        )

    @property
    def calibrated(self) -> bool:
        """Whether its scores come from a fit on labelled faces (else from
        UNCALIBRATED's placeholder: they rank, but their values are no
        probability)."""
        return self.calibration != UNCALIBRATED


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
    # and 75.9 at 32, PyTorch 26.3 and 51.2 (2.4x, 1.5x; 2026-11-25, the
    # message of commit 730ba83).
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
    # probes strangers: min_score 0.9 accepts no stranger, finds 67.0% of
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
    """A built-in model by name, or a model file by its path (`*.toml`)."""
    if name.endswith(".toml"):
        return model_file(Path(name))
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(SPECS))}, or the path of a model file (.toml)"
        ) from None


class ModelFileError(ValueError):
    """A model file that cannot be served; the message names the key and why."""


def sha256_of(path: Path) -> str:
    """A file's sha256, read in chunks (weights and networks are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _numbers(table: dict[str, Any], key: str, count: int, where: str) -> tuple[float, ...]:
    value = table.get(key)
    if not isinstance(value, list) or len(value) != count or not all(isinstance(v, int | float) for v in value):
        raise ModelFileError(f"{where}: {key} must be a list of {count} numbers, got {value!r}")
    numbers = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in numbers):
        raise ModelFileError(f"{where}: {key} must be finite, got {value!r}")
    return numbers


def model_file(path: Path) -> ModelSpec:
    """The spec a model file describes (its format: docs/models.md):

    name = "arcface-r100"
    [network]
    file = "network.onnx"          # beside this file, or an absolute path
    sha256 = "..."                 # of that file; checked
    input_size = [112, 112]        # height, width
    embedding_size = 512
    channels = "BGR"               # or "RGB"
    mean = [127.5, 127.5, 127.5]   # the input is (pixel - mean) / std
    std = [127.5, 127.5, 127.5]
    [alignment]
    kind = "landmarks"             # five points onto `template`, in the input's pixels
    template = [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]]
    # or: kind = "box_margin", margin = 14 (the face box plus a margin, squared)
    [calibration]                  # optional: `facesearch calibrate` fits one
    genuine_mean = 0.64
    genuine_sd = 0.13
    impostor_mean = -0.02
    impostor_sd = 0.14
    """
    where = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ModelFileError(f"{where}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"{where}: not valid TOML ({exc})") from None
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or name in SPECS:
        raise ModelFileError(f"{where}: name must be a model name of its own (not a built-in one), got {name!r}")
    network, alignment = data.get("network"), data.get("alignment")
    if not isinstance(network, dict) or not isinstance(alignment, dict):
        raise ModelFileError(f"{where}: needs a [network] and an [alignment] table")
    file = network.get("file")
    if not isinstance(file, str) or not file:
        raise ModelFileError(f"{where}: network.file must name the ONNX network")
    onnx = (path.parent / file).resolve()
    if not onnx.is_file():
        raise ModelFileError(f"{where}: network.file {file!r} is not a file ({onnx})")
    sha256 = network.get("sha256")
    if not isinstance(sha256, str) or sha256_of(onnx) != sha256.lower():
        raise ModelFileError(f"{where}: network.sha256 does not match {onnx} (its sha256 is {sha256_of(onnx)})")
    height, width = (int(v) for v in _numbers(network, "input_size", 2, where + " [network]"))
    dim = network.get("embedding_size")
    if not isinstance(dim, int) or dim < 1:
        raise ModelFileError(f"{where}: network.embedding_size must be a positive integer, got {dim!r}")
    channels = network.get("channels", "RGB")
    if channels not in ("RGB", "BGR"):
        raise ModelFileError(f"{where}: network.channels must be RGB or BGR, got {channels!r}")
    mean = _numbers(network, "mean", 3, where + " [network]")
    std = _numbers(network, "std", 3, where + " [network]")
    if min(std) <= 0:
        raise ModelFileError(f"{where}: network.std must be positive, got {list(std)}")
    kind = alignment.get("kind")
    if kind == Alignment.LANDMARKS:
        template = alignment.get("template")
        points = [_numbers({"point": p}, "point", 2, where + " [alignment] template") for p in template or []]
        if len(points) != 5:
            raise ModelFileError(f"{where}: alignment.template must be five [x, y] points, got {template!r}")
        aligned: dict[str, Any] = {"alignment": Alignment.LANDMARKS, "template": tuple(points)}
    elif kind == Alignment.BOX_MARGIN:
        margin = alignment.get("margin", 0)
        if not isinstance(margin, int) or margin < 0:
            raise ModelFileError(f"{where}: alignment.margin must be a whole number of pixels, got {margin!r}")
        aligned = {"alignment": Alignment.BOX_MARGIN, "margin": margin}
    else:
        raise ModelFileError(f"{where}: alignment.kind must be landmarks or box_margin, got {kind!r}")
    fitted = data.get("calibration")
    calibration = UNCALIBRATED
    if fitted is not None:
        keys = ("genuine_mean", "genuine_sd", "impostor_mean", "impostor_sd")
        raw = [fitted.get(k) if isinstance(fitted, dict) else None for k in keys]
        values = [float(v) for v in raw if isinstance(v, int | float) and math.isfinite(v)]
        if len(values) != len(keys) or min(values[1], values[3]) <= 0:
            raise ModelFileError(f"{where}: [calibration] needs finite {', '.join(keys)} (positive sds)")
        calibration = Calibration(*values)
    return ModelSpec(
        name=name,
        height=height,
        width=width,
        dim=dim,
        weights_file=onnx.name,
        weights_sha256=sha256.lower(),
        calibration=calibration,
        channels=channels,
        pixel_mean=mean,  # type: ignore[arg-type]
        pixel_std=std,  # type: ignore[arg-type]
        network_file=str(onnx),
        **aligned,
    )


def model_file_text(spec: ModelSpec, network: str, sha256: str) -> str:
    """A model file for `spec`, its network in the file `network` (with that sha256)."""

    def numbers(values: tuple[float, ...]) -> str:
        return "[" + ", ".join(repr(float(v)) for v in values) + "]"

    lines = [
        f"# {spec.name}'s face network as a file: `FACESEARCH_MODEL=<this file>` serves it.",
        f'name = "{spec.name}"',
        "",
        "[network]",
        f'file = "{network}"',
        f'sha256 = "{sha256}"',
        f"input_size = [{spec.height}, {spec.width}]",
        f"embedding_size = {spec.dim}",
        f'channels = "{spec.channels}"',
        f"mean = {numbers(spec.pixel_mean)}",
        f"std = {numbers(spec.pixel_std)}",
        "",
        "[alignment]",
        f'kind = "{spec.alignment}"',
    ]
    if spec.alignment is Alignment.LANDMARKS:
        lines.append("template = [" + ", ".join(numbers(p) for p in spec.template) + "]")
    else:
        lines.append(f"margin = {spec.margin}")
    if spec.calibrated:
        c = spec.calibration
        lines += [
            "",
            "[calibration]",
            f"genuine_mean = {c.genuine_mean!r}",
            f"genuine_sd = {c.genuine_sd!r}",
            f"impostor_mean = {c.impostor_mean!r}",
            f"impostor_sd = {c.impostor_sd!r}",
        ]
    return "\n".join(lines) + "\n"
