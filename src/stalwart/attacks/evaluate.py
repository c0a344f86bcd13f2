"""``evaluate``: the ensemble a user can trust not to over-report robustness.

The protocol follows AutoAttack (Croce & Hein, 2020): diverse, parameter-free attacks run in
sequence, each only on the samples still standing, so a sample counts as robust only if every
attack failed on it.

========  =====================================================  ==============================
level     white-box model                                        black-box model
========  =====================================================  ==============================
fast      APGD-CE (25 steps), APGD-T (3 targets, 25 steps),      Square (1,000 queries)
          Square (300 queries)
standard  APGD-CE (100), APGD-T (9 targets, 100),                Square (5,000 queries),
          Square (1,000 queries, escalated to 5,000: see below)  HopSkipJump (2,000 queries)
========  =====================================================  ==============================

On white-box models Square's job is to catch gradient masking: when gradients are informative,
it finds nothing APGD did not (Croce & Hein report differences under 0.1%), yet with 5,000
queries it costs more than the rest of the ensemble together. So ``standard`` runs it with
1,000 queries and escalates to AutoAttack's full 5,000 on the samples still standing whenever
there is any sign of masking: the first 1,000 queries broke a sample APGD could not, or some
standing sample has a zero loss gradient at its input. A model that masks gradients therefore
gets the full black-box budget; one that does not loses nothing (``escalate_square=True`` by
default; ``False`` always runs 5,000).

Sanity checks from the literature run with every evaluation and land in ``warnings``:

- ``large_eps``: at an eps that lets any input reach any other, robust accuracy must be ~0;
- ``more_steps``: a weaker run (a quarter of the steps) must not find *fewer* robust samples;
- ``black_box_after_white_box``: Square breaking samples that APGD could not points to gradient
  masking (Athalye et al., 2018);
- ``vanishing_gradients``: a zero loss gradient at the input and at a random point near it.

The eps curve (robust accuracy at 0, 0.25, 0.5, 1 and 2 x eps by default) reuses what the
ensemble found and attacks only where a point can change, with the fast plan:

- above eps, a perturbation found at eps is still allowed, so only the samples still standing
  are attacked (in increasing order of eps, each on what the previous one left);
- below eps, a sample that withstood a larger eps withstands a smaller one, so only the samples
  broken at the next larger eps are candidates (in decreasing order): each one's perturbation is
  projected onto the smaller ball and checked with one prediction, and the fast plan runs only
  on those the projection no longer breaks.

The curve is therefore monotone by construction; a sample counts as robust at a smaller eps only
if it also withstood the ensemble at a larger one. ``eps_curve=[]`` skips the extra runs.

The adapter is checked too: a model that outputs probabilities (not logits) is flagged, since
saturated softmax outputs mask gradients, and an eps that is meaningless for the data's range is
refused with a message that says how to fix it.

A randomized model (``model.verdict_draws > 1``, e.g. :class:`stalwart.defend.RandomizedModel`)
answers each call with a fresh draw. It is judged, clean and attacked, by majority vote over
``verdict_draws`` draws (:func:`stalwart.attacks.base.predicted_index`, the one verdict every
attack uses), so a sample is broken only when the answer the defence gives most often is wrong;
its gradients are whatever its ``torch_logits`` gives (EOT averages for the defences).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from stalwart._validation import check_array, check_choice, check_seed, labels_to_index, param_error
from stalwart.attacks._common import check_threat_shape, classifier, norm_of, numeric_batch
from stalwart.attacks.base import ATTACKS, AttackResult, ThreatModel, predicted_index
from stalwart.errors import ConfigError

if TYPE_CHECKING:
    from stalwart.execute import Executor

__all__ = ["evaluate", "EvaluationResult", "SanityCheck", "minimal_perturbation", "MinimalPerturbation",
           "check_eps_scale"]

Level = Literal["fast", "standard"]
LEVELS = ("fast", "standard")

# (registered attack name, parameters) per level and access
_PLANS: dict[tuple[str, bool], list[tuple[str, dict[str, Any]]]] = {
    ("fast", True): [("apgd-ce", {"steps": 25}), ("apgd-t", {"steps": 25, "targeted_classes": 3}),
                     ("square", {"queries": 300})],
    ("standard", True): [("apgd-ce", {"steps": 100}), ("apgd-t", {"steps": 100, "targeted_classes": 9}),
                         ("square", {"queries": 1000})],
    ("fast", False): [("square", {"queries": 1000})],
    ("standard", False): [("square", {"queries": 5000}), ("hopskipjump", {"queries": 2000})],
}


@dataclass(frozen=True)
class SanityCheck:
    """One automatic sanity check: whether it passed, and what was measured."""

    name: str
    passed: bool
    detail: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "value": self.value}


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Outcome of :func:`evaluate`; arrays have one entry per sample."""

    threat: ThreatModel
    level: str
    white_box: bool
    x_adv: np.ndarray
    y: np.ndarray
    clean_correct: np.ndarray
    robust: np.ndarray
    broken_by: np.ndarray  # attack name that first broke each sample; "clean" if misclassified; "" if robust
    attacks: tuple[dict[str, Any], ...]  # per attack: name, params, samples attacked, broken, time, queries
    curve: dict[str, list[float]]  # eps, robust_accuracy, low, high
    sanity: tuple[SanityCheck, ...]
    notes: tuple[str, ...]
    time_s: float
    curve_time_s: float = 0.0  # the eps curve's extra attack runs (summed over shards)
    n_shards: int = 1  # shards of at most shard_size samples, each with its own seed (see stalwart.execute)
    shard_size: int | None = None

    @property
    def n(self) -> int:
        return int(self.y.size)

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean())

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.mean())

    @property
    def robust_accuracy_interval(self) -> tuple[float, float]:
        from stalwart._stats import wilson_interval

        lo, hi = wilson_interval(int(self.robust.sum()), self.n)
        return float(lo), float(hi)

    @property
    def warnings(self) -> list[str]:
        return [f"{s.name}: {s.detail}" for s in self.sanity if not s.passed] + list(self.notes)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.robust_accuracy_interval
        return {
            "threat": self.threat.to_dict(), "level": self.level,
            "access": "white-box" if self.white_box else "black-box (no gradients: black-box attacks only)",
            "n_samples": self.n, "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy, "robust_accuracy_low": lo, "robust_accuracy_high": hi,
            "attacks": list(self.attacks), "curve": self.curve,
            "sanity": [s.to_dict() for s in self.sanity], "notes": list(self.notes), "time_s": self.time_s,
            "shards": {"count": self.n_shards, "size": self.shard_size},
        }


