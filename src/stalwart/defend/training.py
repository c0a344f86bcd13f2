"""Adversarial training for torch classifiers: PGD-AT, TRADES and fast FGSM training.

- ``"pgd"`` (Madry et al., 2018): minimise the cross-entropy on PGD examples (random start,
  ``steps`` steps of ``2.5 * eps / steps``).
- ``"trades"`` (Zhang et al., 2019): cross-entropy on clean inputs plus ``beta`` times the KL
  divergence between the clean and the adversarial prediction, the adversarial input maximising
  that KL from a small random start.
- ``"noise"``: cross-entropy under Gaussian noise of standard deviation ``threat.eps`` (an l2
  threat), the training Cohen et al. (2019) use so that randomized smoothing at that sigma keeps
  the model accurate; validation still reports PGD robust accuracy at eps.
- ``"fast"`` (Wong, Rice & Kolter, 2020): one FGSM step of ``1.25 * eps`` from a uniform random
  start. Fast training can overfit catastrophically (robust accuracy against PGD collapses within
  an epoch while FGSM accuracy soars): after every epoch PGD robust accuracy is measured on a
  held-out batch, and a collapse (below half the best seen) restores the best weights and stops.

Every epoch records clean and robust (PGD, ``val_steps`` steps) accuracy on the validation data
and its time (``time_s``; ``train_time_s`` is the part spent training, without the validation);
with ``patience`` training stops when robust validation accuracy has not improved for that many
epochs, and the best weights are kept. ``eps_warmup`` epochs grow eps linearly from 0. A
``checkpoint`` file (written atomically each epoch) lets a run that was stopped resume where it
left off and end with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from stalwart._validation import (
    check_array,
    check_choice,
    check_labels,
    check_lengths,
    check_param,
    check_positive,
)
from stalwart.errors import ConfigError, InputError, ModelError

if TYPE_CHECKING:
    from stalwart.attacks._common import Feasible

__all__ = ["adversarial_training", "TrainingResult"]


@dataclass
class TrainingResult:
    """What training did: one row per epoch, the epoch whose weights were kept, why it stopped."""

    method: str
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped: str = "epochs done"
    time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "history": self.history, "best_epoch": self.best_epoch,
                "stopped": self.stopped, "time_s": self.time_s}


def adversarial_training(net: torch.nn.Module, x: Any, y: Any, threat: Any, *, method: str = "pgd",
                         epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, optimizer: Any = None,
                         steps: int = 10, beta: float = 6.0, eps_warmup: int = 0, x_val: Any = None,
                         y_val: Any = None, val_steps: int = 10, patience: int | None = None,
                         checkpoint: str | os.PathLike[str] | None = None, seed: int = 0,
                         progress: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainingResult:
    """Train ``net`` in place against ``threat`` (a :class:`~stalwart.attacks.ThreatModel`, linf
    or l2, raw units) and return the :class:`TrainingResult`; see the module docstring.

    ``x``/``y``: training inputs and integer class labels ``0..k-1``; ``x_val``/``y_val``: held-out
    data for the per-epoch robust accuracy (default: the last 10% of the training data, not
    trained on). ``optimizer``: a torch optimizer over ``net``'s parameters (default Adam, ``lr``).
    """
    from stalwart.attacks import ThreatModel

    if not isinstance(net, torch.nn.Module):
        raise ModelError(f"adversarial training needs a torch module to update; got {type(net).__name__}. Train "
                         "other models with stalwart.defend.AugmentedClassifier (natural perturbations).")
    if not isinstance(threat, ThreatModel) or threat.norm not in ("linf", "l2") or threat.unit != "raw":
        raise ConfigError("adversarial_training(threat=...) must be a ThreatModel with norm 'linf' or 'l2' and eps in "
                          "the data's own units (unit='raw'); e.g. ThreatModel('linf', 0.1, (0.0, 1.0)).")
    check_choice("adversarial_training", "method", method, ("pgd", "trades", "fast", "noise"))
    if method == "noise" and threat.norm != "l2":
        raise ConfigError("method='noise' trains under Gaussian noise for randomized smoothing, whose radii are l2: "
                          "pass ThreatModel('l2', sigma, bounds) with eps = the noise sigma.")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("steps", steps), ("val_steps", val_steps)):
        check_positive("adversarial_training", name, value, integer=True)
    check_positive("adversarial_training", "lr", lr)
    check_positive("adversarial_training", "beta", beta, strict=False)
    check_param("adversarial_training", "eps_warmup", eps_warmup, isinstance(eps_warmup, int) and eps_warmup >= 0,
                "an integer >= 0 (epochs over which eps grows from 0)")
    if patience is not None:
        check_positive("adversarial_training", "patience", patience, integer=True)
    xs = torch.as_tensor(check_array(x, "x", dtype=np.float32))
    ys = check_labels(y, None, "y")
    check_lengths("x", xs, "y", ys)
    if ys.dtype.kind not in "iu" or ys.min() < 0:
        raise InputError("y must hold integer class indices 0..k-1 for training; map labels to indices first.")
    yt = torch.as_tensor(ys.astype(np.int64))
    if x_val is None:
        n_val = max(len(xs) // 10, 1)
        if len(xs) - n_val < 2:
            raise InputError("too little data to hold out validation rows; pass x_val and y_val, or more rows.")
        xs, xv, yt, yv = xs[:-n_val], xs[-n_val:], yt[:-n_val], yt[-n_val:]
    else:
        xv = torch.as_tensor(check_array(x_val, "x_val", dtype=np.float32))
        yv_arr = check_labels(y_val, None, "y_val")
        check_lengths("x_val", xv, "y_val", yv_arr)
        yv = torch.as_tensor(yv_arr.astype(np.int64))
    opt = optimizer if optimizer is not None else torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    result = TrainingResult(method=method)
    best_state, best_robust, start_epoch, no_gain = copy.deepcopy(net.state_dict()), -1.0, 0, 0
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=False)
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        result.history, result.best_epoch = saved["history"], saved["best_epoch"]
        best_state, best_robust, start_epoch, no_gain = saved["best_state"], saved["best_robust"], \
            saved["epoch"], saved["no_gain"]
    val_box = threat.constraints(xv[:1])  # the constraints as tensors, built once, not once per attack step
    start = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        eps = threat.eps * min(1.0, (epoch + 1) / eps_warmup) if eps_warmup else threat.eps
        box = replace(threat, eps=eps).constraints(xs[:1]) if eps != threat.eps else val_box
        t_epoch = time.perf_counter()
        order = torch.randperm(len(xs), generator=gen)
        total = torch.zeros(())
        for i in range(0, len(xs), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = xs[idx], yt[idx]
            loss = _batch_loss(net, xb, yb, box, method, steps, beta, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        t_train = time.perf_counter() - t_epoch
        clean, robust = _validate(net, xv, yv, val_box, val_steps, gen)
        row = {"epoch": epoch + 1, "eps": float(eps), "loss": float(total) / len(xs), "val_clean_accuracy": clean,
               "val_robust_accuracy": robust, "time_s": time.perf_counter() - t_epoch, "train_time_s": t_train}
        result.history.append(row)
        if progress is not None:
            progress(epoch + 1, epochs, row)
        full_eps = not eps_warmup or epoch + 1 >= eps_warmup
        if full_eps and robust > best_robust:
            best_robust, best_state, result.best_epoch, no_gain = robust, copy.deepcopy(net.state_dict()), epoch + 1, 0
        elif full_eps:
            no_gain += 1
        if method == "fast" and full_eps and best_robust > 0 and robust < 0.5 * best_robust:
            result.stopped = (f"catastrophic overfitting at epoch {epoch + 1}: PGD robust accuracy on held-out data "
                              f"fell to {robust:.3f} from {best_robust:.3f}; the weights of epoch "
                              f"{result.best_epoch} are kept")
            break
        if patience is not None and no_gain >= patience:
            result.stopped = f"no robust-accuracy gain for {patience} epoch(s); the weights of epoch " \
                             f"{result.best_epoch} are kept"
            break
        if path is not None:
            _save_atomic(path, {"net": net.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                "history": result.history, "best_epoch": result.best_epoch,
                                "best_state": best_state, "best_robust": best_robust, "epoch": epoch + 1,
                                "no_gain": no_gain})
    if result.best_epoch:
        net.load_state_dict(best_state)
    net.eval()
    result.time_s = time.perf_counter() - start
    return result


def _project(box: Feasible, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x_adv`` projected into the threat model, in ``x``'s memory layout: an attack step's result
    can come out with other strides than the batch (a one-channel image batch is both NCHW and
    channels-last for torch), and the network would then run its passes in the slower layout."""
    x_adv = box.project(x_adv, x)
    return x_adv if x_adv.stride() == x.stride() else torch.empty_like(x).copy_(x_adv)


