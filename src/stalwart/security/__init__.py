"""Security probes beyond evasion: what a model gives away about its training data.

:func:`membership_inference` (:mod:`stalwart.security.membership`) asks whether an attacker can
tell the model's training rows from other rows of the same distribution, by the loss or
confidence on each row, by a Shokri et al. shadow-model attack, or by the likelihood-ratio
attack (LiRA) of Carlini et al. (2022), and judges the leak by the true-positive rate at a low
false-positive rate. :func:`model_extraction` (:mod:`stalwart.security.extraction`) copies the model
from its answers and measures the copy's fidelity per query budget, and whether adversarial
examples crafted on the copy transfer. :func:`poisoning_sensitivity`
(:mod:`stalwart.security.poisoning`) retrains with flipped labels or a planted backdoor trigger
and measures clean accuracy and attack success per poison rate. :func:`detect_backdoor`
(:mod:`stalwart.security.backdoor`) screens a torch model's training rows for a planted trigger
(spectral signatures, activation clustering, STRIP).
"""

from stalwart._lazy import lazy_module

_EXPORTS = dict.fromkeys(("membership_inference", "MembershipResult", "OperatingPoint", "MEMBERSHIP_ATTACKS"),
                         ".membership")
_EXPORTS.update(dict.fromkeys(("model_extraction", "ExtractionResult", "QUERY_KINDS"), ".extraction"))
_EXPORTS.update(dict.fromkeys(("poisoning_sensitivity", "PoisoningResult", "POISON_KINDS", "plant_trigger"),
                              ".poisoning"))
_EXPORTS.update(dict.fromkeys(("detect_backdoor", "detection_auroc", "BackdoorResult", "ClassReport",
                               "BACKDOOR_METHODS", "STRIP_BLENDS"), ".backdoor"))
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
