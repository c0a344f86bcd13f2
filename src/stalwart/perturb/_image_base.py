"""Shared machinery of the image corruptions: the base class, size-scaled tables and torch kernels.

Every corruption works on float32 torch tensors N x C x H x W scaled to [0, 1], on the device the
images live on. Random draws come from the caller's numpy ``Generator`` and are moved to that
device, so a seed gives the same corruption on CPU and GPU.
"""

from __future__ import annotations

import functools
import math
from abc import abstractmethod
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from stalwart._validation import check_choice, check_image_layout
from stalwart.data.schema import Schema
from stalwart.errors import InputError
from stalwart.perturb.base import Perturbation

Tensor = torch.Tensor


def _by_size(small: tuple[float, ...], large: tuple[float, ...], size: int, *, lengths: bool) -> np.ndarray:
    """Per-severity constants for an image of side ``size``: ``small`` at 32 px, ``large`` at 224 px.

    In between (and beyond 224 px for ``lengths``, which are in pixels) the values move
    geometrically: ``small * (large / small) ** t`` with ``t = log(size / 32) / log(7)``. Below
    32 px lengths shrink in proportion to the size; ratios (``lengths=False``) keep the 32 px values
    below 32 px and the 224 px values above 224 px.
    """
    s, big = np.asarray(small, dtype=np.float64), np.asarray(large, dtype=np.float64)
    t = math.log(size / 32.0) / math.log(7.0)
    if lengths and t < 0:
        return s * size / 32.0
    if not lengths:
        t = min(max(t, 0.0), 1.0)
    if t in (0.0, 1.0):
        return (big if t else s).copy()  # the published values exactly, not through a power
    with np.errstate(divide="ignore", invalid="ignore"):
        out = s * (big / s) ** t
    return np.where(s == 0, big * t, out)  # a zero at 32 px grows linearly instead


def _size_t(size: int) -> float:
    """Where ``size`` lies between 32 px (0) and 224 px (1), clamped; picks a table for integer parameters."""
    return min(max(math.log(size / 32.0) / math.log(7.0), 0.0), 1.0)


CONSTANTS = ("auto", "imagenet", "cifar")
SMALL_WORK = 1 << 15  # values; below this numpy's ~1 us per operation beats torch's dispatch (~4 us)


