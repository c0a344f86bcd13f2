"""Checks: scored, conditioned measurements of a model on a dataset.

A check measures (metrics with confidence intervals, tables, curves); its conditions judge the
metrics as PASS / WARN / FAIL. Write a new check as a :class:`Check` subclass in its own module
and decorate it with :func:`register`; :func:`get` and :func:`names` find it, and suites, YAML and
the command line use it by name. Members are imported on first use (tabular drift never loads
torch).
"""

from stalwart._lazy import lazy_module

_EXPORTS = {
    **dict.fromkeys(("CHECKS", "Check", "CheckResult", "Condition", "Measurement", "Metric", "SkipCheck", "Status",
                     "MIN_SAMPLES", "build", "get", "names", "register", "worst_status"), ".base"),
    "AdversarialRobustness": ".adversarial",
    "CertifiedRobustness": ".certified",
    "GroupPerformance": ".groups",
    "HardeningTradeoff": ".tradeoff",
    "GroupRobustness": ".groups",
    "Stability": ".groups",
    "Mitigation": ".groups",
    "MembershipInference": ".security",
    "Extraction": ".security",
    "Poisoning": ".security",
    "BehaviouralTests": ".behaviour",
    "CleanPerformance": ".performance",
    "CorruptionRobustness": ".corruption",
    "DataDrift": ".drift",
    "MultivariateDrift": ".drift",
    "NaturalRobustness": ".natural",
    "OODDetection": ".ood",
    "TextAdversarialRobustness": ".text_adversarial",
    "WeakSlices": ".slices",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
