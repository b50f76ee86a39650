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


# The detector, for whole photos: uint8 [N, H, W, 3] RGB images in (any size; Triton batches
# equal shapes together). Out, per image, up to the detector's MAX_FACES
# faces, best first, zero-padded: boxes float32 [N, K, 4] (x1, y1, x2, y2 in
# input pixels), scores float32 [N, K] (0 where no face), landmarks float32
# [N, K, 5, 2] (image-left eye, image-right eye, nose, mouth corners, as x, y).
DETECTOR_MODEL = "mtcnn"
DETECTOR_INPUT = "images"
BOXES, SCORES, LANDMARKS = "boxes", "scores", "landmarks"
DETECTOR_OUTPUTS = (BOXES, SCORES, LANDMARKS)