class ImagePerturbation(Perturbation):
    """Base of the image corruptions: validation, the [0, 1] scale, clipping; subclasses write ``_corrupt``.

    Inputs are not copied: ``_corrupt`` must not write into its argument. Its result is owned here and
    finished in place (scaled back and clipped).
    """

    modality = "image"
    #: ``corrupt(a * x + b) == a * corrupt(x) + b`` for ``a > 0``: weighted means of pixels (filters whose
    #: weights sum to one, resampling, moves). Such corruptions run on the images' own scale, without a
    #: copy scaled to [0, 1] and back.
    affine: ClassVar[bool] = False
    #: the scale ``_corrupt`` works on, ``[0, scale]`` (JPEG: 8-bit levels, 255)
    scale: ClassVar[float] = 1.0
    #: ``_corrupt`` also takes numpy arrays (and then returns one); small CPU batches use that path
    arrays: ClassVar[bool] = False
    #: CPU inputs with fewer values than this take the numpy path (classes with ``arrays``); classes whose
    #: numpy code beats torch's on larger inputs too (one 224 px image) raise it
    array_work: ClassVar[int] = SMALL_WORK

    def _prepare(self, x: Any, schema: Schema | None):
        if schema is not None:
            if schema.modality != "image":
                raise InputError(f"{self.name} is an image perturbation but the schema is for {schema.modality} "
                                 "data; pass the images' own schema, or none to infer it.")
            if schema.value_range is not None:
                lo, hi = schema.value_range
                if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                    raise InputError(
                        f"schema.value_range must be (lo, hi) with finite lo < hi; got {schema.value_range!r}. "
                        "Declare the images' range, e.g. (0, 1) or (0, 255)."
                    )
        if isinstance(x, torch.Tensor):
            t = x.detach()
            if t.dtype != torch.float32:
                t = t.to(torch.float32)
            # tensors permuted from N x H x W x C arrays (the usual numpy-to-torch path) are strided views,
            # which reshaping kernels (JPEG's blocks) cannot take
            if not t.is_contiguous():
                t = t.contiguous()
            a = t.numpy() if t.device.type == "cpu" and t.numel() < self.array_work else None
            restore = _as_tensor
        else:
            try:
                arr = np.asarray(x, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{self.name} needs numeric images (a float array N x C x H x W); x could not be "
                                 f"converted ({exc}). Pass the pixel values as a numpy array.") from None
            if not (arr.flags.c_contiguous and arr.flags.writeable):
                arr = np.array(arr, order="C")  # torch takes neither negative strides nor read-only memory
            a = arr if arr.size < self.array_work else None
            t = torch.from_numpy(arr) if a is None else None  # made when needed: small calls count microseconds
            restore = _as_array
        shape = tuple(t.shape) if a is None else a.shape
        if len(shape) != 4:
            raise InputError(
                f"{self.name} needs images as N x C x H x W; got shape {shape}. "
                "Add a channel axis with x[:, None] for grey images."
            )
        if shape[0] == 0:
            raise InputError("x is empty; pass at least one image.")
        if schema is None or schema.shape is None or tuple(schema.shape) != shape[1:]:
            check_image_layout(shape, tensor=restore is _as_tensor)
        # one sum finds NaN and infinity (they propagate); an overflowing sum is checked value by value
        total = _total(a) if a is not None else t.sum()
        if not math.isfinite(float(total)) and not (np.isfinite(a).all() if a is not None
                                                    else bool(torch.isfinite(t).all())):
            raise InputError("images contain NaN or infinite values; clean them first.")
        if schema is None or schema.value_range is None:
            top = a.max() if a is not None else t.max()
            hi = 1.0 if float(top) <= 1.0 else 255.0
            schema = (Schema("image", value_range=(0.0, hi), shape=shape[1:]) if schema is None
                      else replace(schema, value_range=(0.0, hi)))
        return (t, a), schema, restore

    def _apply(self, x: tuple[Tensor, np.ndarray | None], severity: int, rng: np.random.Generator | None,
               schema: Schema) -> Tensor | np.ndarray:
        # ``x``: the images as a tensor and, for small CPU batches, the same memory as an array: numpy's
        # ~1 us per operation beats torch's dispatch there
        t, a = x
        lo, hi = schema.value_range  # type: ignore[misc]
        lo, hi = float(lo), float(hi)
        raw = self.affine or (lo == 0.0 and hi == self.scale)
        scale = None if raw else self.scale
        if a is not None and self.arrays:  # no torch at all: a few microseconds per operation saved
            out = self._corrupt(a if raw else _scaled_array(a, lo, hi, self.scale), severity, rng)  # type: ignore[arg-type]
            if out is a or not out.flags.c_contiguous or out.dtype != np.float32:
                out = np.array(out, dtype=np.float32, order="C")  # the caller's memory is never handed back
            return _finish_array(out, lo, hi, scale)
        if t is None:
            t = torch.from_numpy(a)
        if raw:
            k = t
        elif a is not None:
            k = torch.from_numpy(_scaled_array(a, lo, hi, self.scale))
        else:
            k = _scaled_tensor(t, lo, hi, self.scale)
        out = self._corrupt(k, severity, rng)
        if out.dtype != torch.float32:
            out = out.to(torch.float32)
        if not out.is_contiguous():
            out = out.contiguous()
        elif raw and out.data_ptr() == t.data_ptr():
            out = out.clone()  # never hand back (or finish in place) the caller's memory
        if a is not None and out.device.type == "cpu":
            return _finish_array(out.numpy(), lo, hi, scale)
        return _finish_tensor(out, lo, hi, scale)

    @abstractmethod
    def _corrupt(self, x: Tensor, severity: int, rng: np.random.Generator | None) -> Tensor:
        """Corrupt float32 images N x C x H x W (scaled to [0, 1] unless the class is ``affine``).

        Must not write into ``x``; clipping is done by the caller. ``rng`` is None for classes whose
        ``_draws`` is false. Classes with ``arrays`` also get (and return) numpy arrays: small CPU
        batches, where numpy's ~1 us per operation beats torch's dispatch.
        """


