"""The accuracy/robustness trade-off of several hardening options, measured side by side.

:func:`tradeoff` hardens a copy of one torch network with each option on the same training data,
then measures every result, and the undefended network, on the same held-out data: clean accuracy,
robust accuracy under the same threat (:func:`stalwart.attacks.evaluate`, which attacks squeezed
models through BPDA and distilled ones on their logits, so a defence that only hides gradients
does not look robust), and the time hardening took. A row is on the **Pareto front** when no other
row is at least as accurate on clean data and at least as robust, and better in one of the two
(:func:`pareto_front`); training time is reported beside it, not weighed.

Options are built-in names, dicts with parameters, or ``(name, callable)`` pairs:

- ``"pgd"``, ``"trades"``, ``"fast"`` — :func:`~stalwart.defend.adversarial_training` at the threat;
- ``"noise"`` — Gaussian-noise training (:func:`~stalwart.defend.adversarial_training` with
  ``method="noise"``), sigma ``threat.eps`` per feature unless ``{"method": "noise", "sigma": s}``
  says otherwise (whatever the threat's norm);
- ``"distill"`` — :func:`~stalwart.defend.distill` (the student, attacked on its logits);
- ``"squeeze"`` — :class:`~stalwart.defend.SqueezedModel` with :class:`~stalwart.defend.BitDepth`
  (``bits``, default 4); no training; inputs with one value range only (images);
- ``{"method": "trades", "beta": 3.0, "name": "trades-b3"}`` — a built-in with its own parameters
  (they override the shared ``epochs``, ``steps``, ... of :func:`tradeoff`);
- ``("mine", fn)`` — ``fn(net, x_train, y_train, threat, seed)`` hardens ``net`` (a copy) and returns
  the model to measure (anything :func:`stalwart.wrap` takes).

With ``threat.unit == "range"`` (tabular data: eps a fraction of each feature's range) every option
trains and is measured where each feature's range is [0, 1] (the space the attacks use for such a
threat); a callable then receives the problem in that space.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stalwart._validation import (
    check_array,
    check_choice,
    check_labels,
    check_lengths,
    check_seed,
    param_error,
)
from stalwart.defend._modules import trainable_copy
from stalwart.errors import ConfigError, InputError, ModelError

__all__ = ["tradeoff", "TradeoffResult", "pareto_front", "option_names", "TRADEOFF_METHODS"]

#: built-in hardening options and the parameters each takes (beyond the shared ones)
TRADEOFF_METHODS: dict[str, tuple[str, ...]] = {
    "pgd": ("epochs", "batch_size", "lr", "steps", "eps_warmup", "patience", "val_steps"),
    "trades": ("epochs", "batch_size", "lr", "steps", "beta", "eps_warmup", "patience", "val_steps"),
    "fast": ("epochs", "batch_size", "lr", "eps_warmup", "patience", "val_steps"),
    "noise": ("epochs", "batch_size", "lr", "sigma", "patience", "val_steps"),
    "distill": ("epochs", "batch_size", "lr", "temperature"),
    "squeeze": ("bits",),
}
_TRAINING = ("pgd", "trades", "fast", "noise")


@dataclass
class TradeoffResult:
    """One row per option, the undefended baseline first.

    ``rows``: ``{"option", "method", "baseline", "clean_accuracy", "robust_accuracy", "time_s",
    "pareto"}`` (``time_s``: seconds hardening took, 0 for the baseline). ``models``: the hardened
    model of each option by name (torch modules for the training options, in the data's own units),
    not part of :meth:`to_dict`. ``training``: the :class:`~stalwart.defend.TrainingResult` of each
    training option (per-epoch history, why it stopped), the
    :class:`~stalwart.defend.DistillationResult` of a distillation. ``threat``: the threat's ``to_dict()``;
    ``n_test``: the held-out samples every row was measured on.
    """

    rows: list[dict[str, Any]]
    threat: dict[str, Any]
    level: str
    n_test: int
    seed: int
    models: dict[str, Any] = field(default_factory=dict, repr=False)
    training: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def baseline(self) -> dict[str, Any]:
        return self.rows[0]

    @property
    def front(self) -> list[str]:
        """Names of the rows on the Pareto front, in row order."""
        return [r["option"] for r in self.rows if r["pareto"]]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [dict(r) for r in self.rows], "threat": self.threat, "level": self.level,
                "n_test": self.n_test, "seed": self.seed,
                "training": {k: v.to_dict() for k, v in self.training.items()}}


def pareto_front(clean: Any, robust: Any) -> np.ndarray:
    """Which points are Pareto-optimal when both coordinates are to be maximised.

    Point ``i`` is on the front unless some ``j`` has ``clean[j] >= clean[i]`` and
    ``robust[j] >= robust[i]`` with at least one strictly greater; equal points are both on it.

    Examples
    --------
    >>> pareto_front([0.9, 0.8, 0.85, 0.7], [0.4, 0.6, 0.3, 0.6]).tolist()
    [True, True, False, False]
    """
    c = check_array(clean, "clean", ndim=1, dtype=np.float64, min_samples=1)
    r = check_array(robust, "robust", ndim=1, dtype=np.float64, min_samples=1)
    if len(c) != len(r):
        raise InputError(f"pareto_front: clean has {len(c)} values and robust {len(r)}; pass one of each per row.")
    geq = (c[None, :] >= c[:, None]) & (r[None, :] >= r[:, None])  # [i, j]: j at least as good as i
    better = (c[None, :] > c[:, None]) | (r[None, :] > r[:, None])
    return ~np.any(geq & better, axis=1)


class _InRange(torch.nn.Module):
    """``net`` seen from the space where each feature's range is [0, 1] (shares ``net``'s weights)."""

    def __init__(self, net: torch.nn.Module, lower: np.ndarray, width: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("lower", torch.as_tensor(lower, dtype=torch.float32))
        self.register_buffer("width", torch.as_tensor(width, dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.lower + z * self.width)


@dataclass(frozen=True)
class _Option:
    name: str
    method: str
    params: dict[str, Any]
    fn: Callable[..., Any] | None = None


def _options(value: Any) -> list[_Option]:
    what = (f"a non-empty list of hardening options: names from {list(TRADEOFF_METHODS)}, dicts such as "
            "{'method': 'trades', 'beta': 3.0}, or (name, callable) pairs")
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or not value:
        raise param_error("tradeoff", "options", what, value)
    out: list[_Option] = []
    for item in value:
        if isinstance(item, str):
            check_choice("tradeoff", "options", item, list(TRADEOFF_METHODS))
            out.append(_Option(item, item, {}))
        elif isinstance(item, Mapping):
            params = dict(item)
            method = params.pop("method", None)
            check_choice("tradeoff", "options[...]['method']", method, list(TRADEOFF_METHODS))
            name = params.pop("name", method)
            unknown = sorted(set(params) - set(TRADEOFF_METHODS[method]))
            if unknown:
                raise ConfigError(f"tradeoff(options=...): option {name!r} ({method}) got unknown parameter(s) "
                                  f"{unknown}; it takes {list(TRADEOFF_METHODS[method])}, plus 'name'.")
            if not isinstance(name, str) or not name:
                raise param_error("tradeoff", "options[...]['name']", "a non-empty string", name)
            out.append(_Option(name, method, params))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and item[0] and callable(item[1]):
            out.append(_Option(item[0], "custom", {}, item[1]))
        else:
            raise param_error("tradeoff", "options", what + f"; one entry is {item!r}", value)
    names = [o.name for o in out]
    dup = sorted({n for n in names if names.count(n) > 1} | ({"baseline"} & set(names)))
    if dup:
        raise ConfigError(f"tradeoff(options=...): option names must be unique and not 'baseline'; {dup} repeat or "
                          "clash. Give dict options a 'name' each.")
    return out


def option_names(options: Sequence[Any]) -> list[str]:
    """The names of ``options`` (as :func:`tradeoff` takes them), in order; a
    :class:`~stalwart.errors.ConfigError` for an empty list, an unknown method, an unknown parameter
    or a repeated name.

    Examples
    --------
    >>> option_names(["pgd", {"method": "trades", "beta": 3.0, "name": "trades-b3"}])
    ['pgd', 'trades-b3']
    """
    return [o.name for o in _options(options)]


def tradeoff(net: torch.nn.Module, x_train: Any, y_train: Any, x_test: Any, y_test: Any, threat: Any, *,
             options: Sequence[Any] = ("pgd", "trades", "noise"), epochs: int = 10, batch_size: int = 128,
             lr: float = 1e-3, steps: int = 10, level: str = "fast", seed: int = 0,
             progress: Callable[[str, int, int], None] | None = None) -> TradeoffResult:
    """Harden a copy of ``net`` with each option and measure all of them beside ``net`` itself.

    Parameters
    ----------
    net : torch module (not changed); a TorchScript module works too
    x_train, y_train : training inputs and class indices ``0..k-1``
    x_test, y_test : held-out inputs and class indices, on which every row is measured
    threat : :class:`~stalwart.attacks.ThreatModel` (linf or l2), the budget trained for and attacked at
    options : see the module docstring; default PGD-AT, TRADES and Gaussian-noise training
    epochs, batch_size, lr, steps : shared training settings (an option's own parameters win)
    level : strength of :func:`~stalwart.attacks.evaluate`, "fast" (default) or "standard"
    seed : seeds training and the attacks
    progress : optional ``progress(option, i, n)`` called as each option starts

    Returns
    -------
    TradeoffResult

    Examples
    --------
    >>> import numpy as np, torch
    >>> from stalwart import attacks, defend
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> x = np.clip(0.5 + (y[:, None] - 0.5) * 0.4 + rng.normal(0, 0.1, (200, 2)), 0, 1).astype(np.float32)
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> res = defend.tradeoff(net, x[:150], y[:150], x[150:], y[150:], attacks.ThreatModel("linf", 0.05),
    ...                       options=["pgd"], epochs=2, steps=3)
    >>> [r["option"] for r in res.rows]
    ['baseline', 'pgd']
    """
    from stalwart.attacks import ThreatModel, evaluate
    from stalwart.defend.distill import distill
    from stalwart.defend.squeeze import BitDepth, SqueezedModel
    from stalwart.defend.training import adversarial_training

    if isinstance(net, torch.nn.Module) is False:
        module = getattr(net, "module", None)
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"tradeoff hardens a torch network; got {type(net).__name__}. Pass a torch.nn.Module; "
                             "for scikit-learn, fit stalwart.defend.AugmentedClassifier and measure each model with "
                             "stalwart.attacks.evaluate.")
        net = module
    if not isinstance(threat, ThreatModel) or threat.norm not in ("linf", "l2"):
        raise ConfigError("tradeoff(threat=...) must be a ThreatModel with norm 'linf' or 'l2', e.g. "
                          "ThreatModel('linf', 0.1, (0.0, 1.0)).")
    opts = _options(options)
    check_choice("tradeoff", "level", level, ("fast", "standard"))
    check_seed("tradeoff", seed)
    xtr, xte = check_array(x_train, "x_train", dtype=np.float32), check_array(x_test, "x_test", dtype=np.float32)
    ytr, yte = check_labels(y_train, None, "y_train"), check_labels(y_test, None, "y_test")
    check_lengths("x_train", xtr, "y_train", ytr)
    check_lengths("x_test", xte, "y_test", yte)
    if xtr.shape[1:] != xte.shape[1:]:
        raise InputError(f"x_train and x_test must hold samples of one shape; got {xtr.shape[1:]} and "
                         f"{xte.shape[1:]}.")
    for name, yy in (("y_train", ytr), ("y_test", yte)):
        if yy.dtype.kind not in "iu" or yy.min() < 0:
            raise InputError(f"{name} must hold integer class indices 0..k-1; map labels to indices first.")

    # one space for every option: with unit="range", where each feature's range is [0, 1]
    inner, wrap_net, identity = threat, (lambda m: m), True
    if threat.unit == "range":
        sp_train, sp_test = threat.range_space(xtr), threat.range_space(xte)
        inner, identity = sp_train.threat, sp_train.identity
        if not identity:
            xtr, xte = sp_train.z, sp_test.z
            lower, width = sp_train.lower, sp_train.width
            wrap_net = lambda m: _InRange(m, lower, width)  # noqa: E731
    images = inner.bounds is not None and all(np.ndim(b) == 0 for b in inner.bounds) and \
        identity

    def measure(model: Any) -> tuple[float, float]:
        ev = evaluate(model, xte, yte, inner, level=level, eps_curve=[], seed=seed, sanity=False)
        return float(np.mean(ev.clean_correct)), float(ev.robust_accuracy)

    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    trainings: dict[str, Any] = {}
    net.eval()
    n_steps = len(opts) + 1
    if progress is not None:
        progress("baseline", 0, n_steps)
    clean, robust = measure(wrap_net(net))
    rows.append({"option": "baseline", "method": "none", "baseline": True, "clean_accuracy": clean,
                 "robust_accuracy": robust, "time_s": 0.0})
    shared = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "steps": steps}
    for i, opt in enumerate(opts, start=1):
        if progress is not None:
            progress(opt.name, i, n_steps)
        raw_copy = trainable_copy(net)
        work = wrap_net(raw_copy)
        start = time.perf_counter()
        if opt.method in _TRAINING:
            params = {k: v for k, v in shared.items() if k in TRADEOFF_METHODS[opt.method]} | opt.params
            train_threat = inner
            if opt.method == "noise":
                sigma = params.pop("sigma", threat.eps)
                train_threat = ThreatModel("l2", sigma, inner.bounds, inner.mutable)
            elif inner.eps == 0:
                raise ConfigError(f"tradeoff: option {opt.name!r} trains against attacks at eps 0, which is standard "
                                  "training; give the threat an eps > 0.")
            trainings[opt.name] = adversarial_training(work, xtr, ytr, train_threat, method=opt.method, seed=seed,
                                                       **params)
            if isinstance(raw_copy, torch.jit.ScriptModule):
                # a TorchScript module profiled while training fails under inference mode afterwards
                # ("inference tensors cannot be saved for backward"); a fresh copy has no such state
                raw_copy = trainable_copy(raw_copy)
                work = wrap_net(raw_copy)
            work.eval()
            defended, models[opt.name] = work, raw_copy
        elif opt.method == "distill":
            params = {k: v for k, v in shared.items() if k in TRADEOFF_METHODS["distill"]} | opt.params
            trainings[opt.name] = distilled = distill(work, xtr, ytr, seed=seed, **params)
            student = distilled.model
            # a fresh copy: a TorchScript student profiled while training fails under inference mode afterwards
            defended = student = type(student)(trainable_copy(student.module))
            inside = student.module.net if isinstance(student.module, _InRange) else student.module
            models[opt.name] = type(student)(inside)
        elif opt.method == "squeeze":
            if not images:
                raise ConfigError(f"tradeoff: option {opt.name!r} (bit-depth squeezing) needs inputs with one value "
                                  "range (images, bounds=(lo, hi)); this threat has per-feature bounds. Leave it "
                                  "out for tables.")
            bounds = (float(inner.bounds[0]), float(inner.bounds[1]))
            defended = models[opt.name] = SqueezedModel(work, BitDepth(int(opt.params.get("bits", 4))), bounds=bounds)
        else:
            defended = opt.fn(work, xtr, ytr, inner, seed)  # type: ignore[misc]
            models[opt.name] = defended
        took = time.perf_counter() - start
        clean, robust = measure(defended)
        rows.append({"option": opt.name, "method": opt.method, "baseline": False, "clean_accuracy": clean,
                     "robust_accuracy": robust, "time_s": took})
    front = pareto_front([r["clean_accuracy"] for r in rows], [r["robust_accuracy"] for r in rows])
    for row, on in zip(rows, front):
        row["pareto"] = bool(on)
    if progress is not None:
        progress("done", n_steps, n_steps)
    return TradeoffResult(rows=rows, threat=threat.to_dict(), level=level, n_test=len(yte), seed=int(seed),
                          models=models, training=trainings)

