"""Per-sample attack losses on logits, shared by the white-box attacks.

Every function takes logits of shape (n, k) and class indices of shape (n,) and returns one value
per sample. They are written so that the attacker *maximises* them (``margin`` is the exception:
it is the signed logit margin of a class, and the callers choose its sign).

- :func:`cross_entropy` — the usual untargeted loss; scale-dependent.
- :func:`margin` — ``z_c - max_{j != c} z_j`` (Carlini & Wagner, 2017): > 0 iff ``c`` is predicted.
- :func:`dlr` — Difference of Logits Ratio (Croce & Hein, 2020): the margin divided by the spread
  of the top logits, so it is invariant to shifting and rescaling the logits (needs >= 3 classes).
- :func:`targeted_dlr` — its targeted form (needs >= 4 classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cross_entropy", "dlr", "margin", "targeted_dlr"]

_TINY = 1e-12  # the published denominator guard


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample's logits against class ``y``."""
    return F.cross_entropy(logits, y, reduction="none")


def margin(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """Logit of ``cls`` minus the largest other logit (> 0 iff ``cls`` is predicted)."""
    own = logits.gather(1, cls[:, None]).squeeze(1)
    other = logits.scatter(1, cls[:, None], float("-inf")).amax(dim=1)
    return own - other


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Untargeted DLR loss ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)``.

    ``pi`` sorts the logits in decreasing order. Positive iff the sample is misclassified.
    Requires at least 3 classes.
    """
    if logits.shape[1] < 3:
        raise ValueError(f"the DLR loss needs at least 3 classes; got logits of shape {tuple(logits.shape)}")
    top = logits.topk(3, dim=1).values
    return -margin(logits, y) / (top[:, 0] - top[:, 2] + _TINY)


def targeted_dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR loss ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)``.

    Requires at least 4 classes.
    """
    if logits.shape[1] < 4:
        raise ValueError(f"the targeted DLR loss needs at least 4 classes; got logits of shape "
                         f"{tuple(logits.shape)}")
    top = logits.topk(4, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + _TINY)
