"""A minimal PNG encoder (zlib + struct) for small example images embedded in reports.

Reports stay self-contained: images travel as ``data:image/png;base64,...`` URIs, which are not
network addresses. 8-bit greyscale and RGB only; no palette, no alpha, no interlacing.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from stalwart.errors import InputError

__all__ = ["encode_png", "png_data_uri", "to_uint8", "upscale", "chw_to_hwc"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes for a ``uint8`` image of shape H x W (grey) or H x W x 3 (RGB).

    Every row gets filter type 0 (none): for the tiny images in a report the gain of adaptive
    filtering is a few bytes, and this keeps the output a pure function of the pixels.
    """
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        raise InputError(f"encode_png(pixels) must be uint8; got dtype {a.dtype}. Use to_uint8() first.")
    if a.ndim == 2:
        color_type = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        color_type = 2
    else:
        raise InputError(f"encode_png(pixels) must have shape H x W or H x W x 3; got {a.shape}")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"encode_png(pixels) must be non-empty; got shape {a.shape}")
    rows = np.ascontiguousarray(a).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` for :func:`encode_png` of ``pixels``."""
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")


def to_uint8(values: Any, value_range: Sequence[float] = (0.0, 1.0)) -> np.ndarray:
    """Map ``values`` linearly from ``value_range`` to 0..255 (clipped); missing values become 0."""
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise InputError(f"value_range must be [lo, hi] with hi > lo; got {list(value_range)}")
    a = np.asarray(values, dtype=object)
    a = np.where(np.equal(a, None), np.nan, a).astype(float)
    scaled = np.nan_to_num((a - lo) / (hi - lo), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def chw_to_hwc(image: np.ndarray) -> np.ndarray:
    """C x H x W (C = 1 or 3) to H x W (grey) or H x W x 3; a bare H x W passes through."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 3 and a.shape[0] == 3:
        return np.moveaxis(a, 0, -1)
    raise InputError(f"an example image must be C x H x W with C = 1 or 3 (or H x W); got shape {a.shape}")


def upscale(pixels: np.ndarray, min_side: int = 64) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor so the longer side reaches ``min_side``.

    Browsers smooth small images when they scale them; enlarging the pixels here keeps an 8 x 8
    digit crisp in every viewer, not only in those that honour ``image-rendering: pixelated``.
    """
    h, w = pixels.shape[:2]
    k = max(1, -(-min_side // max(h, w)))
    return np.repeat(np.repeat(pixels, k, axis=0), k, axis=1) if k > 1 else pixels
