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
from stalwart.shift.drift import TabularDrift, detect_drift, detect_drift_parquet
from stalwart.shift.multivariate import ClassifierDrift, MMDDrift, PCAReconstructionDrift
from stalwart.shift.ood import (
    Energy,
    IsolationForestOOD,
    KNNDistance,
    Mahalanobis,
    MaxLogit,
    MaxSoftmax,
    evaluate_ood,
    make_ood,
    ood_metrics,
)
from stalwart.shift.performance import ConfidenceEstimator, ImportanceWeightedEstimator
from stalwart.shift.streaming import ADWIN, DDM, KSWIN, PageHinkley

__all__ = [
    "DETECTORS", "DriftDetector", "DriftResult", "FeatureDrift", "OODDetector", "StreamDetector", "register",
    "detect_drift", "detect_drift_parquet", "TabularDrift", "MMDDrift", "ClassifierDrift", "PCAReconstructionDrift",
    "ADWIN", "DDM", "KSWIN", "PageHinkley",
    "MaxSoftmax", "MaxLogit", "Energy", "Mahalanobis", "KNNDistance", "IsolationForestOOD", "evaluate_ood",
    "make_ood", "ood_metrics", "ConfidenceEstimator", "ImportanceWeightedEstimator",
]
