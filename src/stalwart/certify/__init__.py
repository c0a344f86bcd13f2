"""Certified robustness: per-sample radii within which a prediction provably cannot change.

Certifiers register like every plug-in kind (``certify.names()``, ``certify.get("smoothing",
sigma=0.25)``); randomized smoothing (:class:`RandomizedSmoothing`) needs only the model's
predictions; bound propagation (:class:`CROWN`, :class:`IBP`) needs a ReLU network's layers. Members are imported on first use.
"""

from stalwart._lazy import lazy_module

_EXPORTS = {
    **dict.fromkeys(("CERTIFIERS", "CertificationResult", "Certifier", "get", "names", "register"), ".base"),
    **dict.fromkeys(("RandomizedSmoothing", "clopper_pearson_lower", "clopper_pearson_upper", "feature_scale"),
                   ".smoothing"),
    **dict.fromkeys(("CROWN", "IBP", "network_layers", "margin_bounds"), ".bounds"),
    **dict.fromkeys(("bracket", "BracketResult"), ".robustness_bracket"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
