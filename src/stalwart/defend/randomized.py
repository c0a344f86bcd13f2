"""Randomized input transforms as a defended model, attacked with EOT (Athalye et al., 2018).

:class:`RandomizedModel` answers ``model(t(x))`` with a fresh random transform ``t`` on every call
(random noise, random resizing and padding: Xie et al., 2018). A gradient attack that follows the
gradient of one draw chases noise, and its adversarial input fools that draw but not the next, so
the defence looks robust. **Expectation over Transformation** (EOT) attacks the expected model
instead: each gradient is the average over ``eot`` draws. The model exposes that averaged gradient
itself (``torch_logits`` returns the mean logits of ``eot`` draws, so the attack's loss and its
gradient are those of the averaged logits), and every white-box attack and
:func:`stalwart.attacks.evaluate` becomes the adaptive attack without an option of its own;
:meth:`RandomizedModel.non_adaptive` (``eot=1``) is the plain attack, shown beside it in reports.
Predictions (``predict``, ``predict_proba``) are the defence as deployed: one draw per call.

Verdicts are not taken on one draw. Whether a sample is classified correctly, clean or at an
adversarial input, is judged by every attack, :func:`stalwart.attacks.evaluate` and the checks by
majority vote over ``verdict_draws`` calls (:func:`stalwart.attacks.base.predicted_index`). A sample
is then broken when the attack moves the answer the defence gives most often, not when one unlucky
draw misclassifies it; and a model whose randomness never changes its answer gets exactly its
deterministic twin's robust accuracy.

:class:`EOT` gives the same averaged gradient to any model whose ``torch_logits`` is random (a
network with its own noise layer or test-time dropout).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from stalwart._validation import check_param, check_positive, check_seed, param_error
from stalwart.defend._params import ParamsRepr
from stalwart.errors import InputError, ModelError
from stalwart.models.base import Model

__all__ = ["RandomTransform", "RandomNoise", "RandomResizePad", "RandomizedModel", "EOT"]


class RandomTransform(ParamsRepr, ABC):
    """A random input transform on float tensors within ``bounds``; draws from ``generator`` only."""

    name: ClassVar[str] = ""

    @abstractmethod
    def __call__(self, x: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
        """``x`` transformed by one draw (differentiable in ``x``)."""


class RandomNoise(RandomTransform):
    """Gaussian noise of standard deviation ``sigma`` (in the data's units), clipped to the bounds."""

    name = "random_noise"

    def __init__(self, sigma: float = 0.1) -> None:
        check_positive(self, "sigma", sigma)
        check_param(self, "sigma", sigma, bool(np.isfinite(float(sigma))), "a finite number > 0")
        self.sigma = float(sigma)

    def __call__(self, x: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
        return (x + self.sigma * noise).clamp(*bounds)


class RandomResizePad(RandomTransform):
    """Xie et al. (2018): shrink each image (N x C x H x W) by 0 to ``max_shrink`` pixels (bilinear),
    then pad it back to H x W at a random offset with the lower bound; one draw per image."""

    name = "random_resize_pad"

    def __init__(self, max_shrink: int = 2) -> None:
        check_param(self, "max_shrink", max_shrink, isinstance(max_shrink, (int, np.integer))
                    and not isinstance(max_shrink, bool) and max_shrink >= 1, "an integer >= 1 (pixels)")
        self.max_shrink = int(max_shrink)

    def __call__(self, x: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
        if x.ndim != 4:
            raise InputError(f"RandomResizePad works on images N x C x H x W; got shape {tuple(x.shape)}. Use "
                             "RandomNoise for tables.")
        h, w = x.shape[-2:]
        if min(h, w) <= self.max_shrink:
            raise InputError(f"RandomResizePad(max_shrink={self.max_shrink}) needs images larger than that; got "
                             f"{h} x {w}. Lower max_shrink.")
        n = x.shape[0]
        cuts = torch.randint(0, self.max_shrink + 1, (n,), generator=generator)
        shift = torch.rand((n, 2), generator=generator)
        out = torch.full_like(x, float(bounds[0]))
        for cut in cuts.unique().tolist():  # at most max_shrink + 1 groups: one resize per size drawn
            idx = (cuts == cut).nonzero().squeeze(1)
            part = x[idx.to(x.device)]
            if cut:
                part = F.interpolate(part, size=(h - cut, w - cut), mode="bilinear", align_corners=False)
            # each image at its own offset in [0, cut]: pad by cut on every side, crop h x w from it
            padded = F.pad(part, (cut, cut, cut, cut), value=float(bounds[0]))
            offset = (shift[idx] * (cut + 1)).long().clamp(max=cut).to(x.device)
            rows = offset[:, :1] + torch.arange(h, device=x.device)  # k x h
            cols = offset[:, 1:] + torch.arange(w, device=x.device)  # k x w
            k = len(idx)
            out[idx.to(x.device)] = padded[torch.arange(k, device=x.device)[:, None, None, None],
                                           torch.arange(x.shape[1], device=x.device)[None, :, None, None],
                                           rows[:, None, :, None], cols[:, None, None, :]]
        return out


def _check_draws(owner: object, name: str, value: Any) -> int:
    check_positive(owner, name, value, integer=True)
    check_param(owner, name, value, int(value) <= 1024, "an integer from 1 to 1024 (8 to 32 is usual)")
    return int(value)


class _Wrapped(Model):
    """What both wrappers pass through from the model they wrap."""

    base: Model

    def known_classes(self, x: Any) -> np.ndarray | None:
        self.classes = self.base.known_classes(x)
        return self.classes

    @property
    def differentiable(self) -> bool:
        return self.base.differentiable

    @property
    def device(self) -> Any:
        return getattr(self.base, "device", None)

    @property
    def logits_from_probabilities(self) -> bool:
        return self.base.logits_from_probabilities

    def _adopt(self, base: Model) -> None:
        self.base = base
        self.task, self.classes, self.output_kind = base.task, base.classes, base.output_kind
        self.batch_size = base.batch_size


class RandomizedModel(_Wrapped):
    """``model(t(x))`` with a fresh draw of each random transform on every call (applied in order).

    Parameters
    ----------
    model : the classifier to defend (anything :func:`stalwart.wrap` takes)
    transforms : one :class:`RandomTransform` or a list, applied in order
    bounds : the inputs' valid range (lower, upper); default the model's declared range, else (0, 1)
    eot : int, default 16
        Draws averaged in each gradient (EOT; see the module doc). 1 is the plain attack.
    verdict_draws : int, default 32
        Draws that vote in each verdict (clean and adversarial accuracy: the class predicted most
        often counts); more draws decide samples near a tie more reliably, at one prediction each.
    seed : int, default 0
        Seeds the draws; the model's calls then follow one reproducible sequence.

    Examples
    --------
    >>> import torch
    >>> from stalwart.defend import RandomizedModel, RandomNoise
    >>> net = torch.nn.Linear(4, 3)
    >>> defended = RandomizedModel(net, RandomNoise(0.1), eot=8)
    >>> _ = defended.torch_logits(torch.zeros(2, 4))
    >>> defended.n_queries, defended.non_adaptive().eot   # 2 inputs x 8 draws
    (16, 1)
    >>> defended.verdict_draws   # accuracy is judged by majority vote over 32 draws
    32
    """

    def __init__(self, model: Any, transforms: Any, *, bounds: tuple[float, float] | None = None, eot: int = 16,
                 verdict_draws: int = 32, seed: int = 0) -> None:
        from stalwart.models import wrap

        super().__init__()
        base = wrap(model)
        if base.task != "classification":
            raise ModelError(f"randomized transforms defend classifiers; {base.name} is a {base.task} model. Pass a "
                             "classifier.")
        items = [transforms] if isinstance(transforms, RandomTransform) else transforms
        if not isinstance(items, Sequence) or not items or not all(isinstance(t, RandomTransform) for t in items):
            raise param_error(self, "transforms", "a RandomTransform (RandomNoise(0.1), RandomResizePad(2)) or a "
                              "list of them", transforms)
        bounds = bounds if bounds is not None else (base.input_bounds or (0.0, 1.0))
        ok = isinstance(bounds, (tuple, list)) and len(bounds) == 2 and all(np.isfinite(bounds)) and \
            bounds[0] < bounds[1]
        check_param(self, "bounds", bounds, ok, "a pair (lower, upper) of finite numbers with lower < upper")
        self.eot = _check_draws(self, "eot", eot)
        self.verdict_draws = _check_draws(self, "verdict_draws", verdict_draws)
        self.seed = check_seed(self, seed)
        self._adopt(base)
        self.transforms = list(items)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.input_bounds = self.bounds
        self._generator = torch.Generator().manual_seed(self.seed)

    @property
    def name(self) -> str:
        return f"{self.base.name} + {' + '.join(t.name for t in self.transforms)}"

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through one draw of every transform."""
        for t in self.transforms:
            x = t(x, self.bounds, self._generator)
        return x

    def _raw_predict(self, x: Any) -> np.ndarray:
        t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: the input may be read-only
        with torch.no_grad():
            moved = self.transform(t).numpy()
        return self.base.predict_proba(moved)

    def non_adaptive(self) -> RandomizedModel:
        """The same defence attacked through one draw per gradient (the plain attack)."""
        return RandomizedModel(self.base, self.transforms, bounds=self.bounds, eot=1,
                               verdict_draws=self.verdict_draws, seed=self.seed)

    def torch_logits(self, x):  # noqa: ANN001, ANN201
        self.n_queries += int(x.shape[0]) * self.eot
        total = None
        for _ in range(self.eot):
            z = self.base.torch_logits(self.transform(x))
            total = z if total is None else total + z
        return total / self.eot


class EOT(_Wrapped):
    """Expectation over Transformation for a model whose ``torch_logits`` is random: each call
    returns the mean logits of ``draws`` calls, so attacks follow the averaged gradient.
    Predictions are the model's own (one call); verdicts are a majority vote over
    ``verdict_draws`` calls (see the module doc)."""

    def __init__(self, model: Any, draws: int = 16, *, verdict_draws: int = 32) -> None:
        from stalwart.models import wrap

        super().__init__()
        base = wrap(model)
        if not base.differentiable:
            raise ModelError(f"EOT averages gradients, and {base.name} has none. Pass a differentiable model "
                             "(a torch network), or attack this one with a black-box attack.")
        self.draws = _check_draws(self, "draws", draws)
        self.verdict_draws = _check_draws(self, "verdict_draws", verdict_draws)
        self._adopt(base)
        self.input_bounds = base.input_bounds

    @property
    def name(self) -> str:
        return f"EOT({self.base.name}, draws={self.draws})"

    def _raw_predict(self, x: Any) -> np.ndarray:
        return self.base.predict_proba(x)

    def non_adaptive(self) -> EOT:
        """One call per gradient (the plain attack), judged like this model."""
        return EOT(self.base, 1, verdict_draws=self.verdict_draws)

    def torch_logits(self, x):  # noqa: ANN001, ANN201
        self.n_queries += int(x.shape[0]) * self.draws
        return torch.stack([self.base.torch_logits(x) for _ in range(self.draws)]).mean(dim=0)