def check_eps_scale(threat: ThreatModel, x: np.ndarray) -> None:
    """Refuse an eps that is meaningless for the data's range.

    Too large: an linf eps at least the whole value range lets any input become any other, so
    robust accuracy says nothing about the model. Too small: an eps under 0.1% of the range is
    almost always a unit mistake (eps written for [0, 1] data, applied to [0, 255] data). With
    ``unit="range"`` the check runs in the range-normalised space (where it also refuses data
    whose features have no range to move in).
    """
    _check_threat("check_eps_scale", threat)
    x = check_array(x, "x", dtype=np.float32)
    check_threat_shape(threat, x.shape[1:])
    if threat.needs_rescaling:
        space = threat.range_space(np.asarray(x, dtype=np.float32))
        check_eps_scale(space.threat, space.z)
        return
    if threat.bounds is not None:
        lo, hi = (np.broadcast_to(np.asarray(b, dtype=float), x.shape[1:]) for b in threat.bounds)
        width = hi - lo
        width = width[np.isfinite(width)]
    else:
        width = np.array([])
    if width.size == 0 or float(width.max()) <= 0:
        span = float(np.ptp(x)) if x.size else 0.0
        width = np.array([span]) if span > 0 else np.array([])
    if width.size == 0 or threat.eps == 0:
        return
    d = int(np.prod(x.shape[1:]))
    # the radius of the whole input box in the threat model's norm
    scale = {"linf": float(width.max()), "l2": float(np.sqrt((width ** 2).sum())),
             "l1": float(width.sum()), "l0": float(d)}[threat.norm]
    unit = float(np.median(width))
    if threat.norm != "l0" and threat.eps >= scale:
        raise ConfigError(
            f"ThreatModel(eps={threat.eps:g}) covers the whole input range (an {threat.norm} ball of "
            f"radius {scale:.4g} reaches every valid input), so robust accuracy would be meaningless; "
            "pick an eps well inside the data's range."
        )
    if threat.norm in ("linf", "l2", "l1") and threat.eps < 1e-3 * unit:
        raise ConfigError(
            f"ThreatModel(eps={threat.eps:g}) is under 0.1% of the data's value range ({unit:.4g} per "
            "feature); this is usually an eps written for [0, 1] data applied to data on another "
            f"scale. Rescale eps (e.g. eps * {unit:.4g}) or rescale the data."
        )


