"""The robustness bracket: certified <= true robust accuracy <= attacked robust accuracy, per eps.

A certifier proves a lower bound (samples no perturbation in the ball can change); an attack
ensemble finds an upper bound (samples it could not break may still be breakable). The true
robust accuracy lies between them; the gap is what neither side can decide. Per sample and eps
each is ``certified``, ``broken`` or ``undecided``; a sample both certified and broken would mean
that one of the two is wrong, so it stops the run instead of being reported.

The certifier is bound propagation (:class:`~stalwart.certify.CROWN`), which certifies the model
itself. Randomized smoothing certifies a different classifier (the smoothed one) and so is not
used here; models whose layers cannot be bounded get certified accuracy 0 with a note saying so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._validation import check_array, param_error
from stalwart.errors import ConfigError, ModelError

__all__ = ["bracket", "BracketResult"]

CERTIFIED, BROKEN, UNDECIDED = "certified", "broken", "undecided"


@dataclass(frozen=True)
class BracketResult:
    """Per eps: certified and attacked robust accuracy, their gap, and each sample's status."""

    eps: tuple[float, ...]
    certified_accuracy: tuple[float, ...]
    robust_accuracy: tuple[float, ...]  # attacked: an upper bound
    status: np.ndarray  # (len(eps), n) of "certified" / "broken" / "undecided"
    certifier: str | None
    norm: str
    eps_unit: str
    notes: tuple[str, ...] = ()
    time_s: float = 0.0
    attack_time_s: float = 0.0
    certify_time_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> tuple[float, ...]:
        return tuple(r - c for r, c in zip(self.robust_accuracy, self.certified_accuracy))

    def table(self) -> list[dict[str, Any]]:
        return [{"eps": e, "certified_accuracy": c, "robust_accuracy": r, "gap": r - c,
                 "undecided": float(np.mean(s == UNDECIDED))}
                for e, c, r, s in zip(self.eps, self.certified_accuracy, self.robust_accuracy, self.status)]

    def to_dict(self) -> dict[str, Any]:
        return {"certifier": self.certifier, "norm": self.norm, "eps_unit": self.eps_unit, "rows": self.table(),
                "notes": list(self.notes), "time_s": self.time_s, "attack_time_s": self.attack_time_s,
                "certify_time_s": self.certify_time_s}


def bracket(model: Any, x: Any, y: Any, threat: Any, eps: Any = None, *, level: str = "standard",
            seed: int = 0) -> BracketResult:
    """Certified and attacked robust accuracy of ``model`` at each eps of ``threat``'s kind.

    Parameters
    ----------
    model : a torch ReLU network or a scikit-learn model with an exact mirror is certified by
        CROWN; any other model gets only the attacked side (and a note)
    x, y : samples and labels
    threat : :class:`~stalwart.attacks.ThreatModel` (norm "linf" or "l2"); its bounds, mutable
        mask and eps unit hold for both sides
    eps : eps values (default: the threat's eps)
    level : strength of :func:`~stalwart.attacks.evaluate` ("fast", "standard", "thorough")
    """
    from stalwart.attacks import ThreatModel, evaluate
    from stalwart.certify.bounds import CROWN

    if not isinstance(threat, ThreatModel):
        raise param_error("bracket", "threat", "a stalwart.attacks.ThreatModel", threat)
    if threat.norm not in ("linf", "l2"):
        raise ConfigError(f"bracket() compares certificates with attacks in linf or l2 balls; the threat's norm is "
                          f"{threat.norm!r}. Use ThreatModel(norm='linf' or 'l2').")
    eps_values = [float(threat.eps)] if eps is None else check_array(eps, "eps", ndim=1).tolist()
    if any(e < 0 for e in eps_values):
        raise param_error("bracket", "eps", "eps values >= 0", eps)
    start = time.perf_counter()
    certifier = CROWN.from_threat(threat, max_eps=max(max(eps_values), 1e-6))
    notes: list[str] = []
    setup = None
    try:
        setup = certifier.prepare(model, x, y)
    except ModelError as exc:
        notes.append(f"no certificate: {exc}")

    certified_acc, robust_acc, statuses = [], [], []
    t_attack = t_cert = 0.0
    for e in eps_values:
        t0 = time.perf_counter()
        ev = evaluate(model, x, y, ThreatModel(threat.norm, e, threat.bounds, threat.mutable, threat.unit),
                      level=level, eps_curve=[], seed=seed, sanity=False)
        t_attack += time.perf_counter() - t0
        t0 = time.perf_counter()
        cert = np.zeros(ev.n, dtype=bool) if setup is None else certifier.verify(setup, np.full(ev.n, e))
        t_cert += time.perf_counter() - t0
        broken = ~ev.robust
        both = np.flatnonzero(cert & broken)
        if both.size:
            raise RuntimeError(
                f"sample(s) {both[:10].tolist()} are certified robust at eps {e} by {certifier.name} and broken by "
                f"{sorted(set(ev.broken_by[both].tolist()))}: one of the two is wrong, so nothing is reported. "
                "Please report this as a stalwart bug with the model and data.")
        status = np.full(ev.n, UNDECIDED, dtype=object)
        status[cert] = CERTIFIED
        status[broken] = BROKEN
        statuses.append(status)
        certified_acc.append(float(cert.mean()))
        robust_acc.append(float(ev.robust_accuracy))
    return BracketResult(
        eps=tuple(eps_values), certified_accuracy=tuple(certified_acc), robust_accuracy=tuple(robust_acc),
        status=np.array(statuses), certifier=None if setup is None else certifier.name, norm=threat.norm,
        eps_unit=threat.eps_unit_text, notes=tuple(notes), time_s=time.perf_counter() - start,
        attack_time_s=t_attack, certify_time_s=t_cert)
