"""Checks: scored, conditioned measurements of a model on a dataset.

A check measures (metrics with confidence intervals, tables, curves); its conditions judge the
metrics as PASS / WARN / FAIL. Register a new check with :func:`register` in its own module.
"""

from stalwart.checks.adversarial import AdversarialRobustness
from stalwart.checks.base import (
    CHECKS,
    Check,
    CheckResult,
    Condition,
    Measurement,
    Metric,
    SkipCheck,
    Status,
    build,
    get,
    names,
    register,
    worst_status,
)
from stalwart.checks.behaviour import BehaviouralTests
from stalwart.checks.corruption import CorruptionRobustness
from stalwart.checks.drift import DataDrift, MultivariateDrift
from stalwart.checks.natural import NaturalRobustness
from stalwart.checks.ood import OODDetection
from stalwart.checks.performance import CleanPerformance
from stalwart.checks.text_adversarial import TextAdversarialRobustness

__all__ = ["CHECKS", "Check", "CheckResult", "Condition", "Measurement", "Metric", "SkipCheck", "Status",
           "build", "get", "names", "register", "worst_status", "AdversarialRobustness", "NaturalRobustness",
           "CorruptionRobustness", "BehaviouralTests", "CleanPerformance", "DataDrift", "MultivariateDrift", "OODDetection",
           "TextAdversarialRobustness"]
