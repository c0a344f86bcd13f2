"""Noise corruptions beyond Gaussian noise: shot (Poisson) sampling, impulse (salt and pepper) and speckle."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from stalwart.perturb._image_base import ImagePerturbation, Tensor, normal_noise
from stalwart.perturb.base import register

__all__ = ["ImpulseNoise", "SpeckleNoise", "poisson_counts"]

_TWO32 = 1 << 32
_GRID = 255  # 8-bit images sit on j / 255: the shot-noise tables are built for those means
_GUIDE = 10  # shot noise: guide-table buckets per level, in bits of the uniform
_WIDE = (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64)  # 64-bit raw output


def _words(rng: np.random.Generator, n: int, dtype: type = np.uint32) -> np.ndarray:
    """``n`` uniform unsigned integers of ``dtype`` (8, 16 or 32 bits) from ``rng``.

    Slices the bit generator's raw 64-bit output where it has one (several times faster than
    ``integers``); MT19937 and others yield 32 bits per raw draw and go through ``integers``.
    """
    size = np.dtype(dtype).itemsize
    bg = rng.bit_generator
    if isinstance(bg, _WIDE):
        return bg.random_raw((n * size + 7) // 8).view(dtype)[:n]
    return rng.integers(0, 1 << (8 * size), n, dtype=dtype)


@functools.lru_cache(maxsize=8)
def _poisson_tables(lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF tables of ``Poisson(lam * j / 255)``, ``j = 0..255``.

    ``cdf[j, k] = P(K <= k)`` (float64; the last column 1, the tail beyond it is below 1e-15), so a
    uniform ``u`` gives ``K = min{k : u < cdf[j, k]}``. ``guide[j, b]`` is that ``K`` for the
    smallest ``u`` of the bucket ``[b / 1024, (b + 1) / 1024)`` (the uniform's first 10 bits ``b``),
    stored as ``-1 - K`` when a CDF step lies inside the bucket, so the answer needs more bits of ``u``.
    """
    mu = lam * np.arange(_GRID + 1) / _GRID
    kmax = int(math.ceil(lam + 12.0 * math.sqrt(lam) + 25.0))  # P(K > kmax) < 1e-15 for lam <= 60
    k = np.arange(kmax + 1)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, kmax + 1)))])
    with np.errstate(divide="ignore", invalid="ignore"):
        pmf = np.exp(k * np.log(mu[:, None]) - mu[:, None] - log_fact)
    pmf[0] = k == 0  # mean 0: always 0 photons
    cdf = np.cumsum(pmf, axis=1)
    cdf[:, -1] = 1.0
    low = np.arange(1 << _GUIDE) / float(1 << _GUIDE)
    k0 = np.stack([np.searchsorted(row, low, side="right") for row in cdf])  # min k: cdf > low
    pure = np.take_along_axis(cdf, k0, axis=1) >= low + 1.0 / (1 << _GUIDE)
    guide = np.where(pure, k0, -1 - k0).astype(np.int16)
    return guide.ravel(), cdf.ravel()


def poisson_counts(x: Tensor | np.ndarray, lam: float, rng: np.random.Generator) -> Tensor | np.ndarray:
    """Exact ``Poisson(lam * x)`` samples for ``x`` in [0, 1] (clamped), as float32 on ``x``'s device
    (an array for an array).

    Inverse-CDF sampling from tables (:func:`_poisson_tables`): ``x`` is split into a grid value
    ``j / 255`` and a rest ``r >= 0``, and ``Poisson(lam * x) = Poisson(lam * j / 255) +
    Poisson(lam * r)`` (independent). The first comes from a guide-table look-up on a 16-bit random
    word per value (enough for about 98% of them; the others draw 32 more bits and walk the CDF), the
    second (only for values off the 8-bit grid, mean below ``lam / 255``) from sequential inversion.
    Probabilities are right to float64 precision (uniforms of 48 bits), and the 16-bit words do not
    depend on ``lam``.
    Several times faster than numpy's and torch's samplers on CPU.
    """
    if isinstance(x, np.ndarray):
        v = np.clip(x, 0.0, 1.0, dtype=np.float32).reshape(-1)
    else:
        v = x.detach().clamp(0.0, 1.0).to("cpu", torch.float32).numpy().reshape(-1)
    grid = np.rint(v * np.float32(_GRID))
    rest = v - grid / np.float32(_GRID)  # exactly 0 for 8-bit images (v = fl(j / 255))
    j = grid.astype(np.intp)
    off = np.flatnonzero(rest) if rest.any() else np.zeros(0, np.intp)
    below = off[rest[off] < 0]
    if below.size:  # round to nearest overshot: step one level down, the rest becomes positive
        j[below] -= 1
        rest[below] = v[below] - j[below].astype(np.float32) / np.float32(_GRID)
    guide, cdf = _poisson_tables(float(lam))
    width = cdf.size // (_GRID + 1)
    word = _words(rng, v.size, np.uint16)
    k = guide.take((j << _GUIDE) | (word >> np.uint16(16 - _GUIDE)))
    slow = np.flatnonzero(k < 0)
    if slow.size:  # a CDF step inside the word's bucket: 32 more bits of u, walk up from the bucket's answer
        u = (word[slow] + _words(rng, slow.size) / float(_TWO32)) / float(1 << 16)
        kk = -1 - k[slow].astype(np.int64)
        base = j[slow] * width
        active = np.arange(slow.size)
        while active.size:
            active = active[u[active] >= cdf.take(base[active] + kk[active])]
            kk[active] += 1
        k[slow] = kk
    counts = k.astype(np.float32)
    off = off[rest[off] > 0]
    if off.size:  # Poisson(lam * rest): mean < lam / 255, inversion from 0 takes a step or two
        m = float(lam) * rest[off].astype(np.float64)
        u = (_words(rng, off.size).astype(np.float64) + 0.5) / _TWO32
        p = np.exp(-m)
        c = p.copy()
        extra = np.zeros(off.size)
        active = np.flatnonzero(u >= c)
        for step in range(1, 200):  # P(K >= 40) < 1e-60 for a mean below 0.25
            if not active.size:
                break
            p[active] *= m[active] / step
            c[active] += p[active]
            extra[active] += 1.0
            active = active[u[active] >= c[active]]
        counts[off] += extra.astype(np.float32)
    counts = counts.reshape(tuple(x.shape))
    return counts if isinstance(x, np.ndarray) else torch.from_numpy(counts).to(x.device)


