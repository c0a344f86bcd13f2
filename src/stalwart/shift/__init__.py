"""Distribution shift: drift tests, streaming detectors, OOD scores, label-free performance.

Every detector is registered by name with a ``kind`` ("drift", "stream" or "ood"):
``shift.names(kind="ood")``, ``shift.get("mahalanobis", model)``; the ``ood_detection`` check
and ``stalwart ood`` find plug-in detectors the same way. Members are imported on first use, so
tabular drift does not load torch (the OOD detectors do).
"""

from stalwart._lazy import lazy_module

_EXPORTS = {
    **dict.fromkeys(("DETECTORS", "DriftDetector", "DriftResult", "FeatureDrift", "OODDetector", "StreamDetector",
                     "get", "names", "register"), ".base"),
    **dict.fromkeys(("TabularDrift", "detect_drift", "detect_drift_parquet"), ".drift"),
    **dict.fromkeys(("compare_labels_partitioned", "detect_drift_partitioned"), ".partitioned"),
    **dict.fromkeys(("ClassifierDrift", "MMDDrift", "PCAReconstructionDrift"), ".multivariate"),
    **dict.fromkeys(("Energy", "IsolationForestOOD", "KNNDistance", "Mahalanobis", "MaxLogit", "MaxSoftmax",
                     "evaluate_ood", "make_ood", "ood_metrics"), ".ood"),
    **dict.fromkeys(("ConfidenceEstimator", "ImportanceWeightedEstimator", "density_ratio"), ".performance"),
    **dict.fromkeys(("ADWIN", "DDM", "KSWIN", "PageHinkley"), ".streaming"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
