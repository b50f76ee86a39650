"""The calibration the gateway scores with: one `facesearch calibrate`
stored in PostgreSQL when there is one, else the served model's own (its
spec's or its model file's), else the placeholder every unfitted model
gets. Re-read every few seconds (server.py's health loop), so a stored fit
reaches every gateway without a restart."""

from __future__ import annotations

import logging

from facesearch_common import database
from facesearch_common.scores import UNCALIBRATED, Calibration
from facesearch_common.specs import ModelSpec

from . import metrics
from .catalog import Catalog

log = logging.getLogger(__name__)


class Scoring:
    def __init__(self, spec: ModelSpec, catalog: Catalog):
        self.spec = spec
        self.catalog = catalog
        self.calibration = spec.calibration
        self.source = "model" if spec.calibrated else "placeholder"
        self._published()

    @property
    def calibrated(self) -> bool:
        return self.calibration != UNCALIBRATED

    async def refresh(self) -> None:
        """Takes the stored calibration, or the model's own where none is stored."""
        stored = await self.catalog.stored_calibration()
        if stored is not None:
            calibration, source = Calibration(*(stored[k] for k in database.CALIBRATION_KEYS)), "stored"
        else:
            calibration, source = self.spec.calibration, "model" if self.spec.calibrated else "placeholder"
        if (calibration, source) != (self.calibration, self.source):
            self.calibration, self.source = calibration, source
            log.info("calibration", extra={"model": self.spec.name, "source": source, "calibration": calibration})
            self._published()

    def _published(self) -> None:
        metrics.SCORE_CALIBRATED.labels(self.spec.name).set(1 if self.calibrated else 0)
        if not self.calibrated:
            log.warning(
                "scores not calibrated",
                extra={
                    "model": self.spec.name,
                    "meaning": "scores rank answers but are no probabilities; min_score is a placeholder's cosine",
                    "hint": "fit one with `facesearch calibrate` (docs/models.md)",
                },
            )
