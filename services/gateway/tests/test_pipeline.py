import numpy as np

from gateway.faces import DETECT_MAX_SIDE, MIN_FACE_SCORE, detection_input, faces_in
from gateway.pipeline import fuse


def test_small_images_go_on_the_canvas_and_faces_come_back_in_image_pixels():
    item = detection_input(np.zeros((100, 80, 3), np.uint8))
    assert item.pixels.shape == (160, 160, 3) and item.offset == (40, 30)
    boxes = np.array([[50, 40, 110, 120], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.99, MIN_FACE_SCORE / 2], np.float32)
    landmarks = np.full((2, 5, 2), 60, np.float32)
    (face,) = faces_in(item, boxes, scores, landmarks)
    np.testing.assert_allclose(face.box, [10, 10, 70, 90])
    np.testing.assert_allclose(face.landmarks, np.full((5, 2), 60) - [40, 30])


def test_large_images_are_scaled_down_for_detection_only():
    item = detection_input(np.zeros((1000, 2000, 3), np.uint8))
    assert max(item.pixels.shape[:2]) == DETECT_MAX_SIDE and item.scale == DETECT_MAX_SIDE / 2000
    (face,) = faces_in(
        item, np.array([[32, 32, 64, 64]], np.float32), np.array([0.99], np.float32), np.full((1, 5, 2), 32, np.float32)
    )
    np.testing.assert_allclose(face.box, [100, 100, 200, 200])


def test_fuse_is_the_normalised_mean():
    a, b = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    q = fuse(np.stack([a, b]))
    np.testing.assert_allclose(q, [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-6)
    np.testing.assert_allclose(fuse(a[None]), a)
