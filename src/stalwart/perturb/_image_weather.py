"""Weather corruptions that need no image assets: fog from a plasma fractal.

Brightness, the third asset-free weather corruption of ImageNet-C, lives in ``image.py``.
"""

from __future__ import annotations

import numpy as np

from stalwart.perturb._image_base import SizedImagePerturbation, Tensor, tensor_like
from stalwart.perturb.base import register

__all__ = ["Fog", "plasma_fractal"]


def plasma_fractal(n: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` diamond-square height maps of side ``size`` (a power of two), scaled to [0, 1].

    The midpoints of each level get the mean of their neighbours plus uniform noise whose
    amplitude falls by ``decay ** 2`` per level (ImageNet-C's ``plasma_fractal``, wrapping at the
    borders). All ``n`` maps are built together, one numpy operation per level. The uniform draws
    do not depend on ``decay``.
    """
    m = np.zeros((n, size, size))
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corner = m[:, 0::step, 0::step]
        square = corner + np.roll(corner, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        m[:, half::step, half::step] = square / 4 + wibble**2 * rng.uniform(-1.0, 1.0, square.shape)
        centre, corner = m[:, half::step, half::step], m[:, 0::step, 0::step]
        across = centre + np.roll(centre, 1, axis=1) + corner + np.roll(corner, -1, axis=2)
        m[:, 0::step, half::step] = across / 4 + wibble**2 * rng.uniform(-1.0, 1.0, across.shape)
        down = centre + np.roll(centre, 1, axis=2) + corner + np.roll(corner, -1, axis=1)
        m[:, half::step, 0::step] = down / 4 + wibble**2 * rng.uniform(-1.0, 1.0, down.shape)
        step //= 2
        wibble /= decay
    m -= m.min(axis=(1, 2), keepdims=True)
    top = m.max(axis=(1, 2), keepdims=True)
    return m / np.where(top > 0, top, 1.0)


@register
class Fog(SizedImagePerturbation):
    """Fog: a plasma-fractal haze added to the image, then rescaled to keep its maximum.

    ``out = (x + c * haze) * m / (m + c)`` with ``m`` the image's maximum and ``haze`` a
    diamond-square fractal in [0, 1] whose roughness falls with ``decay`` (one per image, the same
    in every channel, and the same draws at every severity). ``c`` and ``decay`` are ratios: the
    CIFAR-10-C values at 32 px and below, ImageNet-C at 224 px and above, geometric in between.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c at 32 px             0.2    0.5    0.75   1      1.5
    decay at 32 px         3      3      2.5    2      1.75
    c at 224 px            1.5    2      2.5    2.5    3
    decay at 224 px        2      2      1.7    1.5    1.4
    ====================  =====  =====  =====  =====  =====

    Parameters
    ----------
    constants : {"auto", "imagenet", "cifar"}, default "auto"
        ``"auto"``: the table above, scaled to the image size. ``"imagenet"``: the 224 px row at every
        size (the published ImageNet-C constants, as imagecorruptions applies them), for numbers
        comparable with ImageNet-C results; ``"cifar"``: the 32 px row at every size.
    """

    name = "fog"
    description = "Plasma-fractal fog (ImageNet-C)"
    small: tuple[tuple[float, float], ...] = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))
    large: tuple[tuple[float, float], ...] = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))

    def params_at(self, severity: int, size: int) -> tuple[float, float]:
        """``(c, decay)`` at ``severity`` for images of side ``size``."""
        c, decay = (float(self._table(tuple(col), tuple(big), size, lengths=False)[severity - 1])
                    for col, big in zip(zip(*self.small), zip(*self.large)))
        return c, decay

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        n, _, h, w = x.shape
        c, decay = self.params_at(severity, min(h, w))
        side = max(2, 1 << (max(h, w) - 1).bit_length())
        haze = tensor_like(plasma_fractal(n, side, decay, rng)[:, None, :h, :w], x)
        top = x.amax(dim=(1, 2, 3), keepdim=True)
        return (x + c * haze) * top / (top + c)
