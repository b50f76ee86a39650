"""The embedder's wire contract: the Triton models it serves and their tensors.

The embedder declares them (its model repository, its ONNX export) and the
gateway calls them, against our tritonserver or the official Triton image
alike; both read the names from here. The face model is served under its
spec's name (`ModelSpec.name`).
"""

from __future__ import annotations

# The face model: uint8 [N, spec.height, spec.width, 3] RGB faces, already
# aligned, in; float32 [N, spec.dim] unit-length embeddings out.
FACE_INPUT = "faces"
FACE_OUTPUT = "embeddings"

# The detector: uint8 [N, H, W, 3] RGB images in (any size; Triton batches
# equal shapes together). Out, per image, up to the detector's MAX_FACES
# faces, best first, zero-padded: boxes float32 [N, K, 4] (x1, y1, x2, y2 in
# input pixels), scores float32 [N, K] (0 where no face), landmarks float32
# [N, K, 5, 2] (image-left eye, image-right eye, nose, mouth corners, as x, y).
DETECTOR_MODEL = "mtcnn"
DETECTOR_INPUT = "images"
BOXES, SCORES, LANDMARKS = "boxes", "scores", "landmarks"
DETECTOR_OUTPUTS = (BOXES, SCORES, LANDMARKS)
