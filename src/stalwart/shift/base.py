"""Detector interfaces shared by drift tests, streaming detectors and OOD scores.

- batch drift: ``fit(reference)`` then ``test(current) -> DriftResult``
- streaming: ``update(value) -> bool`` (True when a change is detected), ``update_many(values)``
  (the indices where it fired in a batch), ``detected_at``
- OOD: ``fit(x_in)`` then ``score(x)`` (higher = more unusual), ``predict(x)`` with a threshold
  set by ``infer_threshold``; judged by :func:`stalwart.shift.ood.evaluate_ood`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from stalwart._registry import Registry
from stalwart.errors import InputError


@dataclass(frozen=True)
class FeatureDrift:
    """One column's drift test: which test, its statistic, p-value (or None for distances).

    A column whose values changed type (numbers in the reference, text in the current data; bool
    vs int) has ``test="type_change"``, ``drifted=True``, ``kind`` the reference's kind,
    ``current_kind`` the current data's, and ``statistic`` the share of current values of the
    new type. ``current_kind`` is None when the type did not change.
    """

    feature: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    kind: str = "numeric"
    current_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "test": self.test, "statistic": self.statistic,
                "p_value": self.p_value, "threshold": self.threshold, "drifted": self.drifted,
                "kind": self.kind, "current_kind": self.current_kind}


@dataclass(frozen=True)
class DriftResult:
    """Outcome of a drift test on a data set (or one multivariate statistic).

    ``drifted`` is the data-set-level decision; ``features`` the per-column table (empty for
    multivariate tests); ``p_value`` is None for tests judged by a distance threshold.
    """

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    features: tuple[FeatureDrift, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "statistic": self.statistic, "p_value": self.p_value,
                "threshold": self.threshold, "drifted": self.drifted,
                "drifted_features": self.drifted_features,
                "features": [f.to_dict() for f in self.features], "details": self.details}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.features])


class DriftDetector(ABC):
    """Batch drift detector: ``fit(reference)`` stores what it needs, ``test(current)`` judges."""

    name: ClassVar[str]
    kind: ClassVar[str] = "drift"

    @abstractmethod
    def fit(self, reference: Any) -> DriftDetector: ...

    @abstractmethod
    def test(self, current: Any) -> DriftResult: ...


class StreamDetector(ABC):
    """Streaming change detector over a value stream (a metric, an error indicator, a feature)."""

    name: ClassVar[str]
    kind: ClassVar[str] = "stream"

    def __init__(self) -> None:
        self.n_seen = 0
        self.detected_at: list[int] = []  # 0-based indices of the values at which it fired

    def update(self, value: float) -> bool:
        """Feed one value; return True if a change is detected at this value."""
        fired = self._update(self._number(value))
        if fired:
            self.detected_at.append(self.n_seen)
        self.n_seen += 1
        return fired

    def update_many(self, values: Any) -> list[int]:
        """Feed a batch of values in order; return the stream indices at which it fired.

        Gives exactly the detections one :meth:`update` per value gives (a detector may process
        the batch faster, as :class:`~stalwart.shift.streaming.ADWIN` does); ``detected_at`` and
        ``n_seen`` advance as they would.
        """
        return self._feed(self._stream(values, "update_many"))

    def run(self, values: Any) -> list[int]:
        """Feed a whole stream; return every index where the detector fired (``detected_at``)."""
        self._feed(self._stream(values, "run"))
        return list(self.detected_at)

    def _feed(self, arr: np.ndarray) -> list[int]:
        """Feed a validated 1-D float array; the indices where it fired. Override to batch."""
        before = len(self.detected_at)
        for v in arr:
            self.update(v)
        return self.detected_at[before:]

    def _stream(self, values: Any, method: str) -> np.ndarray:
        """``values`` as a 1-D float array, or an :class:`InputError` saying what a stream is."""
        what = f"{type(self).__name__}.{method}(values=...) must be a one-dimensional stream of numbers"
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):  # text, or rows of different lengths
            raise InputError(f"{what}; it holds values that are not numbers (or rows of different lengths). "
                             "Convert them to numbers or drop them first.") from None
        if arr.ndim != 1:
            raise InputError(f"{what}; got shape {arr.shape}. Pass one stream at a time (e.g. values[:, j] for "
                             "column j), or a list for a single value.")
        return arr

    def _number(self, value: Any) -> float:
        """``value`` as a float, or an :class:`InputError` naming what the stream takes."""
        if not isinstance(value, (str, bytes)) and not (isinstance(value, np.ndarray) and value.ndim != 0):
            try:
                return float(value)
            except (TypeError, ValueError):
                pass
        raise InputError(f"{type(self).__name__}.update(value=...) must be a number; got {value!r}. Feed one number "
                         "per call, or a whole stream to run(values).")

    @abstractmethod
    def _update(self, value: float) -> bool: ...

    # -- state that outlives the process (the monitoring service keeps it in its database) --
    def get_state(self) -> dict[str, Any]:
        """The detector as JSON-safe data: its settings and where it stands in the stream.

        ``json.dumps(state, allow_nan=False)`` works on it and :meth:`from_state` restores a
        detector that goes on exactly as this one would (same alarms, bit for bit): floats keep
        every digit through JSON, infinities and arrays are tagged, a random generator keeps its
        bit generator's state. A plug-in whose attributes are other objects overrides both.
        """
        return {"detector": self.name, "state": {k: _encode_state(v, f"{type(self).__name__}.{k}")
                                                 for k, v in vars(self).items()}}

    @classmethod
    def from_state(cls, state: Any) -> StreamDetector:
        """A detector restored from :meth:`get_state`'s output (``StreamDetector.from_state``
        finds the class by its registered name)."""
        if not isinstance(state, dict) or not isinstance(state.get("detector"), str) \
                or not isinstance(state.get("state"), dict):
            raise InputError("a detector state is a dict {'detector': <name>, 'state': {...}} as get_state() "
                             f"returns it; got {type(state).__name__}")
        found = DETECTORS.get(state["detector"])
        if cls is not StreamDetector and found is not cls:
            raise InputError(f"{cls.__name__}.from_state got the state of {found.__name__}; call "
                             f"{found.__name__}.from_state or StreamDetector.from_state")
        if not (isinstance(found, type) and issubclass(found, StreamDetector)):
            raise InputError(f"{state['detector']!r} is not a streaming detector; its state cannot be restored")
        fresh = found()
        expected, got = set(vars(fresh)), set(state["state"])
        if expected != got:
            raise InputError(f"the saved {found.__name__} state does not fit this version of stalwart (missing "
                             f"{sorted(expected - got)}, unknown {sorted(got - expected)}); start the detector "
                             "afresh")
        for key, value in state["state"].items():
            setattr(fresh, key, _decode_state(value))
        return fresh


def _encode_state(value: Any, where: str) -> Any:
    """``value`` as JSON-safe data (see :meth:`StreamDetector.get_state`)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if np.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_encode_state(v, where) for v in value]
    if isinstance(value, np.ndarray):
        return {"__array__": _encode_state(value.tolist(), where), "dtype": value.dtype.str}
    if isinstance(value, np.random.Generator):
        return {"__generator__": value.bit_generator.state}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode_state(v, where) for k, v in value.items()}}
    raise TypeError(f"{where} holds a {type(value).__name__}, which get_state() cannot write as JSON; override "
                    "get_state() and from_state() in the detector")


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _decode_state(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_state(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__array__" in value:
        return np.array(_decode_state(value["__array__"]), dtype=np.dtype(value["dtype"]))
    if "__generator__" in value:
        name = value["__generator__"].get("bit_generator")
        if name not in _BIT_GENERATORS:
            raise InputError(f"a detector state names the bit generator {name!r}; known: {list(_BIT_GENERATORS)}")
        bits = getattr(np.random, name)()
        bits.state = value["__generator__"]
        return np.random.Generator(bits)
    if "__dict__" in value:
        return {k: _decode_state(v) for k, v in value["__dict__"].items()}
    raise InputError(f"a detector state holds an unknown tagged value {sorted(value)}; it was not written by "
                     "get_state()")


class OODDetector(ABC):
    """Out-of-distribution score: higher means more unusual.

    What the ``ood_detection`` check needs to use a detector, built-in or plug-in, is declared
    here and nowhere else: :meth:`requirement` (why it cannot run on a model, or None),
    :meth:`suggested` (whether it is among the defaults for a model and data), :meth:`build`
    (an instance for a model) and ``uses_layer`` (whether a ``layer=`` chooses its features).
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "ood"
    #: whether the check's ``layer`` (a torch submodule) selects this detector's feature space
    uses_layer: ClassVar[bool] = False
    threshold_: float | None = None

    @classmethod
    def requirement(cls, model: Any) -> str | None:
        """Why the detector cannot run on ``model`` (None when it can, or needs no model)."""
        return None

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        """Whether the check runs this detector by default on ``model`` and ``data``."""
        return False

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> OODDetector:
        """An instance for ``model`` (default: the detector's own defaults, no model)."""
        return cls()

    @abstractmethod
    def fit(self, x: Any, y: Any = None) -> OODDetector: ...

    @abstractmethod
    def score(self, x: Any) -> np.ndarray: ...

    def infer_threshold(self, x_in: Any, fpr: float = 0.05) -> float:
        """Set the threshold so that a share ``fpr`` of in-distribution data is flagged."""
        self.threshold_ = float(np.quantile(self.score(x_in), 1.0 - fpr))
        return self.threshold_

    def predict(self, x: Any) -> np.ndarray:
        """True where a sample is flagged as out-of-distribution."""
        from stalwart.errors import ConfigError

        if self.threshold_ is None:
            raise ConfigError(f"{type(self).__name__}.predict needs a threshold; call infer_threshold(x_in) first")
        return self.score(x) > self.threshold_


#: drift, stream and OOD detectors (class attribute ``kind``); built-ins are the modules of
#: :mod:`stalwart.shift`, third parties use the entry-point group
DETECTORS: Registry[Any] = Registry("detector", "stalwart.detectors", package="stalwart.shift")
register = DETECTORS.register


def names(**attrs: Any) -> list[str]:
    """Registered detector names, filtered by class attributes (``names(kind="ood")``)."""
    return DETECTORS.names(**attrs)


def get(name: str, *args: Any, **params: Any) -> Any:
    """An instance of the detector registered as ``name``; unknown parameters raise ConfigError."""
    return DETECTORS.create(name, *args, **params)
