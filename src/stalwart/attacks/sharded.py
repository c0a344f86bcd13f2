"""One attack over many samples, split into shards that may run on other processes or machines.

``run_sharded(attack, model, x, y)`` cuts the samples into consecutive shards of ``shard_size``
(:func:`stalwart.execute.shard_slices`); shard ``i`` runs a copy of the attack whose seed is
:func:`stalwart.execute.shard_seeds` ``(attack.seed, n)[i]``, so the result depends on the seed
and the shard size only, never on the executor or how many workers it has. Up to one shard, the
run is exactly ``attack.run(model, x, y)`` in this process.

Attacks act on each sample on its own (a sample's outcome never depends on the other rows of its
batch, beyond the random stream it draws from), so the merged result is the concatenation of the
shards' results: success, distance, queries and adversarial inputs per sample, in input order.

A shard that raises is run again ``executor.retries`` times; one that keeps failing fails the
whole run with its own error (never a result on fewer samples). Bad input (an
:class:`~stalwart.errors.InputError` or :class:`~stalwart.errors.ConfigError`, which no retry can
fix) is raised without retries, as the unsharded run raises it; a model that fails while it is
attacked (a :class:`~stalwart.errors.ModelError`, perhaps out of memory) is retried.

>>> import numpy as np, torch
>>> from stalwart.attacks import FGSM, ThreatModel
>>> net = torch.nn.Linear(1, 2)  # class 1 when x > 0: a sample within eps of 0 can be flipped
>>> _ = net.weight.data.copy_(torch.tensor([[-1.0], [1.0]])), net.bias.data.zero_()
>>> x = np.linspace(-0.45, 0.45, 10, dtype=np.float32)[:, None]
>>> res = run_sharded(FGSM(ThreatModel("linf", 0.1, (-1.0, 1.0))), net, x, (x[:, 0] > 0).astype(int),
...                   shard_size=4)
>>> res.robust_accuracy, res.success.tolist()[3:7]
(0.8, [False, True, True, False])
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from stalwart._validation import check_labels, check_lengths, param_error
from stalwart.attacks._common import classifier, numeric_batch
from stalwart.attacks.base import Attack, AttackResult
from stalwart.errors import ConfigError, InputError

if TYPE_CHECKING:
    from stalwart.execute import Executor

__all__ = ["run_sharded"]

def _with_seed(attack: Attack, seed: int) -> Attack:
    """A copy of ``attack`` drawing from ``seed`` (the original is left as it is)."""
    other = copy.copy(attack)
    other.seed = int(seed)
    return other


def run_sharded(attack: Attack, model: Any, x: Any, y: Any, *, targeted: Any = None,
                executor: Executor | str | None = None, shard_size: int | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> AttackResult:
    """``attack.run(model, x, y)`` over shards of ``shard_size`` samples, on ``executor``.

    Parameters
    ----------
    attack : a numeric :class:`~stalwart.attacks.Attack` (text attacks are not sharded)
    model, x, y, targeted : as for :meth:`Attack.run`
    executor : "local" (default: in this process), "process", "ray" or an
        :class:`~stalwart.execute.Executor`; the result does not depend on it
    shard_size : samples per shard (default :data:`stalwart.execute.DEFAULT_SHARD_SIZE`)
    progress : ``progress(stage, done, total)`` as shards finish, and ``("done", n, n)`` at the end

    Returns
    -------
    AttackResult over every sample, in input order; ``time_s`` is the run's wall time.
    """
    from stalwart.execute import DEFAULT_SHARD_SIZE, resolve_executor, shard_seeds, shard_slices

    if not isinstance(attack, Attack):
        raise param_error("run_sharded", "attack", "a numeric Attack (attacks.get('pgd', threat), ...)", attack)
    if progress is not None and not callable(progress):
        raise param_error("run_sharded", "progress", "None or a callable progress(stage, done, total)", progress)
    runner = resolve_executor(executor)
    size = DEFAULT_SHARD_SIZE if shard_size is None else shard_size
    model = classifier(attack.name, model)
    if attack.white_box and not model.differentiable:
        model.torch_logits(None)  # raises ModelError with the explanation
    xs, ys = numeric_batch(model, x, y, attack.threat)
    slices = shard_slices(len(ys), size)
    tgt = None
    if targeted is not None:
        tgt = check_labels(targeted, model.classes, "targeted")
        check_lengths("x", xs, "targeted", tgt)
    if len(slices) == 1:  # the unsharded run, in this process whatever the executor
        if progress is not None:
            progress(attack.name, 0, 1)
        res = attack.run(model, xs, ys, targeted=tgt)
        if progress is not None:
            progress("done", 1, 1)
        return res
    start = time.perf_counter()
    seeds = shard_seeds(attack.seed, len(slices))
    items = [(xs[s], ys[s], None if tgt is None else tgt[s], sd) for s, sd in zip(slices, seeds)]
    label = f"{attack.name} ({len(slices)} shards of <= {size} samples)"
    if progress is not None:
        progress(label, 0, len(slices))
    parts = runner.map(_attack_shard, items, shared=(attack, model),
                       on_done=None if progress is None else (lambda k: progress(label, k, len(slices))))
    for part in parts:  # bad input, which a retry cannot fix: raised as the unsharded run raises it
        if isinstance(part, BaseException):
            raise part
    if progress is not None:
        progress("done", len(slices), len(slices))
    return _merge_results(parts, time_s=time.perf_counter() - start, params=attack.params())


def _attack_shard(shared: tuple[Attack, Any], item: tuple) -> AttackResult | InputError | ConfigError:
    """One shard: the attack with the shard's seed on the shard's samples (a worker runs this)."""
    attack, model = shared
    xs, ys, tgt, seed = item
    try:
        return _with_seed(attack, seed).run(model, xs, ys, targeted=tgt)
    except (InputError, ConfigError) as exc:  # the input's fault: returned, so the executor does not retry it
        return exc


def _merge_results(parts: list[AttackResult], *, time_s: float, params: dict[str, Any]) -> AttackResult:
    """The shards' results as one, samples in shard order (the per-sample arrays concatenated)."""
    first = parts[0]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return replace(first, x_adv=cat("x_adv"), y=cat("y"), pred_clean=cat("pred_clean"), pred_adv=cat("pred_adv"),
                   success=cat("success"), distance=cat("distance"), queries=cat("queries"), time_s=float(time_s),
                   params=dict(params))
