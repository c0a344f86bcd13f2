"""Adversarial attacks under explicit threat models."""

from stalwart.attacks.base import ATTACKS, Attack, AttackResult, ThreatModel, norm_of, project_ball, register
from stalwart.attacks.evaluate import (
    EvaluationResult,
    MinimalPerturbation,
    SanityCheck,
    check_eps_scale,
    evaluate,
    minimal_perturbation,
)
from stalwart.attacks.gradient import FGSM, PGD

__all__ = ["ATTACKS", "Attack", "AttackResult", "ThreatModel", "norm_of", "project_ball", "register",
           "FGSM", "PGD", "get", "evaluate", "EvaluationResult", "SanityCheck", "check_eps_scale",
           "minimal_perturbation", "MinimalPerturbation"]


def get(name: str, threat: ThreatModel, **params) -> Attack:
    """An instance of the attack registered as ``name``."""
    return ATTACKS.get(name)(threat, **params)
