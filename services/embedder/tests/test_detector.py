import numpy as np
import pytest
from PIL import Image

from devkit import lfw
from embedder.detector import MAX_FACES, Detector


@pytest.fixture(scope="module")
def detector():
    return Detector("cpu")


def test_blank_images_have_no_faces(detector):
    out = detector.detect(np.zeros((2, 160, 160, 3), np.uint8))
    assert out["boxes"].shape == (2, MAX_FACES, 4)
    assert out["landmarks"].shape == (2, MAX_FACES, 5, 2)
    assert not out["scores"].any()


@pytest.mark.lfw
def test_a_real_face_has_a_box_and_landmarks_in_place(detector):
    image = np.asarray(Image.open(lfw.photos(lfw.identities()[0])[0]).convert("RGB"))
    out = detector.detect(np.stack([image, image]))
    assert out["scores"][0, 0] > 0.95
    np.testing.assert_allclose(out["boxes"][0], out["boxes"][1])
    x1, y1, x2, y2 = out["boxes"][0, 0]
    assert 60 < (x1 + x2) / 2 < 190 and 60 < (y1 + y2) / 2 < 190  # LFW faces are centred
    left_eye, right_eye, nose, mouth_left, mouth_right = out["landmarks"][0, 0]
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
