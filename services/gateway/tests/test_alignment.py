import numpy as np
import pytest

from facesearch_common.specs import FACENET_VGGFACE2, MOBILEFACENET_CASIA
from gateway.alignment import CANVAS_SIDE, Face, align, crop_with_margin, on_canvas, similarity_transform, warp


def apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_rotation_scale_translation():
    src = np.array([[30, 50], [65, 52], [48, 72], [33, 92], [62, 91]], float)
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    src = np.asarray(MOBILEFACENET_CASIA.template)
    mirrored = src * [-1, 1]  # a face seen in a mirror: the best proper fit, not a flip
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) >= 0


def test_warp_moves_pixels_where_the_matrix_says():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:44, 60:64] = 255  # a bright square centred at (62, 42)
    matrix = np.array([[1.0, 0, -50], [0, 1.0, -30]])  # shift left 50, up 30
    out = warp(image, matrix, 40, 40)
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert abs(xs.mean() - 12) < 1 and abs(ys.mean() - 12) < 1


def test_align_to_template_gives_model_input_with_landmarks_on_template():
    spec = MOBILEFACENET_CASIA
    template = np.asarray(spec.template)
    # Landmarks of a face twice the template's size, shifted, in a 250x250 image.
    landmarks = template * 2 + [40, 20]
    image = np.zeros((250, 250, 3), np.uint8)
    for x, y in landmarks.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    face = Face(np.array([40, 20, 232, 244], np.float32), 0.99, landmarks.astype(np.float32))
    out = align(image, face, spec)
    assert out.shape == (spec.height, spec.width, 3) and out.dtype == np.uint8
    for x, y in template:
        assert out[round(y), round(x), 0] > 30


def test_crop_with_margin_follows_facenet_pytorch():
    image = np.arange(200 * 200 * 3, dtype=np.uint32).reshape(200, 200, 3).astype(np.uint8)
    out = crop_with_margin(image, np.array([50, 60, 130, 150], np.float32), margin=14, size=160)
    assert out.shape == (160, 160, 3)
    # A box at the border is clipped, not padded.
    out = crop_with_margin(image, np.array([-10, -10, 40, 40], np.float32), margin=14, size=160)
    assert out.shape == (160, 160, 3)
    face = Face(np.array([50, 60, 130, 150], np.float32), 0.99, np.zeros((5, 2), np.float32))
    assert align(image, face, FACENET_VGGFACE2).shape == (160, 160, 3)


@pytest.mark.parametrize("height,width", [(120, 120), (60, 90), (1, 1)])
def test_on_canvas_centres_the_crop(height, width):
    crop = np.full((height, width, 3), 7, np.uint8)
    canvas, (x, y) = on_canvas(crop)
    assert canvas.shape == (CANVAS_SIDE, CANVAS_SIDE, 3)
    assert (canvas[y : y + height, x : x + width] == 7).all()
    assert canvas.sum() == crop.sum()