class SizedImagePerturbation(ImagePerturbation):
    """An image corruption whose constants are lengths or ratios that depend on the image size.

    ``constants="auto"`` moves from the CIFAR-10-C constants at 32 px to the ImageNet-C ones at
    224 px (see :func:`_by_size`); ``"imagenet"`` and ``"cifar"`` use one published table at every size.
    """

    def __init__(self, *, constants: str = "auto") -> None:
        self.constants = check_choice(self, "constants", constants, CONSTANTS)

    def _table(self, small: tuple[float, ...], large: tuple[float, ...], size: int, *, lengths: bool) -> np.ndarray:
        """Per-severity values at image side ``size`` under the chosen ``constants``."""
        if self.constants == "imagenet":
            return np.asarray(large, dtype=np.float64)
        if self.constants == "cifar":
            return np.asarray(small, dtype=np.float64)
        return _by_size(small, large, size, lengths=lengths)

    def _large(self, size: int) -> bool:
        """Whether a table switched by size (not interpolated) takes its 224 px row."""
        return self.constants == "imagenet" or (self.constants == "auto" and _size_t(size) >= 0.5)


def _as_tensor(out: Tensor | np.ndarray) -> Tensor:
    return out if isinstance(out, torch.Tensor) else torch.from_numpy(out)


def _as_array(out: Tensor | np.ndarray) -> np.ndarray:
    return out if isinstance(out, np.ndarray) else out.numpy()


def _total(a: np.ndarray) -> float:
    """The sum of an array's values; on large arrays by torch (on its threads), several times faster than
    numpy's pairwise sum. An overflow is an answer here (the caller then checks value by value)."""
    if a.size >= SMALL_WORK:
        return float(torch.from_numpy(a).sum())
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.add.reduce(a, axis=None))


# The scale round trip: ``(x - lo) / (hi - lo) * scale`` and back. For ``scale`` 1 a division, not a
# product with the reciprocal: 8-bit values then land exactly on ``j / 255``, which shot noise relies on.
def _scaled_array(a: np.ndarray, lo: float, hi: float, scale: float) -> np.ndarray:
    u = np.subtract(a, np.float32(lo)) if lo != 0.0 else None
    if scale == 1.0:
        return np.divide(a if u is None else u, np.float32(hi - lo), out=u)
    return np.multiply(a if u is None else u, np.float32(scale / (hi - lo)), out=u)


def _scaled_tensor(t: Tensor, lo: float, hi: float, scale: float) -> Tensor:
    u = t.sub(lo) if lo != 0.0 else None
    if scale == 1.0:
        return t.div(hi - lo) if u is None else u.div_(hi - lo)
    return t.mul(scale / (hi - lo)) if u is None else u.mul_(scale / (hi - lo))


def _finish_array(a: np.ndarray, lo: float, hi: float, scale: float | None) -> np.ndarray:
    """``a`` back from ``[0, scale]`` to ``[lo, hi]`` (``scale`` None: already there), clipped; in place."""
    if scale is not None:
        if scale == 1.0:
            np.multiply(a, np.float32(hi - lo), out=a)
        else:
            np.divide(a, np.float32(scale / (hi - lo)), out=a)
        if lo != 0.0:
            np.add(a, np.float32(lo), out=a)
    if a.size >= SMALL_WORK:  # torch's clamp beats numpy's clip on large arrays (and loses on small ones)
        torch.from_numpy(a).clamp_(lo, hi)
        return a
    return a.clip(lo, hi, out=a)