def _check_threat(owner: str, threat: Any) -> None:
    if not isinstance(threat, ThreatModel):
        raise param_error(owner, "threat", "a ThreatModel (e.g. ThreatModel('linf', 0.03))", threat)


def _check_eps_curve(eps_curve: Any) -> None:
    """None, or eps values that are finite numbers >= 0 (an eps below 0 or NaN has no ball)."""
    if eps_curve is None:
        return
    values = list(eps_curve) if isinstance(eps_curve, (list, tuple)) else \
        eps_curve.tolist() if isinstance(eps_curve, np.ndarray) and eps_curve.ndim == 1 else None
    ok = values is not None and all(
        isinstance(e, (int, float, np.integer, np.floating)) and not isinstance(e, (bool, np.bool_))
        and bool(np.isfinite(e)) and e >= 0 for e in values)
    if not ok:
        raise param_error("evaluate", "eps_curve", "a list of finite eps values >= 0, or None for the default "
                          "(eps x [0.25, 0.5, 1, 2])", eps_curve)


def _model_notes(model: Any, threat: ThreatModel) -> list[str]:
    notes = []
    if model.verdict_draws > 1:
        notes.append(f"randomized model: every verdict (clean and adversarial) is a majority vote over "
                     f"{model.verdict_draws} draws (verdict_draws), not one draw")
    if model.differentiable and model.logits_from_probabilities:
        notes.append("the network returns probabilities, not logits: gradients are taken through the log of "
                     "saturating softmax outputs, which can mask gradients; attack the module without its "
                     "final softmax if you can")
    if model.input_bounds is not None and threat.bounds is not None:
        mlo, mhi = model.input_bounds
        tlo, thi = (np.asarray(b, dtype=float) for b in threat.bounds)
        if np.any(tlo < mlo) or np.any(thi > mhi):
            notes.append(f"the threat model's bounds exceed the model's declared input range ({mlo}, {mhi}); "
                         "attacks may produce inputs the model was never meant to see")
    return notes


def _stepper(progress: Callable[[str, int, int], None] | None, stages: list[str]) -> Callable[[str | None], None]:
    """``step(stage)`` reports the start of a stage; ``step(None)`` the end of the evaluation."""
    done = [0]

    def step(stage: str | None) -> None:
        if progress is None:
            return
        if stage is None:
            progress("done", len(stages), len(stages))
            return
        progress(f"evaluate: {stage}", min(done[0], len(stages) - 1), len(stages))
        done[0] += 1
    return step


def _run_plan(model: Any, x: np.ndarray, y: np.ndarray, threat: ThreatModel, plan, seed: int,
              todo: np.ndarray, x_adv: np.ndarray, broken_by: np.ndarray,
              record: list[dict[str, Any]] | None, step: Callable[[str | None], None] | None = None) -> None:
    """Run each attack of ``plan`` on the samples in ``todo`` still standing; update in place."""
    for name, params in plan:
        if step is not None:
            step(name)
        standing = np.flatnonzero(todo & (broken_by == ""))
        if standing.size == 0:
            continue
        attack = ATTACKS.get(name)(threat, seed=seed, **params)
        res: AttackResult = attack.run(model, x[standing], y[standing])
        hit = standing[res.success]
        x_adv[hit] = res.x_adv[res.success]
        broken_by[hit] = name
        if record is not None:
            record.append({"attack": name, "params": params, "attacked": int(standing.size),
                           "broken": int(hit.size), "queries_mean": float(res.queries.mean()),
                           "time_s": res.time_s})