def _step(grad: torch.Tensor, norm: str, size: float) -> torch.Tensor:
    if norm == "linf":
        return size * grad.sign()
    g = grad.reshape(len(grad), -1)
    return size * (g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)).reshape(grad.shape)


def _random_start(x: torch.Tensor, norm: str, eps: float, gen: torch.Generator) -> torch.Tensor:
    if norm == "linf":
        return x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    d = torch.randn(x.shape, generator=gen)
    d = d / d.reshape(len(d), -1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (x.ndim - 1)))
    return x + d * eps * torch.rand(len(x), generator=gen).reshape(-1, *([1] * (x.ndim - 1)))


def _pgd(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, box: Feasible, steps: int,
         gen: torch.Generator, objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
         start: torch.Tensor | None = None) -> torch.Tensor:
    """``steps`` ascent steps of ``objective`` (default cross-entropy) within the ball."""
    if box.eps <= 0:
        return x
    x_adv = _project(box, start if start is not None else _random_start(x, box.norm, box.eps, gen), x)
    size = 2.5 * box.eps / steps
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            z = net(x_adv)
            loss = F.cross_entropy(z, y, reduction="sum") if objective is None else objective(z)
            (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = _project(box, x_adv.detach() + _step(grad, box.norm, size), x)
    return x_adv.detach()


def _batch_loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, box: Feasible, method: str,
                steps: int, beta: float, gen: torch.Generator) -> torch.Tensor:
    eps = box.eps
    if method == "pgd":
        net.eval()
        x_adv = _pgd(net, x, y, box, steps, gen)
        net.train()
        return F.cross_entropy(net(x_adv), y)
    if method == "noise":  # Gaussian data augmentation, for randomized smoothing (Cohen et al., 2019)
        net.train()
        return F.cross_entropy(net(x + eps * torch.randn(x.shape, generator=gen)), y)
    if method == "fast":
        net.eval()
        x0 = _project(box, _random_start(x, box.norm, eps, gen), x).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(F.cross_entropy(net(x0), y, reduction="sum"), x0)
        x_adv = _project(box, x0.detach() + _step(grad, box.norm, 1.25 * eps), x)
        net.train()
        return F.cross_entropy(net(x_adv), y)
    net.eval()  # TRADES
    with torch.no_grad():
        p_clean = torch.softmax(net(x), dim=1)
    start = x + 0.001 * torch.randn(x.shape, generator=gen)

    def kl(z: torch.Tensor) -> torch.Tensor:
        return F.kl_div(torch.log_softmax(z, dim=1), p_clean, reduction="sum")
    x_adv = _pgd(net, x, y, box, steps, gen, objective=kl, start=start)
    net.train()
    z_clean = net(x)
    robust = F.kl_div(torch.log_softmax(net(x_adv), dim=1), torch.softmax(z_clean, dim=1), reduction="batchmean")
    return F.cross_entropy(z_clean, y) + beta * robust


def _validate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, box: Feasible, steps: int,
              gen: torch.Generator) -> tuple[float, float]:
    net.eval()
    with torch.no_grad():
        clean = float((net(x).argmax(1) == y).float().mean())
    x_adv = _pgd(net, x, y, box, steps, gen)
    with torch.no_grad():
        robust = float((net(x_adv).argmax(1) == y).float().mean())
    return clean, robust


def _save_atomic(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.stalwart-tmp.{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
