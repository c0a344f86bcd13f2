"""Adversarial attacks under explicit threat models.

White-box (need gradients): FGSM, PGD, APGD (CE, DLR, targeted DLR), Carlini-Wagner L2, DeepFool.
Black-box (any model): Square, HopSkipJump, a schema-aware tabular search, and a word-substitution
attack for text. ``evaluate`` runs the AutoAttack-style ensemble.

Every attack is registered by name: ``attacks.names(white_box=False)``,
``attacks.names(modalities="text")``, ``attacks.get("pgd", threat, steps=50)``;
``@attacks.register`` adds one (built-ins are the modules of this package; third parties also
through the ``stalwart.attacks`` entry-point group).
"""

from __future__ import annotations

from typing import Any

from stalwart.attacks.apgd import APGD
from stalwart.attacks.base import (
    ATTACKS,
    EPS_UNITS,
    Attack,
    AttackResult,
    ThreatModel,
    norm_of,
    project_ball,
    register,
)
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
from stalwart.attacks.sharded import run_sharded
from stalwart.attacks.square import Square
from stalwart.attacks.synonyms import LexiconSynonyms, SynonymSource, WordNetSynonyms, default_synonyms
from stalwart.attacks.tabular import TabularSearch
from stalwart.attacks.text import TextAttackResult, WordSubstitution

__all__ = [
    "ATTACKS", "EPS_UNITS", "Attack", "AttackResult", "ThreatModel", "norm_of", "project_ball", "register", "get",
    "names", "FGSM", "PGD", "APGD", "CW", "DeepFool", "Square", "HopSkipJump", "TabularSearch",
    "evaluate", "EvaluationResult", "SanityCheck", "check_eps_scale", "minimal_perturbation", "MinimalPerturbation",
    "WordSubstitution", "TextAttackResult", "SynonymSource", "LexiconSynonyms", "WordNetSynonyms",
    "default_synonyms", "run_sharded",
]


def get(name: str, *args: Any, **params: Any) -> Any:
    """An instance of the attack registered as ``name`` (``get("pgd", threat, steps=50)``;
    text attacks take no threat: ``get("word_substitution", max_change=0.2)``); parameters it
    does not take raise :class:`~stalwart.errors.ConfigError` naming the ones it does."""
    return ATTACKS.create(name, *args, **params)


def names(**attrs: Any) -> list[str]:
    """Registered attack names, filtered by class attributes (``white_box=False``,
    ``modalities="text"``)."""
    return ATTACKS.names(**attrs)
