"""Budgets as a fraction of each feature's range: the attack runs where every range is [0, 1].

A tabular model sees features on wildly different scales (an area in the thousands beside a
ratio below one), so one eps in raw units means nothing. With ``ThreatModel(unit="range")`` an
eps of 0.03 lets every feature move by 3% of its own valid range. Attacks then run on
``z = (x - lower) / width`` with bounds [0, 1], against the model seen through the inverse map
(:class:`RangeScaledModel`, differentiable when the model is), and their results are mapped
back to raw inputs. Distances stay in range units, the units of eps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stalwart.errors import ConfigError
from stalwart.models.base import Model
from stalwart.models.views import RangeScaledModel

__all__ = ["RangeSpace", "range_space"]


@dataclass(frozen=True, eq=False)
class RangeSpace:
    """An attack problem with every feature's range mapped to [0, 1].

    ``z`` are the inputs there, ``threat`` the same budget in raw units of that space (bounds
    [0, 1]; features with no range to move in are immutable), ``lower``/``width`` the map back.
    """

    z: np.ndarray
    threat: Any
    lower: np.ndarray
    width: np.ndarray
    identity: bool

    def wrap(self, model: Model) -> Model:
        """The model as the attack sees it (itself when the ranges are already [0, 1])."""
        return model if self.identity else RangeScaledModel(model, self.lower, self.width)

    def to_raw(self, z_adv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Adversarial inputs back in raw units; features the attack did not move keep their exact value."""
        if self.identity:
            return np.asarray(z_adv, dtype=x.dtype)
        raw = (self.lower + np.asarray(z_adv, dtype=np.float64) * self.width).astype(x.dtype)
        return np.where(np.asarray(z_adv) == self.z, x, raw)


def range_space(threat: Any, x: np.ndarray) -> RangeSpace:
    """The [0, 1]-per-feature space of ``threat`` (``unit="range"``) around inputs ``x``.

    Raises
    ------
    ConfigError
        When a feature that may move has no finite bound (its range is unknown), or when no
        feature has a range to move in (every one is constant): then a budget as a fraction of
        the range means nothing.
    """
    from stalwart.attacks.base import ThreatModel

    shape = x.shape[1:]
    if threat.bounds is None:
        raise ConfigError("ThreatModel(unit='range') measures eps as a fraction of each feature's range, so it "
                          "needs bounds=(lower, upper); give them, or use unit='raw' for eps in the data's units.")
    lower, upper = (np.broadcast_to(np.asarray(b, dtype=np.float64), shape) for b in threat.bounds)
    mutable = np.ones(shape, dtype=bool) if threat.mutable is None else np.broadcast_to(
        np.asarray(threat.mutable, dtype=bool), shape)
    unbounded = mutable & ~(np.isfinite(lower) & np.isfinite(upper))
    if unbounded.any():
        where = np.flatnonzero(unbounded.ravel())[:5].tolist()
        raise ConfigError(f"ThreatModel(unit='range') needs a finite range for every feature that may move; "
                          f"features {where} have none. Give bounds for them, mark them immutable, or use "
                          "unit='raw'.")
    width = np.where(np.isfinite(upper - lower), upper - lower, 0.0)
    movable = mutable & (width > 0)
    if not movable.any():
        raise ConfigError("every feature that may move has a range of 0 (a constant), so an eps as a fraction of "
                          "the range lets nothing change and robust accuracy would mean nothing; use data with "
                          "varying values (more rows), or unit='raw'.")
    # features that never move keep their raw values (identity map, no clipping): their range may
    # be unknown (a categorical column) and they must reach the model exactly as they are
    lower = np.where(movable, lower, 0.0)
    scale = np.where(movable, width, 1.0)
    identity = bool(np.all(lower == 0.0) and np.all(scale == 1.0))
    z64 = (x.astype(np.float64) - lower) / scale
    z = x if identity else np.where(movable, np.clip(z64, 0.0, 1.0), z64).astype(np.float32)
    if movable.all():
        bounds: tuple[Any, Any] = (0.0, 1.0)
    else:
        bounds = (np.where(movable, 0.0, -np.inf).astype(np.float32), np.where(movable, 1.0, np.inf).astype(np.float32))
    inner = ThreatModel(threat.norm, threat.eps, bounds, None if movable.all() else movable, unit="raw")
    return RangeSpace(z=z, threat=inner, lower=lower, width=scale, identity=identity)
