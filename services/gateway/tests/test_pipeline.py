import numpy as np

from facesearch_common import triton
from gateway.faces import detection_input, faces_in
from gateway.pipeline import fuse

SIDE = triton.PHOTO_SIDE


def test_small_images_go_at_the_canvas_corner_and_weak_slots_are_dropped():
    pixels = np.full((100, 80, 3), 7, np.uint8)
    item = detection_input(pixels)
    assert item.pixels.shape == (SIDE, SIDE, 3) and (item.scale, item.offset) == (1.0, (0, 0))
    assert (item.pixels[:100, :80] == 7).all() and item.pixels.sum() == pixels.sum()
    boxes = np.array([[10, 10, 70, 90], [0, 0, 1, 1], [0, 0, 0, 0]], np.float32)
    scores = np.array([0.99, triton.DETECTOR_MIN_SCORE / 2, 0], np.float32)
    landmarks = np.full((3, 5, 2), 30, np.float32)
    (face,) = faces_in(item, boxes, scores, landmarks)
    np.testing.assert_allclose(face.box, [10, 10, 70, 90])
    np.testing.assert_allclose(face.landmarks, np.full((5, 2), 30))


def test_large_images_are_scaled_down_for_detection_only():
    item = detection_input(np.zeros((1000, 2000, 3), np.uint8))
    assert item.pixels.shape == (SIDE, SIDE, 3) and item.scale == SIDE / 2000
    (face,) = faces_in(
        item, np.array([[32, 32, 64, 64]], np.float32), np.array([0.99], np.float32), np.full((1, 5, 2), 32, np.float32)
    )
    np.testing.assert_allclose(face.box, [200, 200, 400, 400])


def test_fuse_is_the_normalised_mean():
    a, b = np.array([1.0, 0, 0], np.float32), np.array([0, 1.0, 0], np.float32)
    q = fuse(np.stack([a, b]))
    np.testing.assert_allclose(q, [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-6)
    np.testing.assert_allclose(fuse(a[None]), a)
    one = fuse(np.array([[3.0, 4.0, 0]], np.float32))  # one probe is normalised too
    np.testing.assert_allclose(one, [0.6, 0.8, 0], atol=1e-6)
    assert one.dtype == np.float32 and q.dtype == np.float32


def test_a_crop_goes_on_the_canvas_where_the_crop_embedder_looks_for_it():
    from facesearch_common import triton
    from gateway import canvas

    crop = np.full((100, 80, 3), 200, np.uint8)
    other = np.full((120, 120, 3), 7, np.uint8)
    canvases, sizes = canvas.placed([crop, other])
    x, y = triton.crop_offset(100, 80)
    assert canvases.shape == (2, triton.CANVAS_SIDE, triton.CANVAS_SIDE, 3) and (x, y) == (40, 30)
    assert (canvases[0, y : y + 100, x : x + 80] == 200).all() and canvases[0].sum() == crop.sum()
    assert (canvases[1, 20:140, 20:140] == 7).all() and canvases[1].sum() == other.sum()
    assert sizes.tolist() == [[100, 80], [120, 120]] and sizes.dtype == np.int32


def test_a_face_in_a_photo_is_cut_with_its_surroundings_and_fits_the_canvas():
    from facesearch_common import triton
    from gateway import canvas

    photo = np.zeros((600, 800, 3), np.uint8)
    photo[200:300, 300:400] = 255  # the face's box
    cut = canvas.cut(photo, np.array([300, 200, 400, 300], np.float32))
    side = round(canvas.CUT_SCALE * 100)
    assert cut.shape == (min(side, triton.CANVAS_SIDE),) * 2 + (3,)  # shrunk to fit where larger
    bright = np.argwhere(cut[..., 0] > 128)
    assert abs(bright.mean(axis=0) - np.array(cut.shape[:2]) / 2).max() < 2  # centred
    assert abs(len(bright) / cut[..., 0].size - 1 / canvas.CUT_SCALE**2) < 0.02  # the box in its middle
    small = canvas.cut(np.zeros((100, 100, 3), np.uint8), np.array([40, 40, 60, 60], np.float32))
    assert small.shape == (round(canvas.CUT_SCALE * 20),) * 2 + (3,)  # smaller than the canvas: not enlarged