@register
class ImpulseNoise(ImagePerturbation):
    """Salt-and-pepper noise: a fraction ``amount`` of values (per pixel and channel) is set to the
    range's minimum or maximum with equal chance.

    ImageNet-C constants at every size (``skimage.util.random_noise(mode="s&p")``). One uniform draw
    per value decides its fate at every severity, so the corrupted values at a lower severity are a
    subset of those at a higher one.

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    amount                 0.03   0.06   0.09   0.17   0.27
    ====================  =====  =====  =====  =====  =====
    """

    name = "impulse_noise"
    description = "Salt-and-pepper noise on a fraction of values (ImageNet-C)"
    levels: tuple[float, ...] = (0.03, 0.06, 0.09, 0.17, 0.27)
    arrays = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        amount = self.levels[severity - 1]
        # one uniform u per value, hit when u < amount (salt when u < amount / 2): its first byte
        # settles that except in the two bytes that hold a threshold (2 / 256 of the values), which
        # draw 32 more bits; probabilities are exact to 2**-40 and bytes are shared by all severities
        words = _words(rng, int(np.prod(x.shape)), np.uint8).reshape(tuple(x.shape))
        salt_at, hit_at = int(amount / 2 * 256), int(amount * 256)
        keep, salt = words > hit_at, words < salt_at
        ties = np.flatnonzero((words == salt_at) | (words == hit_at))
        if ties.size:
            u = (words.reshape(-1)[ties] + _words(rng, ties.size) / float(_TWO32)) / 256.0
            keep.reshape(-1)[ties] = u >= amount
            salt.reshape(-1)[ties] = u < amount / 2
        if isinstance(x, np.ndarray) or x.device.type == "cpu":  # numpy's bool-float arithmetic beats torch's
            out = np.multiply(x if isinstance(x, np.ndarray) else x.detach().numpy(), keep, dtype=np.float32)
            out += salt
            return out if isinstance(x, np.ndarray) else torch.from_numpy(out)
        return x * torch.from_numpy(keep).to(x.device) + torch.from_numpy(salt).to(x.device)


@register
class SpeckleNoise(ImagePerturbation):
    """Multiplicative Gaussian noise: ``x + x * N(0, c)`` with ``x`` scaled to [0, 1].

    Brighter pixels get more noise; black stays black. ImageNet-C constants at every size. The
    standard normal draws are shared by all severities (only scaled).

    ====================  =====  =====  =====  =====  =====
    severity                1      2      3      4      5
    ====================  =====  =====  =====  =====  =====
    c (noise std / x)      0.15   0.2    0.35   0.45   0.6
    ====================  =====  =====  =====  =====  =====
    """

    name = "speckle_noise"
    description = "Multiplicative Gaussian (speckle) noise (ImageNet-C)"
    levels: tuple[float, ...] = (0.15, 0.2, 0.35, 0.45, 0.6)
    arrays = True

    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator) -> Tensor:
        noise = normal_noise(rng, tuple(x.shape), x)
        noise *= self.levels[severity - 1]
        noise *= x
        noise += x
        return noise