def evaluate(model: Any, x: Any, y: Any, threat: ThreatModel, *, level: Level = "standard",
             eps_curve: list[float] | None = None, seed: int = 0, sanity: bool = True,
             escalate_square: bool = True,
             progress: Callable[[str, int, int], None] | None = None,
             executor: Executor | str | None = None, shard_size: int | None = None) -> EvaluationResult:
    """Robust accuracy under ``threat`` from an AutoAttack-style ensemble, with its eps curve.

    Parameters
    ----------
    model : anything :func:`stalwart.wrap` accepts; white-box models get APGD-CE, APGD-T and
        Square, black-box models the black-box attacks only (the result says so)
    x, y : inputs (numeric array, N x ...) and labels
    threat : the threat model (norm, eps, bounds, mutable features)
    level : "standard" (the full protocol) or "fast" (for CI)
    eps_curve : eps values for the robust-accuracy curve; default ``eps x [0.25, 0.5, 1, 2]``;
        ``[]`` skips the curve's extra attack runs (it then holds eps 0 and ``eps`` only). Cost:
        the curve runs the fast plan at each other eps, but only where it can change the point
        (see the module docstring): upwards on the samples still standing, downwards on the samples
        broken at the next larger eps whose perturbation, projected onto the smaller ball, no
        longer fools the model. On the benchmark models (docs/benchmarks.md) that is about
        10-25% of the default evaluation's time (``EvaluationResult.curve_time_s``), where
        running the fast plan on every sample at every eps was 40-50%.
    seed : seeds every attack
    sanity : run the sanity checks (costs roughly one extra fast attack on <= 100 samples)
    escalate_square : at the standard level on white-box models, run Square with 1,000 queries
        and escalate to 5,000 only on signs of gradient masking (see the module docstring);
        ``False`` runs 5,000 queries always
    progress : optional ``progress(stage, i, n)`` called as each stage starts (the attacks of the
        plan, the eps curve, the sanity checks) and once at the end with ``i == n``; with several
        shards, as each shard finishes
    executor : where the shards run: "local" (default: in this process), "process", "ray" or an
        :class:`stalwart.execute.Executor` (see :mod:`stalwart.execute`); the result does not
        depend on it
    shard_size : samples per shard (default :data:`stalwart.execute.DEFAULT_SHARD_SIZE`, 1000).
        Up to one shard, the evaluation is the unsharded one with ``seed``, in this process whatever
        the executor; beyond, shard ``i`` runs the ensemble and the eps curve with a seed derived
        from ``seed`` and ``i``, and the decisions that look at every sample (escalating Square,
        the sanity checks) are taken across all shards. Results depend on ``seed`` and
        ``shard_size``, never on the executor or its number of workers.

    Returns
    -------
    EvaluationResult with robust accuracy (Wilson interval), which attack broke each sample,
    the curve of robust accuracy against eps and the sanity checks.
    """

    from stalwart.execute import DEFAULT_SHARD_SIZE, resolve_executor, shard_seeds, shard_slices

    check_choice("evaluate", "level", level, LEVELS)
    _check_threat("evaluate", threat)
    check_seed("evaluate", seed)
    _check_eps_curve(eps_curve)
    runner = resolve_executor(executor)
    size = DEFAULT_SHARD_SIZE if shard_size is None else shard_size
    model = classifier("evaluate", model)
    # before the model sees x: a wrong layout or per-feature bounds of another length fail inside it otherwise
    xs, ys = numeric_batch(model, x, y, threat)
    slices = shard_slices(len(ys), size)
    if threat.needs_rescaling:  # eps is a fraction of each feature's range: run where every range is [0, 1]
        space = threat.range_space(xs)
        res = evaluate(space.wrap(model), space.z, ys, space.threat, level=level, eps_curve=eps_curve, seed=seed,
                       sanity=sanity, escalate_square=escalate_square, progress=progress, executor=runner,
                       shard_size=size)
        return replace(res, threat=threat, x_adv=space.to_raw(res.x_adv, xs))
    check_eps_scale(threat, xs)
    start = time.perf_counter()
    white = bool(model.differentiable)
    y_idx = labels_to_index(ys, model.classes)
    clean_correct = predicted_index(model, xs) == y_idx
    notes = _model_notes(model, threat)  # after a prediction: adapters learn their output kind from it
    if not white:
        notes.append("black-box model: only black-box attacks ran (no gradients), so robust accuracy is an "
                     "upper bound that a white-box evaluation may lower")
    plan = _PLANS[(level, white)]
    if level == "standard" and white and not escalate_square:
        plan = [*plan[:-1], ("square", {"queries": _FULL_SQUARE})]
    escalate = level == "standard" and white and escalate_square
    # which eps of the curve say something is judged on all the data (bounds=None uses its spread)
    values = [e for e in _curve_values(eps_curve, float(threat.eps)) if e in (0.0, float(threat.eps))
              or _usable_eps(threat, e, xs)]
    shared = (model, threat, plan, white, escalate, values)
    seeds = shard_seeds(seed, len(slices))
    shards = [(xs[s], ys[s], clean_correct[s], sd) for s, sd in zip(slices, seeds)]

    if len(shards) == 1:  # the unsharded evaluation, in this process, with its per-stage progress
        stages = [name for name, _ in plan] + ["eps curve"] + (["sanity checks"] if sanity else [])
        step = _stepper(progress, stages)
        first = [_attack_shard(shared, (*shards[0], step))]
        decision = _escalation_decision(first)
        step("eps curve")
        done = [_finish_shard(shared, (shards[0], first[0], decision))]
    else:
        total = 2 * len(shards) + 1
        report = (lambda label, k: progress(f"evaluate: {label} ({len(shards)} shards of <= {size} samples)", k,
                                            total)) if progress is not None else (lambda label, k: None)
        with runner.open(shared) as session:
            report("ensemble", 0)
            first = session.map(_attack_shard, [(*sh, None) for sh in shards],
                                lambda k: report("ensemble", k))
            decision = _escalation_decision(first)
            done = session.map(_finish_shard, [(sh, part, decision) for sh, part in zip(shards, first)],
                               lambda k: report("escalation and eps curve", len(shards) + k))
        report("sanity checks", 2 * len(shards))

    x_adv = np.concatenate([d["x_adv"] for d in done])
    broken_by = np.concatenate([d["broken_by"] for d in done])
    record = _merge_records([p["record"] for p in first])
    if escalate:
        record += _escalation_records(decision, [d["record"] for d in done])
    curve = _curve_rows({e: np.concatenate([d["curve"][e] for d in done]) for e in done[0]["curve"]})
    curve_time = float(sum(d["curve_time_s"] for d in done))
    if sanity and len(shards) == 1:
        step("sanity checks")
    checks = _sanity(model, xs, ys, threat, level, white, seed, broken_by, clean_correct) if sanity else ()
    if progress is not None:
        progress("done", 1, 1) if len(shards) > 1 else step(None)
    return EvaluationResult(
        threat=threat, level=level, white_box=white, x_adv=x_adv, y=ys, clean_correct=clean_correct,
        robust=broken_by == "", broken_by=broken_by.astype(str), attacks=tuple(record), curve=curve,
        sanity=tuple(checks), notes=tuple(notes), time_s=time.perf_counter() - start, curve_time_s=curve_time,
        n_shards=len(shards), shard_size=int(size))


