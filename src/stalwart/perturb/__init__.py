"""Natural perturbations for tabular data, images and text, registered by name.

``perturb.names(modality="image")`` lists them, ``perturb.get(name, **params)`` makes one,
``@perturb.register`` adds one (built-ins are the modules of this package; third parties also
through the ``stalwart.perturbations`` entry-point group).
"""

from stalwart._lazy import lazy_module

_EXPORTS = dict.fromkeys(("PERTURBATIONS", "SEVERITIES", "Perturbation", "get", "names", "register", "nested_rng"),
                         ".base")
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_module(__name__, _EXPORTS, globals())