def _finish_tensor(t: Tensor, lo: float, hi: float, scale: float | None) -> Tensor:
    if scale is not None:
        if scale == 1.0:
            t.mul_(hi - lo)
        else:
            t.div_(scale / (hi - lo))
        if lo != 0.0:
            t.add_(lo)
    return t.clamp_(lo, hi)


# -- random draws ---------------------------------------------------------------------------------------
# Bulk draws use torch's CPU generator (several times faster than numpy's), seeded from the caller's
# numpy Generator and moved to the images' device: the same seed gives the same numbers everywhere.
def _torch_gen(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))


def tensor_like(a: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(like.device)


def uniform_noise(rng: np.random.Generator, shape: tuple[int, ...], like: Tensor, low: float = 0.0,
             high: float = 1.0) -> Tensor:
    u = torch.rand(shape, generator=_torch_gen(rng))
    return (u * (high - low) + low if (low, high) != (0.0, 1.0) else u).to(like.device)


def normal_noise(rng: np.random.Generator, shape: tuple[int, ...], like: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Standard normal draws shaped ``shape``, of ``like``'s kind (an array, or a tensor on its device)."""
    z = torch.randn(shape, generator=_torch_gen(rng))
    return z.numpy() if isinstance(like, np.ndarray) else z.to(like.device)


# -- constant matrices and kernels, built once per size -------------------------------------------------
# Builders are cached by their (hashable) arguments and return CPU tensors that nobody writes into;
# ``on_device_of`` moves one to the images' device. lru_cache is safe to call from several threads.
def on_device_of(t: Tensor, like: Tensor) -> Tensor:
    return t if like.device.type == "cpu" else t.to(like.device)


def _fft_size(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: FFT lengths that pocketfft and MKL transform fastest."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


# -- linear filters -------------------------------------------------------------------------------------
def separable_filter(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Apply one linear map along H and another along W: ``rows @ x @ cols.T`` per image and channel."""
    n, c, h, w = x.shape
    y = torch.matmul(x.reshape(n * c * h, w), on_device_of(cols, x).T).reshape(n, c, h, cols.shape[0])
    return torch.matmul(on_device_of(rows, x), y)


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Fold indices into ``[0, size)`` by mirror reflection without repeating the edge (``dcb|abcd|cba``).

    Works for offsets of any length (a kernel wider than the image folds more than once).
    """
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index > size - 1, period - index, index)


@functools.lru_cache(maxsize=64)
def blur_matrix(size: int, sigma: float) -> Tensor:
    """Gaussian convolution along one axis with reflect padding (``dcb|abcd|cba``), as a matrix.

    The kernel is cut at ``3 sigma`` and renormalised. As a banded matrix product the convolution
    runs much faster on CPU than ``conv2d`` with a one-channel kernel.
    """
    if sigma <= 0:
        return torch.eye(size)
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    src = _reflect(np.arange(size)[:, None] + offsets[None, :], size)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.repeat(np.arange(size), offsets.size), src.ravel()), np.tile(kernel, size))
    return torch.from_numpy(matrix.astype(np.float32))


def gaussian_filter(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of the last two axes with reflect padding."""
    h, w = x.shape[-2:]
    return separable_filter(x, blur_matrix(h, float(sigma)), blur_matrix(w, float(sigma)))


def pad_image(x: Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> Tensor:
    """``x`` padded on the last two axes by mirror (``"reflect"``, ``dcb|abcd|cba``) or edge values
    (``"replicate"``); mirrors fold more than once when the padding exceeds the image."""
    h, w = x.shape[-2:]
    if mode == "replicate" or (max(top, bottom) < h and max(left, right) < w):
        return F.pad(x, (left, right, top, bottom), mode=mode)
    rows = torch.from_numpy(_reflect(np.arange(-top, h + bottom), h)).to(x.device)
    cols = torch.from_numpy(_reflect(np.arange(-left, w + right), w)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


_DIRECT_TAPS = 25  # kernels with more non-zero taps are applied by FFT, or on small images by matrices
# rank x (H + W) multiply-adds per pixel: up to this, the kernel's separable terms as matrix products beat
# the FFT on CPU (32 px images with a rank-6 disk: 2-3 times faster; from about 64 px the FFT wins)
_MATRIX_WORK = 512


def filter2d(x: Tensor, kernel: np.ndarray) -> Tensor:
    """Correlate every image and channel with one 2-D ``kernel`` (odd sides), reflect padding.

    Small kernels run as a sum of shifted copies (on CPU an order of magnitude faster than a
    one-channel ``conv2d``); larger ones on small images as the kernel's separable terms, two matrix
    products (:func:`_separable_correlate`), and otherwise by FFT, whose cost does not grow with the
    kernel. All three compute the same correlation up to float32 rounding.
    """
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    if np.count_nonzero(kernel) > _DIRECT_TAPS:
        kernel = np.ascontiguousarray(kernel, dtype=np.float32)
        rank = _kernel_rank(kernel.tobytes(), kernel.shape)
        if rank * (h + w) <= _MATRIX_WORK:
            return _separable_correlate(x, kernel, rank)
        return _fft_correlate(x, kernel)
    padded = pad_image(x, kh // 2, kh // 2, kw // 2, kw // 2, "reflect")
    out: Tensor | None = None
    for i, j in zip(*np.nonzero(kernel)):
        part = padded[:, :, i:i + h, j:j + w]
        if out is None:
            out = part * float(kernel[i, j])
        else:
            out.add_(part, alpha=float(kernel[i, j]))
    return out  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _kernel_terms(kernel_bytes: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The kernel as a sum of separable terms, ``kernel = sum_t outer(col[t], row[t])`` (float64, by SVD).

    Terms whose singular value is below ``1e-7`` of the largest are dropped: disks and other symmetric
    kernels have few terms (a disk of radius r about r / 2 + 1), and what is dropped is below float32
    rounding of the result.
    """
    kernel = np.frombuffer(kernel_bytes, dtype=np.float32).reshape(shape).astype(np.float64)
    u, s, vt = np.linalg.svd(kernel)
    rank = max(1, int(np.count_nonzero(s > 1e-7 * s[0])))
    return u[:, :rank] * s[:rank], vt[:rank]


def _kernel_rank(kernel_bytes: bytes, shape: tuple[int, int]) -> int:
    return len(_kernel_terms(kernel_bytes, shape)[1])


def _correlation_matrices(taps: np.ndarray, size: int) -> np.ndarray:
    """For each row of ``taps`` (odd length), 1-D correlation over ``size`` samples with reflect padding
    as a ``size x size`` matrix: ``terms x size x size``."""
    terms, length = taps.shape
    src = _reflect(np.arange(size)[:, None] + np.arange(length)[None, :] - length // 2, size)  # size x length
    out = np.zeros((terms, size, size))
    rows = np.repeat(np.arange(size), length)
    for t in range(terms):
        np.add.at(out[t], (rows, src.ravel()), np.tile(taps[t], size))  # folded taps add up
    return out


@functools.lru_cache(maxsize=32)
def _separable_maps(kernel_bytes: bytes, shape: tuple[int, int], h: int, w: int) -> tuple[Tensor, Tensor]:
    """:func:`_separable_correlate`'s two matrices: along W every term side by side (``W x terms W``), along
    H the terms interleaved to match (``H x H terms``: column ``p * terms + t`` is term ``t``'s row ``p``)."""
    cols, rows = _kernel_terms(kernel_bytes, shape)
    along_h = _correlation_matrices(cols.T, h)  # terms x h x h
    along_w = _correlation_matrices(rows, w)  # terms x w x w
    right = along_w.reshape(-1, w).T  # w x terms * w: column t * w + j is term t's output column j
    left = along_h.transpose(1, 2, 0).reshape(h, -1)  # h x h * terms
    return (torch.from_numpy(np.ascontiguousarray(left, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(right, dtype=np.float32)))


def _separable_correlate(x: Tensor, kernel: np.ndarray, rank: int) -> Tensor:
    """``filter2d`` on small images: ``sum_t L_t @ x @ R_t.T`` over the kernel's separable terms, where
    ``L_t`` and ``R_t`` are 1-D correlations with reflect padding written as matrices. Two matrix products
    for the whole batch; exact up to float32 rounding (the terms reproduce the kernel to ``1e-7``)."""
    n, c, h, w = x.shape
    left, right = (on_device_of(m, x) for m in _separable_maps(kernel.tobytes(), kernel.shape, h, w))
    y = torch.mm(x.reshape(n * c * h, w), right)  # (n c h) x (terms w): row p, term t at [p, t * w + j]
    return torch.matmul(left, y.view(n * c, h * rank, w)).view(n, c, h, w)


@functools.lru_cache(maxsize=32)
def _spectrum(kernel_bytes: bytes, shape: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """``conj(rfft2(kernel))`` on a ``size`` grid: correlation with the kernel as a product of spectra."""
    kernel = torch.from_numpy(np.frombuffer(kernel_bytes, dtype=np.float32).reshape(shape).copy())
    return torch.fft.rfft2(kernel, s=size).conj()


def _fft_correlate(x: Tensor, kernel: np.ndarray) -> Tensor:
    """``filter2d`` by FFT: ``out[i, j] = sum_ab kernel[a, b] * padded[i + a, j + b]``.

    The image is mirrored out to a fast FFT length (at least ``H + kh - 1``), so the circular
    correlation never wraps into the pixels kept and no zero padding is copied. The mean is taken out
    first: constant images stay exactly constant and rounding follows the contrast, not the brightness.
    A few images at a time: the transforms' working memory then stays in cache (two to three times
    faster on CPU than the whole batch at once).
    """
    kernel = np.ascontiguousarray(kernel, dtype=np.float32)
    (kh, kw), (n, c, h, w) = kernel.shape, x.shape
    size = (_fft_size(h + kh - 1), _fft_size(w + kw - 1))
    spectrum = on_device_of(_spectrum(kernel.tobytes(), kernel.shape, size), x)
    mean = x.mean()
    out = torch.empty_like(x)
    step = max(1, (1 << 19) // (c * size[0] * size[1]))
    for i in range(0, n, step):
        padded = pad_image(x[i:i + step], kh // 2, size[0] - h - kh // 2, kw // 2, size[1] - w - kw // 2, "reflect")
        spec = torch.fft.rfft2(padded.sub_(mean))
        spec *= spectrum
        torch.add(torch.fft.irfft2(spec, s=size)[..., :h, :w], mean, out=out[i:i + step])
    return out


def affine_warp(x: Tensor, theta: np.ndarray, padding: str = "border") -> Tensor:
    """Bilinear resampling by per-image affine maps (output -> input, normalised coordinates).

    Pixels that map outside the image take the nearest edge value (``padding="border"``) or their
    mirror image (``"reflection"``).
    """
    grid = F.affine_grid(tensor_like(theta, x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def pixel_grid(n: int, h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates as normalised ``grid_sample`` units (``align_corners=False``)."""
    ys = (torch.arange(h, device=like.device, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, device=like.device, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    return ys[None, :, None].expand(n, h, w), xs[None, None, :].expand(n, h, w)


def shift_gather(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """``out[n, c, i, j] = x[n, c, clamp(i + dy[n, i, j]), clamp(j + dx[n, i, j])]`` (integer offsets)."""
    n, c, h, w = x.shape
    i = torch.arange(h, device=x.device)[None, :, None]
    j = torch.arange(w, device=x.device)[None, None, :]
    src = (i + dy).clamp_(0, h - 1) * w + (j + dx).clamp_(0, w - 1)  # n x h x w
    flat = x.reshape(n, c, h * w)
    return flat.gather(2, src.reshape(n, 1, h * w).expand(n, c, h * w)).reshape(n, c, h, w)
