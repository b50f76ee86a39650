"""YuNet for whole photos (embedder/photos.py): on real lfw-dev photos it
finds what YuNet with OpenCV's greedy NMS finds, a blank photo has no face,
a photo's answer does not depend on its batch, its landmarks come in the
contract's order, and its ONNX export computes the same."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from torchvision.ops import nms

from devkit import lfw
from embedder import export, photos, yunet
from facesearch_common import triton

pytestmark = pytest.mark.lfw


@pytest.fixture(scope="module")
def detector() -> photos.PhotoDetector:
    return photos.PhotoDetector(yunet.load_onnx(lfw.YUNET)).eval()


def canvas(path) -> np.ndarray:
    image = np.asarray(Image.open(path).convert("RGB"))
    out = np.zeros((photos.SIDE, photos.SIDE, 3), np.uint8)
    out[: image.shape[0], : image.shape[1]] = image
    return out


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    paths = [lfw.photos(n)[0] for n in lfw.identities()[:48]] + lfw.distractors()[:16]
    return np.stack([canvas(p) for p in paths])


def greedy(detector: photos.PhotoDetector, image: np.ndarray) -> np.ndarray:
    """The reference: every cell at SCORE or more, greedy NMS, largest first."""
    with torch.inference_mode():
        bgr = torch.from_numpy(image).permute(2, 0, 1)[None, [2, 1, 0]].float()
        scores, boxes, _ = yunet.decode(detector.detector(bgr), detector.cells)
        keep = scores[0] >= photos.SCORE
        found = boxes[0][keep][nms(boxes[0][keep], scores[0][keep], photos.NMS_IOU)].numpy()
    return np.array(sorted(found, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))).reshape(-1, 4)


def run(detector, images: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.inference_mode():
        return tuple(t.numpy() for t in detector(torch.from_numpy(images)))


@pytest.mark.slow
def test_it_finds_the_faces_greedy_nms_finds(detector, images):
    boxes, scores, landmarks = run(detector, images)
    same_count = same_largest = 0
    for i, image in enumerate(images):
        reference = greedy(detector, image)
        found = boxes[i][scores[i] > 0]
        same_count += len(found) == len(reference)
        if len(found) and len(reference):
            same_largest += np.abs(found[0] - reference[0]).max() < 0.5
        inside = (landmarks[i][0] >= found[0][:2] - 10).all() and (landmarks[i][0] <= found[0][2:] + 10).all()
        assert not len(found) or inside, i
    assert same_count >= 0.95 * len(images) and same_largest >= 0.95 * len(images), (same_count, same_largest)
    assert (scores[:, 0] > 0).mean() > 0.95  # news photos: nearly all have a face


def test_a_blank_photo_has_no_face_and_batches_do_not_matter(detector, images):
    blank = np.zeros_like(images[:1])
    assert run(detector, blank)[1].max() == 0
    alone = run(detector, images[3:4])
    together = run(detector, images[:8])
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a[0], b[3], atol=1e-3)


def test_a_face_has_its_landmarks_in_place(detector, images):
    boxes, scores, landmarks = run(detector, images[:1])
    assert scores[0, 0] >= photos.SCORE
    x1, y1, x2, y2 = boxes[0, 0]
    assert 60 < (x1 + x2) / 2 < 190 and 60 < (y1 + y2) / 2 < 190  # LFW faces are centred
    left_eye, right_eye, nose, mouth_left, mouth_right = landmarks[0, 0]
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_the_onnx_export_computes_the_same(detector, images, tmp_path):
    path = tmp_path / "photos.onnx"
    export.export_photos_onnx(lfw.YUNET, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(triton.DETECTOR_OUTPUTS), {triton.DETECTOR_INPUT: images[:16]})
    for want, have in zip(run(detector, images[:16]), got, strict=True):
        np.testing.assert_allclose(have, want, atol=1e-3, rtol=1e-4)
