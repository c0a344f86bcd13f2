"""Distribution shift: drift tests, streaming detectors, OOD scores, label-free performance."""

from stalwart.shift.base import (
                                 DETECTORS,
                                 DriftDetector,
                                 DriftResult,
                                 FeatureDrift,
                                 OODDetector,
                                 StreamDetector,
                                 register,
)

__all__ = ["DETECTORS", "DriftDetector", "DriftResult", "FeatureDrift", "OODDetector", "StreamDetector",
           "register"]
