"""Model extraction: how much of a model an attacker gets back from its answers.

:func:`model_extraction` plays the attacker of Tramèr et al. (2016) and Orekondy et al. (2019,
Knockoff Nets): it sends the target queries — rows of the attacker's own unlabelled pool
(``"natural"``), uniform draws within the pool's per-feature range (``"random"``), or pool rows
with Gaussian noise (``"perturbed"``) — takes its answers (labels only, or probabilities), and
trains a surrogate network on them. For each query budget the surrogate is trained on the first
``budget`` answers (the budgets are nested, so the curve is one attacker spending more) and
measured on held-out rows: **fidelity**, its agreement with the target's predictions (the
extraction's success), and accuracy against the true labels when they are given, each with a
Wilson interval. The practical risk follows: adversarial examples crafted on the last surrogate
(PGD, white-box on the copy) are sent to the target, and the share that fool it too is the
**transfer rate** (among the held-out rows the target gets right and the attack broke on the
surrogate).

The surrogate is a two-layer ReLU network on standardised inputs (images are flattened),
trained with soft-label cross-entropy: with ``output="scores"`` it learns the target's
probabilities, with ``"labels"`` their one-hot argmax. Every query is counted (``queries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import check_array, check_param, check_seed, param_error
from stalwart.errors import ConfigError, InputError, ModelError

__all__ = ["model_extraction", "ExtractionResult", "QUERY_KINDS"]

QUERY_KINDS = ("natural", "random", "perturbed")


@dataclass(frozen=True)
class ExtractionResult:
    """Fidelity (and accuracy) of the surrogate per query budget, and the transfer rate."""

    budgets: tuple[int, ...]
    fidelity: tuple[float, ...]
    fidelity_low: tuple[float, ...]
    fidelity_high: tuple[float, ...]
    accuracy: tuple[float, ...] | None  # against the true labels of the held-out rows, if given
    target_accuracy: float | None
    queries: int  # rows sent to the target
    query_kind: str
    output: str
    n_test: int
    transfer_rate: float | None = None
    transfer_low: float | None = None
    transfer_high: float | None = None
    transfer_n: int = 0  # held-out rows the transfer rate is measured on
    transfer_eps: float | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """One row per budget (the report's curve)."""
        rows = []
        for i, b in enumerate(self.budgets):
            row = {"queries": b, "fidelity": self.fidelity[i], "fidelity_low": self.fidelity_low[i],
                   "fidelity_high": self.fidelity_high[i]}
            if self.accuracy is not None:
                row["surrogate_accuracy"] = self.accuracy[i]
            rows.append(row)
        return rows


def _mlp(d: int, k: int, mean: np.ndarray, std: np.ndarray, hidden: int) -> Any:
    import torch
    from torch import nn

    class Standardise(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

        def forward(self, x: Any) -> Any:
            return (x.reshape(len(x), -1) - self.mean) / self.std

    return nn.Sequential(Standardise(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, k))


def _train(make: Any, x: np.ndarray, soft: np.ndarray, seed: int, epochs: int) -> Any:
    """The network ``make()`` builds, trained; its initialisation and batches depend on ``seed``
    only (the caller's global torch random state is left as it was)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _fit(make(), x, soft, seed, epochs)


def _fit(net: Any, x: np.ndarray, soft: np.ndarray, seed: int, epochs: int) -> Any:
    import torch

    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(soft, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    batch = 256
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = -(yt[idx] * torch.log_softmax(net(xt[idx]), dim=1)).sum(dim=1).mean()
            loss.backward()
            opt.step()
    return net.eval()


def model_extraction(model: Any, x_pool: Any, x_test: Any, y_test: Any = None, *,
               budgets: Sequence[int] = (100, 300, 1000, 3000), queries: str = "natural", output: str = "labels",
               hidden: int = 64, epochs: int = 60, transfer_eps: float | None = 0.1, seed: int = 0
               ) -> ExtractionResult:
    """Extract ``model`` from its answers and measure the copy (see the module docstring).

    Parameters
    ----------
    model : the target: anything :func:`stalwart.wrap` accepts (a classifier); only its outputs are used
    x_pool : the attacker's unlabelled rows (natural queries are drawn from them; they also set the
        range of random queries and the scale of perturbed ones)
    x_test, y_test : held-out rows to measure fidelity on (and accuracy, if ``y_test`` is given)
    budgets : query budgets, increasing (each > 0; natural queries: at most ``len(x_pool)``)
    queries : "natural", "random" or "perturbed"
    output : "labels" (the attacker sees the predicted class) or "scores" (the probabilities)
    hidden, epochs : the surrogate network's width and training epochs
    transfer_eps : linf budget of the transfer attack as a fraction of each feature's range in
        the pool (None skips it)
    seed : queries, training and the attack derive from it
    """
    from stalwart.models import wrap

    owner = "extraction"
    check_seed(owner, seed)
    if queries not in QUERY_KINDS:
        raise param_error(owner, "queries", f"one of {list(QUERY_KINDS)}", queries)
    if output not in ("labels", "scores"):
        raise param_error(owner, "output", "'labels' or 'scores'", output)
    ok = isinstance(budgets, Sequence) and not isinstance(budgets, str) and len(budgets) > 0 and all(
        isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b > 0 for b in budgets)
    if not ok or list(budgets) != sorted(set(budgets)):
        raise param_error(owner, "budgets", "increasing query counts, each an integer > 0 (e.g. [100, 1000])", budgets)
    check_param(owner, "hidden", hidden, isinstance(hidden, int) and hidden > 0, "an integer > 0")
    check_param(owner, "epochs", epochs, isinstance(epochs, int) and epochs > 0, "an integer > 0")
    if transfer_eps is not None:
        check_param(owner, "transfer_eps", transfer_eps, isinstance(transfer_eps, (int, float)) and 0 < transfer_eps <= 1,
                    "None or a number in (0, 1] (a fraction of each feature's range)")
    target = wrap(model)
    if getattr(target, "task", "classification") != "classification":
        raise ModelError("extraction copies a classifier; the model is a regressor.")
    pool = check_array(x_pool, "x_pool", dtype=np.float32)
    test = check_array(x_test, "x_test", dtype=np.float32)
    if pool.shape[1:] != test.shape[1:]:
        raise InputError(f"x_pool rows have shape {pool.shape[1:]} and x_test rows {test.shape[1:]}; pass rows of the "
                         "same kind (the attacker's pool and the held-out rows feed the same model).")
    if queries == "natural" and budgets[-1] > len(pool):
        raise ConfigError(f"extraction: the largest budget ({budgets[-1]}) exceeds the {len(pool)} rows of x_pool that "
                          "natural queries are drawn from; pass a larger pool, smaller budgets, or queries='random'.")
    classes = np.asarray(target.classes)
    rng = np.random.default_rng(seed)
    flat = pool.reshape(len(pool), -1)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    n_q = int(budgets[-1])
    if queries == "natural":
        xq = pool[rng.choice(len(pool), n_q, replace=False)]
    elif queries == "random":
        xq = rng.uniform(lo, hi, size=(n_q, flat.shape[1])).astype(np.float32).reshape((n_q, *pool.shape[1:]))
    else:
        xq = pool[rng.integers(0, len(pool), n_q)] + rng.normal(0, 1, (n_q, *pool.shape[1:])).astype(np.float32) * (
            0.1 * flat.std(axis=0).reshape(pool.shape[1:]))
        xq = np.clip(xq, lo.reshape(pool.shape[1:]), hi.reshape(pool.shape[1:])).astype(np.float32)
    start = target.n_queries
    proba = np.asarray(target.predict_proba(xq), dtype=np.float64)
    soft = proba if output == "scores" else np.eye(len(classes))[proba.argmax(axis=1)]
    test_pred = np.asarray(target.predict_proba(test)).argmax(axis=1)
    sent = target.n_queries - start
    y_idx = None
    if y_test is not None:
        from stalwart._validation import check_labels, labels_to_index

        y_idx = labels_to_index(check_labels(np.asarray(y_test), classes, "y_test"), classes)
        if len(y_idx) != len(test):
            raise InputError(f"y_test has {len(y_idx)} labels for {len(test)} rows of x_test; pass one per row.")
    mean = flat.mean(axis=0)
    std = np.where(flat.std(axis=0) > 0, flat.std(axis=0), 1.0)
    fid, fid_lo, fid_hi, acc = [], [], [], []
    net = None
    for i, b in enumerate(budgets):
        net = _train(lambda: _mlp(flat.shape[1], len(classes), mean, std, hidden), xq[:b], soft[:b], seed + i, epochs)
        copy = _predict(net, test)
        k = int(np.sum(copy == test_pred))
        low, high = wilson_interval(k, len(test))
        fid.append(k / len(test))
        fid_lo.append(float(low))
        fid_hi.append(float(high))
        if y_idx is not None:
            acc.append(float(np.mean(copy == y_idx)))
    notes = [f"{sent} rows sent to the target ({n_q} {queries} queries, {len(test)} held-out rows), "
             f"{'probabilities' if output == 'scores' else 'labels only'} returned"]
    transfer: dict[str, Any] = {}
    if transfer_eps is not None and net is not None:
        transfer = _transfer(net, target, test, test_pred, lo, hi, float(transfer_eps), seed)
        notes.append(f"transfer: PGD linf eps {transfer_eps:g} of each feature's range on the surrogate, sent to the "
                     f"target; {transfer['n']} held-out rows the target gets right and the surrogate attack broke")
    return ExtractionResult(
        budgets=tuple(int(b) for b in budgets), fidelity=tuple(fid), fidelity_low=tuple(fid_lo),
        fidelity_high=tuple(fid_hi), accuracy=tuple(acc) if y_idx is not None else None,
        target_accuracy=float(np.mean(test_pred == y_idx)) if y_idx is not None else None, queries=int(sent),
        query_kind=queries, output=output, n_test=len(test), transfer_rate=transfer.get("rate"),
        transfer_low=transfer.get("low"), transfer_high=transfer.get("high"), transfer_n=int(transfer.get("n", 0)),
        transfer_eps=None if transfer_eps is None else float(transfer_eps), notes=tuple(notes))


def _predict(net: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()


def _transfer(net: Any, target: Any, x: np.ndarray, target_pred: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              eps: float, seed: int) -> dict[str, Any]:
    """Share of the surrogate's adversarial examples that also fool the target."""
    from stalwart import attacks

    shape = x.shape[1:]
    flat = x.reshape(len(x), -1)  # the held-out rows may reach beyond the pool's range
    bounds = (np.minimum(lo, flat.min(axis=0)).reshape(shape), np.maximum(hi, flat.max(axis=0)).reshape(shape))
    threat = attacks.ThreatModel("linf", eps, bounds, unit="range")
    copy_pred = _predict(net, x)
    keep = np.flatnonzero(copy_pred == target_pred)  # the copy agrees with the target: attack from there
    if keep.size == 0:
        return {"n": 0}
    res = attacks.get("pgd", threat, steps=20, seed=seed).run(net, x[keep], target_pred[keep])
    broke_copy = np.flatnonzero(res.success)
    if broke_copy.size == 0:
        return {"n": 0}
    fooled = np.asarray(target.predict_proba(res.x_adv[broke_copy])).argmax(axis=1) != target_pred[keep][broke_copy]
    k, n = int(fooled.sum()), int(broke_copy.size)
    low, high = wilson_interval(k, n)
    return {"rate": k / n, "low": float(low), "high": float(high), "n": n}
