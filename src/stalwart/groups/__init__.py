"""Performance and robustness per group of people: group metrics with intervals, the disparity
metrics of fairlearn and AIF360 (:mod:`stalwart.groups.metrics`), the stability of training
across folds and seeds (:mod:`stalwart.groups.refits`), mitigation (:mod:`stalwart.groups.mitigate`)
and weak-slice discovery (:mod:`stalwart.groups.slices`)."""

from stalwart._lazy import lazy_module

_EXPORTS = dict.fromkeys((
    "METRICS", "MISSING", "GroupMetrics", "group_metrics", "demographic_parity_difference",
    "demographic_parity_ratio", "equalized_odds_difference", "equalized_odds_ratio", "equal_opportunity_difference",
    "statistical_parity_difference", "disparate_impact", "average_odds_difference", "predictive_parity_difference",
    "group_labels",
), ".metrics")
_EXPORTS.update(dict.fromkeys(("stability", "StabilityResult"), ".refits"))
_EXPORTS.update(dict.fromkeys(("ReweighedClassifier", "GroupThresholdClassifier", "reweighing_weights"), ".mitigate"))
_EXPORTS.update(dict.fromkeys(("find_slices", "Slice", "SliceSearch", "Predicate", "text_features"), ".slices"))
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
