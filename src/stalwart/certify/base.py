"""What every certifier shares: the registry of the kind and the result of a certification.

A certifier proves, per sample, a radius within which no perturbation changes the prediction (a
lower bound on robustness, where an attack gives an upper bound). Certifiers register like every
other plug-in kind (``certify.names()``, ``certify.get("smoothing", sigma=0.25)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from stalwart._registry import Registry
from stalwart._validation import check_array, param_error

__all__ = ["Certifier", "CertificationResult", "CERTIFIERS", "register", "get", "names"]


class Certifier(ABC):
    """Base of every certifier: a class attribute ``name``, the ``norm`` its radii are in, and
    ``certify(model, x, y) -> CertificationResult``. Configured objects keep no per-run state."""

    name: ClassVar[str] = ""
    #: the norm of the certified radii ("l2", "linf")
    norm: ClassVar[str] = ""
    #: "any" when the certifier needs only predictions, "torch" when it needs the network itself
    requires: ClassVar[str] = "any"

    @abstractmethod
    def certify(self, model: Any, x: Any, y: Any = None) -> CertificationResult:
        """Per-sample certificates of ``model`` on ``x`` (labels ``y`` optional)."""

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class CertificationResult:
    """Per-sample certificates.

    ``prediction`` holds the certified class (the model's label) of each sample; where
    ``abstained`` is True the certifier could not decide a class and ``radius`` is 0.
    ``radius`` is in the certifier's ``norm`` (and units: see the certifier). With labels ``y``,
    ``correct`` marks the samples whose certified class is the label.
    """

    certifier: str
    norm: str
    prediction: np.ndarray
    abstained: np.ndarray
    radius: np.ndarray
    y: np.ndarray | None = None
    details: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. p_lower, counts
    params: dict[str, Any] = field(default_factory=dict)
    queries: int = 0  # model evaluations spent
    time_s: float = 0.0
    largest_batch: int = 0  # most rows given to the model at once (memory does not grow with the work)

    @property
    def correct(self) -> np.ndarray:
        if self.y is None:
            from stalwart.errors import InputError

            raise InputError("no labels: pass y to certify() to know which certificates are correct")
        return ~self.abstained & (self.prediction == self.y)

    def certified_accuracy(self, radius: float = 0.0) -> float:
        """Share of samples whose certified class is correct with a radius of at least ``radius``."""
        r = float(radius)
        if not np.isfinite(r) or r < 0:
            raise param_error("certified_accuracy", "radius", "a finite number >= 0", radius)
        return float(np.mean(self.correct & (self.radius >= r)))

    def curve(self, radii: Any = None) -> dict[str, list[float]]:
        """Certified accuracy against the radius (default: 20 points up to the largest radius)."""
        if radii is None:
            top = float(self.radius.max()) if self.radius.size else 0.0
            radii = np.linspace(0.0, top, 20) if top > 0 else np.array([0.0])
        radii = check_array(radii, "radii", ndim=1)
        return {"radius": radii.tolist(), "certified_accuracy": [self.certified_accuracy(r) for r in radii]}

    @property
    def abstain_rate(self) -> float:
        return float(np.mean(self.abstained))

    def to_dict(self) -> dict[str, Any]:
        out = {"certifier": self.certifier, "norm": self.norm, "params": self.params, "queries": self.queries,
               "time_s": self.time_s, "abstain_rate": self.abstain_rate,
               "radius": self.radius.tolist(), "abstained": self.abstained.tolist(),
               "prediction": self.prediction.tolist()}
        if self.y is not None:
            out["certified_accuracy"] = self.certified_accuracy(0.0)
        return out


#: certifiers: the public modules of :mod:`stalwart.certify` and the ``stalwart.certifiers`` entry points
CERTIFIERS: Registry[Any] = Registry("certifier", "stalwart.certifiers", package="stalwart.certify")
register = CERTIFIERS.register


def names(**attrs: Any) -> list[str]:
    """Registered certifier names, filtered by class attributes (``names(norm="l2")``)."""
    return CERTIFIERS.names(**attrs)


def get(name: str, *args: Any, **params: Any) -> Any:
    """An instance of the certifier registered as ``name``; unknown parameters raise ConfigError."""
    return CERTIFIERS.create(name, *args, **params)
