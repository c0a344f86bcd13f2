"""Throughput of stalwart's image corruptions against ``imagecorruptions`` (Michaelis et al., 2019).

Both corrupt the same 200 images of 32 x 32 x 3 at severity 3 on CPU; every corruption both
provide is timed (best of ``--repeats`` runs for stalwart, whose batches take milliseconds; one
run for the peer, which loops over images in Python). A corruption the peer cannot run with the
installed numpy / scikit-image is reported as "peer fails" with its exception.

The peer is installed by ``make bench`` into ``.venv-bench`` (benchmarks/requirements.txt), so
the project's own environment keeps its pins::

    make bench BENCHMARKS=corruptions        # or: .venv-bench/bin/python benchmarks/bench_corruptions.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from stalwart import perturb
from stalwart.data.schema import Schema

# stalwart name -> imagecorruptions name, for every corruption both have
PAIRS = {
    "gaussian_noise": "gaussian_noise", "shot_noise": "shot_noise", "impulse_noise": "impulse_noise",
    "speckle_noise": "speckle_noise", "gaussian_blur": "gaussian_blur", "defocus_blur": "defocus_blur",
    "motion_blur": "motion_blur", "zoom_blur": "zoom_blur", "glass_blur": "glass_blur", "fog": "fog",
    "brightness": "brightness", "contrast": "contrast", "saturate": "saturate",
    "elastic_transform": "elastic_transform", "pixelation": "pixelate", "jpeg_compression": "jpeg_compression",
}
SECTION = "## Image corruptions"


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Natural-looking test images (1/f^1.5 spectrum around mid-grey), n x size x size x 3, uint8."""
    rng = np.random.default_rng(seed)
    freq = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    freq[0, 0] = 1.0
    spec = (rng.normal(size=(n, 3, size, size // 2 + 1)) + 1j * rng.normal(size=(n, 3, size, size // 2 + 1)))
    spec = spec / freq**1.5
    spec[..., 0, 0] = 0.0
    img = np.fft.irfft2(spec, s=(size, size))
    img = np.clip(0.5 + 0.15 * img / img.std(axis=(1, 2, 3), keepdims=True), 0.0, 1.0)
    return np.round(img * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def time_ours(name: str, x: np.ndarray, severity: int, repeats: int) -> float:
    p = perturb.get(name)
    schema = Schema("image", value_range=(0.0, 255.0))
    best = float("inf")
    for r in range(repeats + 1):  # the first run warms up caches and torch kernels
        start = time.perf_counter()
        p.apply(x, severity, rng=r, schema=schema)
        if r:
            best = min(best, time.perf_counter() - start)
    return best


def time_peer(name: str, hwc: np.ndarray, severity: int) -> tuple[float | None, str]:
    from imagecorruptions import corrupt

    np.random.seed(0)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            corrupt(hwc[0], corruption_name=name, severity=severity)  # warm-up, and the failure check
            start = time.perf_counter()
            for img in hwc:
                corrupt(img, corruption_name=name, severity=severity)
            return time.perf_counter() - start, ""
    except Exception as exc:  # noqa: BLE001 - any failure of the peer is reported, not raised
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the peer runs on one core; small batches gain little from more)")
    ap.add_argument("--write", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md",
                    help="replace the '## Image corruptions' section of this file (default docs/benchmarks.md)")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    import imagecorruptions

    hwc = images(args.n, args.size)
    nchw = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2), dtype=np.float32)
    rows, ratios = [], []
    for ours, theirs in PAIRS.items():
        t_ours = time_ours(ours, nchw, args.severity, args.repeats)
        t_peer, error = time_peer(theirs, hwc, args.severity)
        ips = args.n / t_ours
        if t_peer is None:
            rows.append((ours, ips, None, None, error))
        else:
            ratio = t_peer / t_ours
            ratios.append(ratio)
            rows.append((ours, ips, args.n / t_peer, ratio, ""))
        r = rows[-1]
        print(f"{ours:18s} {r[1]:12.0f} {'' if r[2] is None else f'{r[2]:10.0f}':>10s} "
              f"{'' if r[3] is None else f'{r[3]:8.1f}x':>9s} {r[4]}", flush=True)

    median = float(np.median(ratios))
    lines = [
        SECTION, "",
        f"{args.n} images of {args.size} x {args.size} x 3 at severity {args.severity} on CPU; images per second "
        f"(stalwart: best of {args.repeats} batched runs; peer: one run of its per-image loop). "
        f"Median ratio over the {len(ratios)} corruptions both run: **{median:.0f}x**; "
        f"slowest ratio: {min(ratios):.1f}x.", "",
        f"Peer: imagecorruptions {getattr(imagecorruptions, '__version__', '1.1.2')}; torch {torch.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}; {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), torch threads {torch.get_num_threads()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end.", "",
        "Command: `make bench BENCHMARKS=corruptions` (the peer lives in `.venv-bench`).", "",
        "At 32 px stalwart uses the CIFAR-10-C constants for size-dependent corruptions (smaller kernels) while "
        "imagecorruptions always uses the ImageNet-C ones; see docs/corruptions.md.", "",
        "| corruption | stalwart img/s | imagecorruptions img/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, ips, peer_ips, ratio, error in rows:
        if ratio is None:
            lines.append(f"| {name} | {ips:,.0f} | peer fails (`{error}`) | - |")
        else:
            lines.append(f"| {name} | {ips:,.0f} | {peer_ips:,.0f} | {ratio:.1f}x |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if not args.no_write:
        old = args.write.read_text() if args.write.exists() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
        tmp = args.write.with_suffix(".tmp")
        tmp.write_text(new)
        tmp.replace(args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