def _attack_shard(shared, item) -> dict[str, Any]:
    """First pass over one shard: the ensemble's plan, and what the escalation decision needs."""
    model, threat, plan, _white, escalate, _values = shared
    xs, ys, clean_correct, seed, step = item
    x_adv = xs.copy()
    broken_by = np.where(clean_correct, "", "clean").astype(object)
    record: list[dict[str, Any]] = []
    _run_plan(model, xs, ys, threat, plan, seed, clean_correct, x_adv, broken_by, record, step)
    out: dict[str, Any] = {"x_adv": x_adv, "broken_by": broken_by, "record": record, "probe_hits": 0,
                           "standing": 0, "flat": 0.0}
    if escalate:
        standing = np.flatnonzero(broken_by == "")
        hits = int((broken_by == "square").sum())
        out.update(probe_hits=hits, standing=int(standing.size))
        if standing.size and not hits:  # the gradient probe is only needed when Square found nothing
            out["flat"] = _flat_gradient_share(model, xs[standing], ys[standing], threat, seed)
    return out


def _escalation_decision(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Escalate Square everywhere when any shard shows signs of gradient masking."""
    hits = sum(p["probe_hits"] for p in parts)
    standing = sum(p["standing"] for p in parts)
    if hits or not standing:
        flat = 0.0
    elif len(parts) == 1:
        flat = parts[0]["flat"]
    else:
        flat = sum(round(p["flat"] * p["standing"]) for p in parts) / standing
    return {"probe_hits": hits, "flat": flat, "standing": standing, "escalate": bool(standing and (hits or flat))}


def _finish_shard(shared, item) -> dict[str, Any]:
    """Second pass over one shard: Square's escalation (when decided) and the eps curve."""
    model, threat, _plan, white, escalate, values = shared
    (xs, ys, clean_correct, seed), part, decision = item
    x_adv, broken_by = part["x_adv"], part["broken_by"].copy()
    record: list[dict[str, Any]] = []
    if escalate and decision["escalate"]:
        _run_plan(model, xs, ys, threat, [("square", {"queries": _FULL_SQUARE - 1000})], seed + 1, clean_correct,
                  x_adv, broken_by, record)
    curve_start = time.perf_counter()
    curve = _curve(model, xs, ys, threat, white, seed, values, broken_by, x_adv)
    return {"x_adv": x_adv, "broken_by": broken_by, "record": record, "curve": curve,
            "curve_time_s": time.perf_counter() - curve_start}


def _merge_records(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-attack records of every shard as one: counts and times summed, queries averaged per sample."""
    if len(parts) == 1:
        return [dict(r) for r in parts[0]]
    merged: dict[str, dict[str, Any]] = {}
    for rec in (r for part in parts for r in part):
        key = repr((rec["attack"], sorted(rec["params"].items())))
        if key not in merged:
            merged[key] = {**rec, "queries_mean": 0.0, "attacked": 0, "broken": 0, "time_s": 0.0}
        m = merged[key]
        total = m["attacked"] + rec["attacked"]
        m["queries_mean"] = (m["queries_mean"] * m["attacked"] + rec["queries_mean"] * rec["attacked"]) / max(1, total)
        m["attacked"], m["broken"], m["time_s"] = total, m["broken"] + rec["broken"], m["time_s"] + rec["time_s"]
    return list(merged.values())


def _escalation_records(decision: dict[str, Any], parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not decision["standing"]:
        return []
    if not decision["escalate"]:
        return [{"attack": "square", "params": {"escalated": False}, "attacked": 0, "broken": 0,
                 "queries_mean": 0.0, "time_s": 0.0,
                 "note": "no sign of gradient masking: Square not escalated beyond 1,000 queries"}]
    extra = _merge_records(parts)
    for entry in extra:
        entry["params"] = {**entry["params"], "escalated": True}
        entry["note"] = (f"escalated: the 1,000-query probe broke {decision['probe_hits']} sample(s) or "
                         f"{decision['flat']:.0%} of standing samples have zero gradients")
    return extra


_FULL_SQUARE = 5000
#: the default curve: these multiples of eps, besides 0 and eps itself
_CURVE_FACTORS = (0.25, 0.5, 2.0)


def _with_eps(threat: ThreatModel, eps: float) -> ThreatModel:
    return replace(threat, eps=eps)


def _curve_values(eps_curve: list[float] | None, main: float) -> list[float]:
    extra = [main * f for f in _CURVE_FACTORS] if eps_curve is None else eps_curve
    return sorted({float(e) for e in extra} | {0.0, main})


def _usable_eps(threat: ThreatModel, eps: float, xs: np.ndarray) -> bool:
    """Whether a curve point at ``eps`` says something (not the whole range, nor ~0 of it)."""
    try:
        check_eps_scale(_with_eps(threat, eps), xs)
    except ConfigError:
        return False
    return True


def _curve(model, xs, ys, threat, white, seed, values, broken_by, x_adv) -> dict[float, np.ndarray]:
    """Per eps of ``values`` (0, eps and the usable others), which samples are broken there.

    Robust accuracy against eps, monotone by construction, reusing what the ensemble found.

    - eps 0: the clean errors; the evaluation's own eps: its result, as it is.
    - Larger eps, in increasing order: a perturbation found at a smaller eps is still allowed,
      so only the samples still standing are attacked (the fast plan).
    - Smaller eps, in decreasing order: a sample that withstood a larger eps withstands this
      one, so only the samples broken at the next larger eps are candidates. Their perturbation
      is first projected onto the smaller ball and checked with one prediction; the fast plan
      runs only on those it no longer breaks.

    Every point is a lower bound on what the fast plan alone would break at that eps on the
    samples it attacks, and never counts a sample robust that a larger eps's attacks broke at a
    smaller radius.
    """
    main = float(threat.eps)
    fast_plan = _PLANS[("fast", white)]
    clean = broken_by == "clean"
    y_idx = labels_to_index(ys, model.classes)
    broken: dict[float, np.ndarray] = {0.0: clean, main: broken_by != ""}

    def attack_at(eps: float, todo: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Fast plan at ``eps`` on ``todo``; breaks recorded in ``found`` (x) and returned."""
        state = np.where(todo, "", "-").astype(object)
        _run_plan(model, xs, ys, _with_eps(threat, eps), fast_plan, seed, todo, found, state, None)
        return (state != "") & todo

    # upwards: only the samples still standing
    prev = broken[main]
    for eps in [e for e in values if e > main]:
        new = attack_at(eps, ~prev, xs.copy())
        broken[eps] = prev = prev | new
    # downwards: only the samples broken at the next larger eps, their perturbation tried first
    prev, x_prev = broken[main] & ~clean, x_adv
    for eps in [e for e in reversed(values) if 0 < e < main]:
        rows = np.flatnonzero(prev)
        found = xs.copy()
        hit = np.zeros(len(xs), dtype=bool)
        if rows.size:
            xt = torch.as_tensor(xs[rows])
            projected = _with_eps(threat, eps).project(torch.as_tensor(x_prev[rows]), xt).numpy()
            fooled = predicted_index(model, projected) != y_idx[rows]
            hit[rows[fooled]] = True
            found[rows[fooled]] = projected[fooled]
        rest = prev & ~hit
        if rest.any():
            hit |= attack_at(eps, rest, found)
        broken[eps] = clean | hit
        prev, x_prev = hit, found
    return broken


def _curve_rows(broken: dict[float, np.ndarray]) -> dict[str, list[float]]:
    """The curve as a table: robust accuracy and its Wilson interval at each eps."""
    from stalwart._stats import wilson_interval

    rows_out: dict[str, list[float]] = {"eps": [], "robust_accuracy": [], "low": [], "high": []}
    for eps in sorted(broken):
        k, n = int((~broken[eps]).sum()), len(broken[eps])
        lo, hi = wilson_interval(k, n)
        rows_out["eps"].append(eps)
        rows_out["robust_accuracy"].append(k / n)
        rows_out["low"].append(float(lo))
        rows_out["high"].append(float(hi))
    return rows_out


def _sanity(model, xs, ys, threat, level, white, seed, broken_by, clean_correct) -> list[SanityCheck]:
    checks: list[SanityCheck] = []
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(clean_correct)
    sub = np.sort(rng.choice(pool, size=min(100, pool.size), replace=False)) if pool.size else pool
    n_sub = max(1, sub.size)
    attacker = "apgd-ce" if white and "apgd-ce" in ATTACKS else "square"

    # 1. robust accuracy ~0 when eps lets every input reach the middle of the range
    if threat.bounds is not None and sub.size:
        lo, hi = (np.broadcast_to(np.asarray(b, dtype=np.float32), xs.shape[1:]) for b in threat.bounds)
        width = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        big = {"linf": float(width.max()) * 0.999, "l2": float(np.sqrt((width ** 2).sum())) * 0.999,
               "l1": float(width.sum()) * 0.999, "l0": float(width.size)}[threat.norm]
        params = {"steps": 50} if attacker == "apgd-ce" else {"queries": 1000}
        res = ATTACKS.get(attacker)(_with_eps(threat, big), seed=seed, **params).run(model, xs[sub], ys[sub])
        ra = res.robust_accuracy
        checks.append(SanityCheck(
            "large_eps", ra <= 0.05,
            f"robust accuracy at {threat.norm} eps={big:.4g} (the whole range) is {ra:.3f}; "
            + ("it falls to ~0 as it should" if ra <= 0.05 else
               "it should fall to ~0: the attack is too weak or gradients are masked"), ra))

    # 2. more steps never help the model: a weaker run must not leave fewer samples robust
    if white and "apgd-ce" in ATTACKS and sub.size:
        steps = _PLANS[(level, True)][0][1]["steps"]
        weak = ATTACKS.get("apgd-ce")(threat, seed=seed + 1, steps=max(2, steps // 4)).run(model, xs[sub], ys[sub])
        strong_robust = int((broken_by[sub] == "").sum())
        weak_robust = int((~weak.success).sum())
        ok = strong_robust <= weak_robust + max(1, round(0.01 * sub.size))
        checks.append(SanityCheck(
            "more_steps", ok,
            f"robust samples: {strong_robust}/{sub.size} with the full ensemble vs {weak_robust}/{sub.size} "
            f"with APGD-CE at {max(2, steps // 4)} steps" + ("" if ok else "; more iterations should never help "
                                                             "the model: the optimisation is unreliable"),
            strong_robust / n_sub))

    # 3. black-box succeeding where white-box failed points to gradient masking
    if white:
        by_black = int((broken_by == "square").sum())
        attacked = int(clean_correct.sum())
        share = by_black / max(1, attacked)
        ok = share <= 0.01
        checks.append(SanityCheck(
            "black_box_after_white_box", ok,
            f"Square broke {by_black} of {attacked} samples that APGD could not"
            + ("" if ok else ": black-box beating white-box points to gradient masking"), share))

        # 4. vanishing gradients at the input and at a random point of the threat ball
        if sub.size:
            flat = _flat_gradient_share(model, xs[sub], ys[sub], threat, seed)
            checks.append(SanityCheck(
                "vanishing_gradients", flat <= 0.05,
                f"{flat:.1%} of samples have a zero loss gradient at the input and near it"
                + ("" if flat <= 0.05 else ": gradients vanish (saturated outputs or non-differentiable "
                   "layers), so gradient attacks cannot be trusted on them"), flat))
    return checks


def _flat_gradient_share(model, x: np.ndarray, y: np.ndarray, threat: ThreatModel, seed: int) -> float:
    device = getattr(model, "device", torch.device("cpu"))
    xt = torch.as_tensor(x, device=device)
    yt = torch.as_tensor(labels_to_index(y, model.classes), device=device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = (torch.rand(xt.shape, generator=gen) * 2 - 1).to(device) * float(threat.eps)
    flat = torch.ones(len(xt), dtype=torch.bool, device=device)
    for point in (xt, threat.project(xt + noise, xt)):
        p = point.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = torch.nn.functional.cross_entropy(model.torch_logits(p), yt, reduction="sum")
            (g,) = torch.autograd.grad(loss, p)
        flat &= norm_of(g, "linf") == 0
    return float(flat.float().mean())


@dataclass(frozen=True, eq=False)
class MinimalPerturbation:
    """Smallest adversarial perturbation found per sample (inf where none was found)."""

    norm: str
    method: str
    distance: np.ndarray
    clean_correct: np.ndarray
    quantiles: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        found = np.isfinite(self.distance) & self.clean_correct
        hist_counts, edges = (np.histogram(self.distance[found], bins=20) if found.any() else (np.array([]), np.array([])))
        return {"norm": self.norm, "method": self.method, "n_samples": int(self.distance.size),
                "found": int(found.sum()), "quantiles": self.quantiles,
                "histogram": {"counts": hist_counts.tolist(), "edges": edges.tolist()}}


def minimal_perturbation(model: Any, x: Any, y: Any, *, norm: str = "l2", bounds: tuple[Any, Any] | None = (0.0, 1.0),
                         seed: int = 0, mutable: Any = None) -> MinimalPerturbation:
    """The smallest perturbation that changes each prediction, as a distribution.

    White-box models: DeepFool (fast, near-minimal), refined by C&W for l2; black-box models:
    HopSkipJump. Each runs with an eps covering the whole range, so its result is the distance
    itself rather than a success under a budget.
    """
    check_choice("minimal_perturbation", "norm", norm, ("l2", "linf"))
    model = classifier("minimal_perturbation", model)
    xs, ys = numeric_batch(model, x, y)
    if bounds is not None:
        lo, hi = (np.broadcast_to(np.asarray(b, dtype=float), xs.shape[1:]) for b in bounds)
        span = {"linf": float((hi - lo).max()), "l2": float(np.sqrt(((hi - lo) ** 2).sum()))}[norm]
    else:
        span = {"linf": 10 * float(np.ptp(xs)), "l2": 10 * float(np.ptp(xs)) * np.sqrt(xs[0].size)}[norm]
    threat = ThreatModel(norm, span, bounds, mutable)  # mutable: features that may move (all by default)
    methods = (["deepfool"] + (["cw"] if norm == "l2" else [])) if model.differentiable else ["hopskipjump"]
    methods = [m for m in methods if m in ATTACKS]
    if not methods:
        raise ConfigError("no minimal-perturbation attack is registered")
    distance = np.full(len(ys), np.inf)
    clean_correct = None
    for name in methods:
        res = ATTACKS.get(name)(threat, seed=seed).run(model, xs, ys)
        clean_correct = res.clean_correct
        d = np.where(res.success & res.clean_correct, res.distance, np.inf)
        distance = np.minimum(distance, d)
    found = np.isfinite(distance) & clean_correct
    q = {f"p{int(p)}": float(np.percentile(distance[found], p)) for p in (10, 25, 50, 75, 90)} if found.any() else {}
    return MinimalPerturbation(norm, "+".join(methods), distance, clean_correct, q)
