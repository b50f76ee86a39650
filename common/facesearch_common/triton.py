"""The embedder's wire contract: the Triton models it serves, their tensors
and the crop canvas.

The embedder declares them (its model repository, its ONNX export) and the
gateway calls them, against our tritonserver or the official Triton image
alike; both read them from here. The crop embedder is served under its
model spec's name (`ModelSpec.name`).
"""

from __future__ import annotations

# The crop embedder: face crops to unit embeddings in one call.
# In: crops uint8 [N, CANVAS_SIDE, CANVAS_SIDE, 3] RGB, each crop centred on a
# black canvas at `crop_offset`, unscaled (at most CROP_MAX_SIDE a side); sizes
# int32 [N, 2], each crop's height and width.
# Out: embeddings float32 [N, spec.dim], unit length; scores float32 [N, 1],
# the face's score (0..1, refused below MIN_FACE_SCORE); boxes float32 [N, 4]
# and landmarks float32 [N, 5, 2] of the chosen face, in canvas pixels.
CROPS, SIZES = "crops", "sizes"
EMBEDDINGS = "embeddings"
CANVAS_SIDE = 160
CROP_MAX_SIDE = 120
MIN_FACE_SCORE = 0.5


def crop_offset(height: int, width: int) -> tuple[int, int]:
    """(x, y) of a crop's top-left corner on the canvas (the graph computes
    the same: floor((side - size) / 2))."""
    return (CANVAS_SIDE - width) // 2, (CANVAS_SIDE - height) // 2


# The face detector, for whole photos (YuNet, embedder/photos.py).
# In: images uint8 [N, PHOTO_SIDE, PHOTO_SIDE, 3] RGB, each photo at the
# canvas's top-left corner, scaled down to fit where larger, black beyond it:
# one shape, so photos of every size batch together. Out, per image, up to
# MAX_FACES faces, largest first, zero-padded: boxes float32 [N, K, 4] (x1,
# y1, x2, y2 in canvas pixels), scores float32 [N, K] (0 for an empty slot;
# a face is kept from DETECTOR_MIN_SCORE), landmarks float32 [N, K, 5, 2]
# (image-left eye, image-right eye, nose, mouth corners, as x, y).
DETECTOR_MODEL = "face-detector"
DETECTOR_INPUT = "images"
PHOTO_SIDE = 320
MAX_FACES = 16
# YuNet scores a real face 0.85 or more (every lfw-dev photo and portrait),
# noise at most 0.21; OpenCV's default of 0.9 missed 19 of the 2,500 photos.
DETECTOR_MIN_SCORE = 0.8
BOXES, SCORES, LANDMARKS = "boxes", "scores", "landmarks"
DETECTOR_OUTPUTS = (BOXES, SCORES, LANDMARKS)
