"""The operator's calls (an admin token only): photos' faces embedded as
the service embeds them, with no score filter, and the served model's
calibration, read and stored. What `facesearch calibrate` fits with."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesearch.v1 import facesearch_pb2 as pb
from facesearch_common import database

from . import validation
from .answers import signature
from .errors import invalid
from .images import MAX_CROP_SIDE, ImageReader
from .pipeline import FacePipeline
from .records import new_id
from .scoring import Scoring

MAX_PHOTOS = 16
# A probe as a camera cuts it: the face box's longer side times this, about
# its centre, then at most MAX_CROP_SIDE pixels (the lfw-dev crops the
# benches search with are 1.4 times LFW's face).
PROBE_CUT = 1.4


def probe_crop(image: npt.NDArray[np.uint8], box: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    x1, y1, x2, y2 = (float(v) for v in box)
    half = PROBE_CUT * max(x2 - x1, y2 - y1) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    region = Image.fromarray(image).crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    region.thumbnail((MAX_CROP_SIDE, MAX_CROP_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(region)


class Admin:
    def __init__(self, pipeline: FacePipeline, reader: ImageReader, scoring: Scoring):
        self.pipeline = pipeline
        self.reader = reader
        self.scoring = scoring

    async def embed_faces(self, request: pb.EmbedFacesRequest) -> pb.EmbedFacesResponse:
        validation.image_count(request.images, 1, MAX_PHOTOS)
        images = await self.reader.pixels(request.images, "images")
        detected = await self.pipeline.detect(images)
        found = [i for i, faces in enumerate(detected) if faces]
        cuts = self.pipeline.cuts([images[i] for i in found], [detected[i][0].box for i in found])
        probes = [probe_crop(images[i], detected[i][0].box) for i in found]
        embedded = await self.pipeline.embed_cuts(cuts + probes) if found else []
        data = [pb.EmbeddedPhoto() for _ in images]
        for k, i in enumerate(found):
            enrolled, probe = embedded[k], embedded[len(found) + k]
            if enrolled.found and probe.found:
                data[i] = pb.EmbeddedPhoto(found=True, enrolled=enrolled.vector.tolist(), probe=probe.vector.tolist())
        return pb.EmbedFacesResponse(id=new_id(), data=data, signature=signature(), model=self.pipeline.spec.name)

    def _state(self) -> pb.CalibrationResponse:
        c = self.scoring.calibration
        return pb.CalibrationResponse(
            id=new_id(),
            data=pb.CalibrationState(
                model=self.pipeline.spec.name,
                calibrated=self.scoring.calibrated,
                calibration=pb.Calibration(
                    genuine_mean=c.genuine_mean,
                    genuine_sd=c.genuine_sd,
                    impostor_mean=c.impostor_mean,
                    impostor_sd=c.impostor_sd,
                ),
                source=self.scoring.source,
            ),
            signature=signature(),
        )

    async def retrieve_calibration(self) -> pb.CalibrationResponse:
        return self._state()

    async def store_calibration(self, request: pb.StoreCalibrationRequest) -> pb.CalibrationResponse:
        spec = self.pipeline.spec
        if request.model != spec.name:
            raise invalid("wrong_model", f"this service serves {spec.name!r}, not {request.model[:100]!r}")
        c = request.calibration
        values = {k: getattr(c, k) for k in database.CALIBRATION_KEYS}
        if not all(np.isfinite(v) for v in values.values()) or min(c.genuine_sd, c.impostor_sd) <= 0:
            raise invalid("invalid_calibration", "calibration needs finite means and positive sds")
        if c.genuine_mean <= c.impostor_mean:
            raise invalid("invalid_calibration", "the genuine mean must be above the impostor mean")
        await self.scoring.catalog.store_calibration(database.Model(spec.name, spec.weights_sha256, spec.dim), values)
        await self.scoring.refresh()
        return self._state()
