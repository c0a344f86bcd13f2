"""Defensive distillation (Papernot et al., 2016), and why it is evaluated on logits.

A student is trained on the teacher's probabilities at a high temperature ``T``; deployed at
temperature 1, its logits are about ``T`` times larger, its softmax saturates in float32 and the
gradient of its *probabilities* vanishes. Attacks that follow those probabilities fail, so the
defence looks robust; attacks on the logits (Carlini & Wagner, 2016) are not stopped. stalwart
attacks a :class:`DistilledModel` on its logits; :meth:`DistilledModel.non_adaptive` is the same
student seen through its probabilities, which the adversarial check runs beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from stalwart._validation import check_array, check_positive
from stalwart.defend._modules import reinitialise, trainable_copy
from stalwart.errors import ModelError
from stalwart.models.torch import TorchModel

__all__ = ["distill", "DistilledModel", "DistillationResult"]


class DistilledModel(TorchModel):
    """A distilled student, attacked on its logits; :meth:`non_adaptive` gives the view through
    its (saturated) probabilities that a plain attack would follow."""

    def non_adaptive(self) -> TorchModel:
        return TorchModel(torch.nn.Sequential(self.module, torch.nn.Softmax(dim=1)), classes=self.classes,
                          output="probabilities")

    @property
    def name(self) -> str:
        return f"{super().name} (distilled)"


@dataclass
class DistillationResult:
    model: DistilledModel
    temperature: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The temperature and the per-epoch losses of teacher and student (JSON-ready)."""
        return {"temperature": self.temperature, "history": [dict(h) for h in self.history]}


def distill(net: Any, x: Any, y: Any, *, temperature: float = 20.0, epochs: int = 10, batch_size: int = 128,
            lr: float = 1e-3, seed: int = 0) -> DistillationResult:
    """Defensive distillation as Papernot et al. (2016) describe it: a teacher of ``net``'s
    architecture trained at ``temperature`` on the labels, then a student of the same architecture
    trained at that temperature on the teacher's probabilities; the student is deployed at
    temperature 1. ``net`` (a torch module or a :class:`~stalwart.models.TorchModel`) gives the
    architecture and is not changed; ``y`` holds class indices ``0..k-1``.
    """
    from stalwart._validation import check_labels, check_lengths

    module = net.module if isinstance(net, TorchModel) else net
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"distillation needs a torch module for its architecture; got {type(net).__name__}. Pass a "
                         "torch.nn.Module or stalwart.wrap(module).")
    check_positive("distill", "temperature", temperature)
    check_positive("distill", "epochs", epochs, integer=True)
    check_positive("distill", "batch_size", batch_size, integer=True)
    check_positive("distill", "lr", lr)
    xs = torch.as_tensor(check_array(x, "x", dtype=np.float32))
    ys = check_labels(y, None, "y")
    check_lengths("x", xs, "y", ys)
    if ys.dtype.kind not in "iu" or ys.min() < 0:
        from stalwart.errors import InputError

        raise InputError("y must hold integer class indices 0..k-1; map labels to indices first.")
    yt = torch.as_tensor(ys.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history: list[dict[str, float]] = []

    def fresh() -> torch.nn.Module:
        return reinitialise(trainable_copy(module))

    def train(model: torch.nn.Module, target: torch.Tensor, stage: str) -> None:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(xs), generator=gen)
            total = 0.0
            for i in range(0, len(xs), batch_size):
                idx = order[i:i + batch_size]
                logp = torch.log_softmax(model(xs[idx]) / temperature, dim=1)
                if target.ndim == 1:  # hard labels
                    loss = F.nll_loss(logp, target[idx])
                else:
                    loss = F.kl_div(logp, target[idx], reduction="batchmean")
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            history.append({"stage": stage, "epoch": epoch + 1, "loss": total / len(xs)})
        model.eval()

    teacher = fresh()
    train(teacher, yt, "teacher")
    with torch.no_grad():
        soft = torch.softmax(teacher(xs) / temperature, dim=1)
    student = fresh()
    train(student, soft, "student")
    return DistillationResult(model=DistilledModel(student), temperature=float(temperature), history=history)
