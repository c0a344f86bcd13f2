"""Ensembles as one model: averaged probabilities, averaged logits or a majority vote.

An :class:`Ensemble` is a :class:`~stalwart.models.Model`, so every check, attack and report takes
it. When every member has gradients (torch modules, scikit-learn models with exact mirrors) and the
ensemble averages (probabilities or logits), white-box attacks run through the average itself —
the adaptive attack on an ensemble; a vote has no gradient and is attacked black-box.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stalwart._validation import check_choice, param_error
from stalwart.errors import ModelError
from stalwart.models.base import Model

__all__ = ["Ensemble"]


class Ensemble(Model):
    """Several classifiers answering as one.

    Parameters
    ----------
    models : two or more classifiers (anything :func:`stalwart.wrap` takes) with the same classes
    combine : {"probabilities", "logits", "vote"}, default "probabilities"
        ``"probabilities"``: the (weighted) mean of the members' probabilities; ``"logits"``: the
        softmax of the mean of their log-probabilities (= of their logits: each member's softmax
        shift cancels); ``"vote"``: the share of (weighted) votes per class.
    weights : optional non-negative weights, one per member (normalised)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from stalwart.defend import Ensemble
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> ens = Ensemble([LogisticRegression().fit(x, y), DecisionTreeClassifier().fit(x, y)])
    >>> ens.predict(np.array([[0.2], [2.8]])).tolist()
    [0, 1]
    """

    def __init__(self, models: Sequence[Any], *, combine: str = "probabilities", weights: Any = None) -> None:
        from stalwart.models import wrap

        super().__init__()
        if isinstance(models, (str, bytes)) or not isinstance(models, Sequence) or len(models) < 2:
            raise param_error(self, "models", "a list of two or more classifiers", models)
        self.combine = check_choice(self, "combine", combine, ("probabilities", "logits", "vote"))
        members = [wrap(m) for m in models]
        for m in members:
            if m.task != "classification":
                raise ModelError(f"Ensemble members must be classifiers; {m.name} is a {m.task} model. Pass "
                                 "classifiers only.")
        known = [None if m.classes is None else list(np.asarray(m.classes).tolist()) for m in members]
        first = next((k for k in known if k is not None), None)
        if first is not None and any(k is not None and k != first for k in known):
            raise ModelError(f"Ensemble members must predict the same classes in the same order; got {known}. "
                             "Fit them on the same labels.")
        if weights is None:
            w = np.full(len(members), 1.0 / len(members))
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (len(members),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise param_error(self, "weights", f"{len(members)} non-negative numbers, not all 0", weights)
            w = w / w.sum()
        self.members = members
        self.weights = w
        self.classes = None if first is None else np.asarray(first)
        self.batch_size = min(int(getattr(m, "batch_size", 1024)) for m in members)
        self.verdict_draws = max(m.verdict_draws for m in members)  # a random member makes it random
        bounds = {m.input_bounds for m in members}
        self.input_bounds = bounds.pop() if len(bounds) == 1 else None

    @property
    def name(self) -> str:
        return f"Ensemble[{self.combine}: {', '.join(m.name for m in self.members)}]"

    def known_classes(self, x: Any) -> np.ndarray | None:
        if self.classes is None:
            found = [list(np.asarray(m.known_classes(x)).tolist()) for m in self.members]
            if any(f != found[0] for f in found):
                raise ModelError(f"Ensemble members predict different classes: {found}. Fit them on the same labels.")
            self.classes = np.asarray(found[0])
        return self.classes

    def _raw_predict(self, x: Any) -> np.ndarray:
        probs = [m.predict_proba(x) for m in self.members]
        if self.combine == "probabilities":
            return sum(w * p for w, p in zip(self.weights, probs))
        if self.combine == "logits":
            z = sum(w * np.log(np.clip(p, 1e-300, None)) for w, p in zip(self.weights, probs))
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        votes = np.zeros_like(probs[0])
        for w, p in zip(self.weights, probs):
            votes[np.arange(len(p)), p.argmax(axis=1)] += w
        return votes

    @property
    def differentiable(self) -> bool:
        return self.combine != "vote" and all(m.differentiable for m in self.members)

    @property
    def device(self) -> Any:
        return getattr(self.members[0], "device", None)

    def torch_logits(self, x):  # noqa: ANN001, ANN201 - torch is imported lazily
        """Logits of the combined prediction, differentiable through every member."""
        import torch

        if not self.differentiable:
            why = "a vote has no gradient" if self.combine == "vote" else \
                f"{', '.join(m.name for m in self.members if not m.differentiable)} gives no gradients"
            raise ModelError(f"{self.name} is black-box here ({why}); attack it with a black-box attack, or use "
                             "combine='probabilities' or 'logits' with members that have gradients.")
        self.n_queries += int(x.shape[0])
        logp = [torch.log_softmax(m.torch_logits(x), dim=1) for m in self.members]
        w = [float(v) for v in self.weights]
        if self.combine == "logits":
            return sum(wi * lp for wi, lp in zip(w, logp))
        return torch.logsumexp(torch.stack([lp + float(np.log(wi)) for wi, lp in zip(w, logp) if wi > 0]), dim=0)
