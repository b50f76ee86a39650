"""Real faces from ../shared/data/lfw-dev, as clients would send them."""

from __future__ import annotations

import base64
import io
import os
from functools import cache
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FACESEARCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
IDENTITIES = SHARED_DATA / "lfw-dev" / "identities"
DISTRACTORS = SHARED_DATA / "lfw-dev" / "distractors"
MOBILEFACENET = SHARED_DATA / "models" / "mobilefacenet-casia-068.ckpt"
# OpenCV Zoo's YuNet (2023mar), under the name the shared folder gives it.
YUNET = SHARED_DATA / "models" / "face_detection_yunet_2026may.onnx"


def evaluation_model() -> dict[str, str]:
    """The stack's variables for MobileFaceNet with the evaluation weights."""
    return {
        "FACESEARCH_MODEL": "mobilefacenet-casia",
        "FACESEARCH_WEIGHTS": str(MOBILEFACENET),
        "FACESEARCH_YUNET_WEIGHTS": str(YUNET),
    }


def available() -> bool:
    return IDENTITIES.is_dir() and MOBILEFACENET.is_file() and YUNET.is_file()


@cache
def identities() -> list[str]:
    return sorted(p.name for p in IDENTITIES.iterdir())


def photos(name: str) -> list[Path]:
    return sorted((IDENTITIES / name).iterdir())


def distractors() -> list[Path]:
    return sorted(DISTRACTORS.iterdir())


def portrait(path: Path) -> Image.Image:
    """An enrollment photo: LFW's 250x250 news photo cut to the subject's portrait."""
    return Image.open(path).convert("RGB").crop((40, 40, 210, 210))


def crop(path: Path, side: int = 120) -> Image.Image:
    """A face crop as a client's own detector would send it: face plus a
    little margin, at most `side` pixels."""
    image = Image.open(path).convert("RGB").crop((55, 55, 195, 195))
    image.thumbnail((side, side))
    return image


def centre(path: Path) -> Image.Image:
    """The face alone: LFW's centre 100x100."""
    return Image.open(path).convert("RGB").crop((75, 75, 175, 175))


def b64(image: Image.Image, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=92)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def folder(root: Path, persons: range) -> Path:
    """`root`/faces in the `facesearch enroll` layout: a folder of photos per
    lfw-dev identity of `persons` (linked, not copied)."""
    faces = root / "faces"
    faces.mkdir()
    for i in persons:
        (faces / identities()[i]).symlink_to(IDENTITIES / identities()[i])
    return faces
