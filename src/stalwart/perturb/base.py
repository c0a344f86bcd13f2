"""Perturbation: a natural change of inputs with five graded severities.

``apply(x, severity, rng)`` is pure (never mutates ``x``), batched and deterministic given its
generator. Tabular perturbations respect the schema: immutable columns stay untouched, values
stay within the column's range, integers stay integers and categories stay valid.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from stalwart._registry import Registry
from stalwart._validation import check_image_layout, check_seed, param_error
from stalwart.data.schema import MODALITIES, Schema, as_frame
from stalwart.errors import ConfigError, InputError

SEVERITIES = (1, 2, 3, 4, 5)


class Perturbation(ABC):
    """Base class. Subclasses set ``name``, ``modality``, ``description`` and write ``_apply``.

    Parameters are keyword-only, stored by the constructor and listed by :meth:`params`.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    description: ClassVar[str] = ""
    #: whether ``_apply`` draws random numbers; if not, it gets ``rng=None`` instead of a fresh
    #: generator (seeding one costs ~10 us, as much as corrupting a small image)
    _draws: ClassVar[bool] = True

    def params(self) -> dict[str, Any]:
        """Constructor parameters, for reports and YAML round trips."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def apply(self, x: Any, severity: int, rng: int | np.random.Generator | None = None,
              schema: Schema | None = None) -> Any:
        """Return a perturbed copy of ``x`` at ``severity`` (1 = mild ... 5 = severe).

        Parameters
        ----------
        x : DataFrame or (n, d) array (tabular), float array N x C x H x W (image), list of str (text)
        severity : int in 1..5
        rng : seed or numpy Generator; the same seed gives the same output
        schema : the data's schema (tabular: column kinds, ranges, immutables; image: value range).
            Inferred from ``x`` when omitted.
        """
        owner = f"{type(self).__name__}.apply"
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
            raise ConfigError(f"{owner}(severity=...) must be an integer 1..5; got {severity!r}")
        if isinstance(rng, np.random.Generator):
            gen: np.random.Generator | None = rng
        else:
            seed = check_seed(owner, rng, "rng", generator=True)
            gen = np.random.default_rng(seed) if self._draws else None
        if schema is not None and not isinstance(schema, Schema):
            raise param_error(owner, "schema", "a stalwart Schema (e.g. dataset.schema) or None to infer it",
                              schema)
        x, schema, restore = self._prepare(x, schema)
        return restore(self._apply(x, int(severity), gen, schema))

    @abstractmethod
    def _apply(self, x: Any, severity: int, rng: np.random.Generator, schema: Schema) -> Any:
        """Perturb a validated copy of ``x``; return the same type."""

    # -- input handling per modality ----------------------------------------------------------
    def _prepare(self, x: Any, schema: Schema | None):
        if self.modality == "tabular":
            was_array = not isinstance(x, pd.DataFrame)
            df = as_frame(x).copy()
            if len(df) == 0:
                raise InputError("x is empty; pass at least one row to perturb.")
            if schema is None:
                schema = Schema.infer(df)
            elif schema.modality != "tabular":
                raise InputError(f"{self.name} is a tabular perturbation but the schema is for {schema.modality} "
                                 "data; pass the table's own schema, or none to infer it.")
            missing = [n for n in schema.names if n not in df.columns]
            if missing:
                raise InputError(f"columns {missing} of the schema are not in x; x has {list(df.columns)}. Pass x "
                                 "with every column of the schema, or the schema of x.")

            def restore(out: pd.DataFrame):
                return out.to_numpy() if was_array else out
            return df, schema, restore
        if self.modality == "image":
            try:
                arr = np.array(x, dtype=np.float32, copy=True)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{self.name} needs numeric images (a float array N x C x H x W); x could not be "
                                 f"converted ({exc}). Pass the pixel values as a numpy array.") from None
            if arr.ndim != 4:
                raise InputError(
                    f"{self.name} needs images as N x C x H x W; got shape {arr.shape}. "
                    "Add a channel axis with x[:, None] for grey images."
                )
            if arr.shape[0] == 0:
                raise InputError("x is empty; pass at least one image.")
            if schema is None or schema.shape is None or tuple(schema.shape) != tuple(arr.shape[1:]):
                check_image_layout(arr.shape)
            if not np.isfinite(arr).all():
                raise InputError("images contain NaN or infinite values; clean them first.")
            if schema is None:
                hi = 1.0 if arr.max() <= 1.0 else 255.0
                schema = Schema("image", value_range=(0.0, hi), shape=tuple(arr.shape[1:]))
            return arr, schema, lambda out: np.clip(out, *schema.value_range).astype(np.float32)
        if self.modality == "text":
            if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
                raise InputError(
                    f"{self.name} needs a list of strings (one per sample); got {type(x).__name__}"
                    f"{' ' + repr(x[:40]) if isinstance(x, (str, bytes)) else ''}. Pass a list of strings, "
                    "e.g. [text]; a single string would be perturbed character by character.")
            texts = list(x)
            if not texts:
                raise InputError("x is empty; pass at least one sentence.")
            bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
            if bad:
                raise InputError(f"text perturbations need strings; entries {bad[:5]} are not "
                                 f"(e.g. {type(texts[bad[0]]).__name__}). Pass a list of strings.")
            return texts, schema or Schema("text"), lambda out: out
        raise ConfigError(f"unknown modality {self.modality!r}")  # pragma: no cover

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def nested_rng(seed: int, name: str) -> np.random.Generator:
    """The generator a check hands perturbation ``name`` at *every* severity.

    Each call returns a fresh generator on the same stream, so every severity makes the same
    draws and only the strength changes: the rows hit at severity 2 are hit at severity 3 too, by
    the same factor, and a curve over severities shows the effect of severity alone
    (docs/corruptions.md).
    """
    check_seed("nested_rng", seed)
    if not isinstance(name, str):
        raise param_error("nested_rng", "name", "a perturbation name (a str)", name)
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


#: built-ins are the modules of :mod:`stalwart.perturb`; third parties use the entry-point group
PERTURBATIONS: Registry[Perturbation] = Registry("perturbation", "stalwart.perturbations", package="stalwart.perturb")
register = PERTURBATIONS.register


def get(name: str, **params: Any) -> Perturbation:
    """An instance of the perturbation registered as ``name``; parameters it does not take raise
    :class:`~stalwart.errors.ConfigError` naming the ones it does."""
    return PERTURBATIONS.create(name, **params)


def names(modality: str | None = None, **attrs: Any) -> list[str]:
    """Registered perturbation names, optionally for one modality (and other class attributes)."""
    if modality is not None and modality not in MODALITIES:
        raise ConfigError(f"perturb.names(modality=...) must be one of {list(MODALITIES)} or None (all); "
                          f"got {modality!r}")
    if modality is not None:
        attrs["modality"] = modality
    return PERTURBATIONS.names(**attrs)
