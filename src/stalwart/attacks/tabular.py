"""Schema-aware black-box search for tabular models: adversarial rows that stay valid data.

A tabular model's input domain is not a box of reals: integer columns take whole numbers,
categorical columns a fixed set of codes, boolean columns 0 or 1, and some columns (age, ID,
the outcome of a past event) may not change at all. :class:`TabularSearch` only ever proposes
and returns rows inside that domain, described by a :class:`~stalwart.data.Schema`.

Threat model (what ``eps`` means here):

- numeric and integer columns move by at most ``eps`` times the column's range
  (``upper - lower`` in the schema): an linf ball on range-normalised features, so ``eps=0.05``
  allows 5% of every column's range. ``AttackResult.distance`` is that normalised linf distance;
- categorical and boolean columns are unordered, so a distance on their codes means nothing;
  instead at most ``max_discrete_changes`` of them may take another valid value (default 0:
  they stay fixed);
- immutable columns (the schema's, and the threat model's ``mutable`` mask) never change.

Categorical columns must reach the model as numeric codes (for example ``0 .. k-1``, or any
numbers): the schema's categories are those codes, and every returned value is one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from stalwart._validation import check_array, check_param, check_positive, check_seed, param_error
from stalwart.attacks.base import Attack, AttackResult, Candidates, ThreatModel, register
from stalwart.attacks.square import margin_loss, p_schedule
from stalwart.data.schema import Schema
from stalwart.errors import ConfigError, InputError

__all__ = ["TabularSearch"]

_CONTINUOUS = ("numeric", "integer")
_DISCRETE = ("categorical", "boolean")


@dataclass(frozen=True, eq=False)
class _SchemaThreat(ThreatModel):
    """An linf threat on range-normalised columns that keeps every row inside the schema.

    ``bounds`` are the columns' valid ranges (as float32, the dtype attacks work in), ``scale``
    the per-column range eps is a fraction of, ``codes`` the valid values of each column
    (categorical codes, boolean 0/1; ``None`` for continuous columns).
    """

    kinds: tuple[str, ...] = ()
    scale: Any = None
    codes: tuple[Any, ...] = ()
    max_discrete_changes: int = 0

    @property
    def needs_rescaling(self) -> bool:
        return False  # the search works in range units itself, column by column

    @property
    def continuous(self) -> np.ndarray:
        return np.array([k in _CONTINUOUS for k in self.kinds])

    @property
    def integer(self) -> np.ndarray:
        return np.array([k == "integer" for k in self.kinds])

    @property
    def mutable_mask(self) -> np.ndarray:
        return np.asarray(self.mutable, dtype=bool)

    def box(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample interval each continuous column may take (float64; integers rounded in)."""
        lo32, hi32 = (np.asarray(b, dtype=np.float32).astype(np.float64) for b in self.bounds)
        r = float(self.eps) * self.scale
        x = x.astype(np.float64)
        lo, hi = np.maximum(lo32, x - r), np.minimum(hi32, x + r)
        lo = np.where(self.integer, np.ceil(lo), lo)
        hi = np.where(self.integer, np.floor(hi), hi)
        return np.minimum(lo, x), np.maximum(hi, x)  # x itself is always feasible

    def project_numpy(self, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The feasible row nearest ``v`` column by column (float32 in and out)."""
        x64 = x.astype(np.float64)
        out = np.where(self.mutable_mask, v.astype(np.float64), x64)
        cont = self.continuous & self.mutable_mask
        lo, hi = self.box(x)
        c = np.clip(out, lo, hi)
        c = np.where(self.integer, np.where(c >= x64, np.floor(c), np.ceil(c)), c)  # round towards x
        out = np.where(cont, c, out)
        for j, codes in enumerate(self.codes):
            if codes is not None:  # an invalid code falls back to the original value
                out[:, j] = np.where(np.isin(out[:, j], codes), out[:, j], x64[:, j])
        disc = ~self.continuous
        changed = disc & (out != x64)
        over = changed & (np.cumsum(changed, axis=1) > self.max_discrete_changes)
        out = np.where(over, x64, out)
        v32 = out.astype(np.float32)
        # float32 rounding may step just past the eps-box; step one ulp back towards x there
        r = float(self.eps) * self.scale
        past = cont & (np.abs(v32.astype(np.float64) - x64) > r)
        v32[past] = np.nextafter(v32[past], x[past])
        return v32

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.project_numpy(x_adv.detach().cpu().numpy(), x.detach().cpu().numpy())
        return torch.as_tensor(out, device=x.device)

    def distance(self, x_adv: Any, x: Any) -> np.ndarray:
        """linf distance over continuous columns, each divided by its range."""
        a = np.asarray(x_adv.cpu() if torch.is_tensor(x_adv) else x_adv, dtype=np.float64)
        b = np.asarray(x.cpu() if torch.is_tensor(x) else x, dtype=np.float64)
        cols = self.continuous & (self.scale > 0)
        if not cols.any():
            return np.zeros(len(a))
        return (np.abs(a - b)[:, cols] / self.scale[cols]).max(axis=1)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(max_discrete_changes=self.max_discrete_changes)
        return d


def _schema_threat(owner: Any, threat: ThreatModel, schema: Schema, max_changes: int) -> _SchemaThreat:
    cols = schema.columns
    lo = np.empty(len(cols))
    hi = np.empty(len(cols))
    scale = np.zeros(len(cols))
    codes: list[Any] = []
    for j, c in enumerate(cols):
        if c.kind in _CONTINUOUS:
            if c.lower is None or c.upper is None or not np.isfinite([c.lower, c.upper]).all():
                raise ConfigError(
                    f"{type(owner).__name__} needs a finite range for {c.kind} column {c.name!r} (the schema has "
                    f"lower={c.lower}, upper={c.upper}); set it with Schema.infer(..., bounds={{{c.name!r}: (lo, hi)}}).")
            lo[j], hi[j], scale[j] = c.lower, c.upper, c.upper - c.lower
            codes.append(None)
            continue
        if c.kind == "boolean":
            values = np.array([0.0, 1.0])
        else:
            try:
                values = np.unique(np.asarray(c.categories, dtype=np.float64))
            except (TypeError, ValueError):
                values = np.array([])
            if values.size == 0 or not np.isfinite(values).all():
                raise ConfigError(
                    f"{type(owner).__name__} needs categorical column {c.name!r} encoded as numeric codes; the "
                    f"schema lists categories {list(c.categories)[:10]}. Encode the column (e.g. as 0..k-1) in the "
                    "array the model takes and build the schema from the encoded data.")
        values = values.astype(np.float32).astype(np.float64)  # the values a float32 row can hold
        lo[j], hi[j] = values.min(), values.max()
        codes.append(values)
    mutable = schema.mutable_mask
    if threat.mutable is not None:
        try:
            mutable = mutable & np.broadcast_to(np.asarray(threat.mutable, dtype=bool), mutable.shape)
        except ValueError:
            raise param_error(owner, "threat", f"a ThreatModel whose mutable mask has {len(cols)} entries "
                              "(one per schema column)", threat) from None
    if threat.bounds is not None:  # the schema is the domain; explicit bounds may only narrow it
        try:
            lo = np.maximum(lo, np.broadcast_to(np.asarray(threat.bounds[0], dtype=float), lo.shape))
            hi = np.minimum(hi, np.broadcast_to(np.asarray(threat.bounds[1], dtype=float), hi.shape))
        except ValueError:
            raise param_error(owner, "threat", f"a ThreatModel whose bounds have {len(cols)} entries "
                              "(one per schema column)", threat) from None
        if np.any(lo > hi):
            bad = [cols[j].name for j in np.flatnonzero(lo > hi)]
            raise param_error(owner, "threat", f"bounds that overlap the schema's ranges (they do not for "
                              f"columns {bad[:5]}); use ThreatModel.from_schema(schema, eps=...) or bounds=None",
                              threat)
    return _SchemaThreat("linf", float(threat.eps), (lo.astype(np.float32), hi.astype(np.float32)), mutable,
                         unit="range", kinds=tuple(c.kind for c in cols), scale=scale, codes=tuple(codes),
                         max_discrete_changes=max_changes)


@register
class TabularSearch(Attack):
    """Black-box random search over valid tabular rows (any classifier: trees, pipelines, ONNX).

    Starting from a random point of the feasible set, each iteration changes either a random
    subset of the mutable continuous columns (each to a random value of its allowed interval:
    an end point or a uniform draw, rounded for integers; the subset's size is a fraction ``p``
    of those columns, halved on the Square attack's schedule) or, when
    ``max_discrete_changes > 0``, one categorical or boolean column to another valid code. Every
    proposal is snapped into the domain before it is queried and kept when the log-probability
    margin does not increase (ties are kept so the search can cross the flat regions of tree
    ensembles). A sample stops when it is fooled.

    Parameters
    ----------
    threat : ThreatModel
        Must have norm ``"linf"``; ``eps`` is a fraction of each numeric/integer column's range
        (see the module docstring). Its ``mutable`` mask and ``bounds`` (if any) narrow the
        schema's; ``ThreatModel.from_schema(schema, eps=...)`` builds a matching one.
    schema : Schema
        Tabular schema of the model's input columns, in order: kinds, finite ranges for numeric
        and integer columns, numeric codes for categorical columns, immutable columns.
    queries : int, default 1000
        Query budget per sample (the first query evaluates the random start).
    max_discrete_changes : int, default 0
        How many categorical/boolean columns may change per row.
    p_init : float in (0, 1], default 0.3
        Initial share of the mutable continuous columns changed per proposal.
    seed : int, default 0

    Notes
    -----
    ``run`` first checks that ``x`` is valid under the schema (ranges, integers, codes, 0/1) and
    names the first offending column. The attack's ``threat`` attribute is the schema-aware
    threat model built from ``threat`` and ``schema``; results report distances in its units.

    Examples
    --------
    >>> import numpy as np
    >>> from stalwart.attacks import ThreatModel
    >>> from stalwart.attacks.tabular import TabularSearch
    >>> from stalwart.data import Schema
    >>> from stalwart.models.function import FunctionModel
    >>> data = np.array([[0.0, 10.0], [5.0, 90.0], [2.0, 40.0]])
    >>> schema = Schema.infer(data, kinds={"x0": "integer"})
    >>> model = FunctionModel(lambda x: (np.asarray(x) @ [1.0, 0.05] > 5.5).astype(int), classes=[0, 1])
    >>> attack = TabularSearch(ThreatModel("linf", eps=0.25, bounds=None, unit="range"), schema=schema, queries=50)
    >>> res = attack.run(model, np.array([[2.0, 40.0]]), [0])
    >>> bool(res.success[0]), float(res.x_adv[0, 0]).is_integer(), bool(res.distance[0] <= 0.25)
    (True, True, True)
    """

    name: ClassVar[str] = "tabular-search"
    white_box: ClassVar[bool] = False
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)

    def __init__(self, threat: ThreatModel, *, schema: Schema, queries: int = 1000,
                 max_discrete_changes: int = 0, p_init: float = 0.3, seed: int = 0) -> None:
        super().__init__(threat, seed=seed)
        if threat.norm != "linf" or threat.unit != "range":
            raise param_error(self, "threat", "a ThreatModel with norm 'linf' and unit='range' (eps is a fraction "
                              "of each column's range; ThreatModel.from_schema(schema, eps=...) builds one)", threat)
        if not isinstance(schema, Schema) or schema.modality != "tabular" or not schema.columns:
            raise param_error(self, "schema", "a tabular stalwart.data.Schema with at least one column "
                              "(Schema.infer(x))", schema)
        check_positive(self, "queries", queries, integer=True)
        check_positive(self, "max_discrete_changes", max_discrete_changes, strict=False, integer=True)
        ok = isinstance(p_init, (int, float)) and not isinstance(p_init, bool) and 0 < p_init <= 1
        check_param(self, "p_init", p_init, ok, "a number in (0, 1]")
        check_seed(self, seed)
        self.threat: _SchemaThreat = _schema_threat(self, threat, schema, int(max_discrete_changes))
        self._schema = schema
        self.queries = int(queries)
        self.max_discrete_changes = int(max_discrete_changes)
        self.p_init = float(p_init)

    @property
    def schema(self) -> Schema:
        return self._schema

    def rebuild_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that are objects rather than plain parameters (see stalwart.testing)."""
        return {"schema": self._schema}

    # -- validation -----------------------------------------------------------------------------
    def run(self, model: Any, x: Any, y: Any, *, targeted: Any = None) -> AttackResult:
        """Check that ``x`` is valid under the schema, then attack it (see :meth:`Attack.run`)."""
        xs = check_array(x, "x", ndim=2, dtype=np.float32)
        th = self.threat
        if xs.shape[1] != len(th.kinds):
            raise InputError(f"x has {xs.shape[1]} columns but the schema describes {len(th.kinds)} "
                             f"({self._schema.names[:10]}); pass the columns the schema was built from, in order.")
        lo, hi = th.bounds
        for j, col in enumerate(self._schema.columns):
            v = xs[:, j]
            if th.codes[j] is not None:
                bad, rule = ~np.isin(v.astype(np.float64), th.codes[j]), f"one of the codes {th.codes[j][:10].tolist()}"
            elif col.kind == "integer":
                bad, rule = (v != np.round(v)) | (v < lo[j]) | (v > hi[j]), f"a whole number in [{lo[j]}, {hi[j]}]"
            else:
                bad, rule = (v < lo[j]) | (v > hi[j]), f"within [{lo[j]}, {hi[j]}]"
            if bad.any():
                rows = np.flatnonzero(bad)
                raise InputError(
                    f"x violates the schema in {col.kind} column {col.name!r}: {rows.size} row(s) (first rows "
                    f"{rows[:5].tolist()}, e.g. value {v[rows[0]]!r}) are not {rule}; clean x, or widen the "
                    "schema's ranges (or the threat model's bounds; bounds=None uses the schema's).")
        return super().run(model, xs, y, targeted=targeted)

    # -- search ---------------------------------------------------------------------------------
    def _attack(self, model: Any, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> Candidates:
        th = self.threat
        xs = x.detach().cpu().numpy().astype(np.float32)
        n = len(xs)
        yn = y.cpu().numpy()
        tn = None if target is None else target.cpu().numpy()
        rng = np.random.default_rng(self.seed)
        queries = np.zeros(n, dtype=np.int64)
        mut = th.mutable_mask
        cont = np.flatnonzero(th.continuous & mut)
        disc = np.flatnonzero(~th.continuous & mut)
        disc = disc[[th.codes[j].size >= 2 for j in disc]] if disc.size else disc
        if self.max_discrete_changes == 0:
            disc = disc[:0]
        lo, hi = th.box(xs)
        lo, hi = lo[:, cont], hi[:, cont]
        is_int = th.integer[cont]

        def evaluate(idx: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            queries[idx] += 1
            return margin_loss(model.predict_proba(pts), yn[idx],
                               None if tn is None else tn[idx], "margin")

        def draw(rows: np.ndarray) -> np.ndarray:
            """Random values for every continuous column: an end point or a uniform draw."""
            a, b = lo[rows], hi[rows]
            u = rng.random(a.shape)
            inner = np.where(is_int, np.minimum(np.floor(a + u * (b - a + 1)), b), a + u * (b - a))
            ends = np.where(rng.random(a.shape) < 0.5, a, b)
            return np.where(rng.random(a.shape) < 0.5, ends, inner)

        cur = xs.copy()
        if cont.size:
            cur[:, cont] = draw(np.arange(n))
        cur = th.project_numpy(cur, xs)
        cur_loss, fooled = evaluate(np.arange(n), cur)
        share_disc = disc.size / (disc.size + cont.size) if disc.size else 0.0
        for it in range(1, self.queries):
            a = np.flatnonzero(~fooled)
            if a.size == 0:
                break
            prop = cur[a].copy()
            use_disc = rng.random(a.size) < share_disc
            if cont.size:
                k = min(max(round(p_schedule(self.p_init, it, self.queries - 1) * cont.size), 1), cont.size)
                u = rng.random((a.size, cont.size))
                chosen = (u <= np.partition(u, k - 1, axis=1)[:, k - 1:k]) & ~use_disc[:, None]
                prop[:, cont] = np.where(chosen, draw(a), prop[:, cont])
            if disc.size and use_disc.any():
                r = np.flatnonzero(use_disc)
                prop[r] = self._discrete_move(prop[r], xs[a[r]], disc, rng)
            prop = th.project_numpy(prop, xs[a])
            loss, hit = evaluate(a, prop)
            keep = hit | (loss <= cur_loss[a])
            k_idx = a[keep]
            cur[k_idx], cur_loss[k_idx], fooled[k_idx] = prop[keep], loss[keep], hit[keep]
        return Candidates(torch.as_tensor(cur, device=x.device), queries)

    def _discrete_move(self, rows: np.ndarray, x: np.ndarray, disc: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Set one categorical/boolean column per row to another code, within the change budget."""
        m = len(rows)
        changed = rows[:, disc] != x[:, disc]
        # at the budget, only already-changed columns may move (which includes moving back)
        allowed = changed | (changed.sum(axis=1, keepdims=True) < self.max_discrete_changes)
        col = np.where(allowed, rng.random((m, disc.size)), -1.0).argmax(axis=1)
        out = rows.copy()
        u = rng.random(m)
        for c in np.unique(col):  # one vectorised step per column (few columns), not per row
            r = np.flatnonzero(col == c)
            j = disc[c]
            codes = self.threat.codes[j]
            pos = np.searchsorted(codes, rows[r, j].astype(np.float64))
            pick = np.floor(u[r] * (codes.size - 1)).astype(np.int64)
            out[r, j] = codes[pick + (pick >= pos)]  # uniform over the other codes
        return out
