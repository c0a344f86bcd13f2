"""Adversarial attacks under explicit threat models.

White-box (need gradients): FGSM, PGD, APGD (CE, DLR, targeted DLR), Carlini-Wagner L2, DeepFool.
Black-box (any model): Square, HopSkipJump, a schema-aware tabular search, and a word-substitution
attack for text. ``evaluate`` runs the AutoAttack-style ensemble.
"""

import inspect

from stalwart.attacks.apgd import APGD
from stalwart.attacks.base import ATTACKS, Attack, AttackResult, ThreatModel, norm_of, project_ball, register
from stalwart.attacks.cw import CW
from stalwart.attacks.deepfool import DeepFool
from stalwart.attacks.evaluate import (
    EvaluationResult,
    MinimalPerturbation,
    SanityCheck,
    check_eps_scale,
    evaluate,
    minimal_perturbation,
)
from stalwart.attacks.gradient import FGSM, PGD
from stalwart.attacks.hopskipjump import HopSkipJump
from stalwart.attacks.square import Square
from stalwart.attacks.synonyms import LexiconSynonyms, SynonymSource, WordNetSynonyms, default_synonyms
from stalwart.attacks.tabular import TabularSearch
from stalwart.attacks.text import TEXT_ATTACKS, TextAttackResult, WordSubstitution
from stalwart.errors import ConfigError

__all__ = [
    "ATTACKS", "Attack", "AttackResult", "ThreatModel", "norm_of", "project_ball", "register", "get",
    "FGSM", "PGD", "APGD", "CW", "DeepFool", "Square", "HopSkipJump", "TabularSearch",
    "evaluate", "EvaluationResult", "SanityCheck", "check_eps_scale", "minimal_perturbation", "MinimalPerturbation",
    "WordSubstitution", "TextAttackResult", "TEXT_ATTACKS", "SynonymSource", "LexiconSynonyms", "WordNetSynonyms",
    "default_synonyms",
]


def get(name: str, threat: ThreatModel, **params) -> Attack:
    """An instance of the attack registered as ``name``; parameters it does not take raise ConfigError."""
    if not isinstance(name, str):
        raise ConfigError(f"attacks.get(name=...) must be an attack name (a str); got {name!r}. "
                          f"Known: {', '.join(ATTACKS.names())}")
    cls = ATTACKS.get(name)
    sig = inspect.signature(cls)
    try:
        sig.bind(threat, **params)
    except TypeError as exc:
        accepted = [p.name for p in sig.parameters.values()
                    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "threat"]
        takes = f"pass only these: {accepted}" if accepted else "it takes none besides threat"
        raise ConfigError(f"attack {name!r} does not take the parameters given ({exc}); {takes}.") from None
    return cls(threat, **params)
