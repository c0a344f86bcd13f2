"""Throughput of stalwart's image corruptions against ``imagecorruptions`` (Michaelis et al., 2019).

Both corrupt the same natural-looking RGB images at severity 3 on CPU, at 32 and 224 px, with the
same constants: stalwart's size-dependent corruptions are built with ``constants="imagenet"``,
the published ImageNet-C table that imagecorruptions uses at every size (pixel-wise corruptions use
the ImageNet-C constants at every size anyway). Two ways of calling are timed:

- **batched**: stalwart corrupts ``--n`` images in one call; the peer, which takes one image per
  call, loops over them;
- **one image per call**: how a torchvision transform or a DataLoader worker uses augmentation;
  stalwart gets ``x[i:i + 1]`` (1 x 3 x H x W) and one numpy Generator for the whole loop (the peer
  draws from numpy's global state), the peer the same image (H x W x 3, uint8).

Every corruption is timed ``--repeats`` times, stalwart and the peer interleaved so that both see
the same machine load; each figure is the best run, each ratio comes from the same run. torch
runs with 1 and with 2 threads (``--threads``), and so does the peer's OpenCV (defocus blur uses
it); the rest of the peer is single-threaded numpy, scikit-image and Pillow. A corruption the peer
cannot run with the installed numpy / scikit-image is reported as "peer fails" with its exception.

The peer is installed by ``make bench`` into ``.venv-bench`` (benchmarks/requirements.txt), so
the project's own environment keeps its pins::

    make bench BENCHMARKS=corruptions        # or: .venv-bench/bin/python benchmarks/bench_corruptions.py
"""

from __future__ import annotations

import os

# OpenMP's wait policy is left as the user's (unset: libgomp's threads spin briefly, then sleep), since
# that is what a user's torch runs with. On a machine busier than its cores (a shared one), spinning stalls
# every multi-threaded torch operation on threads that are not scheduled (2-thread runs 10-100 times
# longer): run with OMP_WAIT_POLICY=PASSIVE there. PASSIVE has its own cost: each multi-threaded
# operation wakes a sleeping thread (~50-100 us here), which on one 224 px image per call can take more
# than the work (pixelation: 310 us per image by default, 800 us under PASSIVE, at 2 threads).
WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stalwart import perturb  # noqa: E402
from stalwart.data.schema import Schema  # noqa: E402

# stalwart name -> imagecorruptions name, for every corruption both have
PAIRS = {
    "gaussian_noise": "gaussian_noise", "shot_noise": "shot_noise", "impulse_noise": "impulse_noise",
    "speckle_noise": "speckle_noise", "gaussian_blur": "gaussian_blur", "defocus_blur": "defocus_blur",
    "motion_blur": "motion_blur", "zoom_blur": "zoom_blur", "glass_blur": "glass_blur", "fog": "fog",
    "brightness": "brightness", "contrast": "contrast", "saturate": "saturate",
    "elastic_transform": "elastic_transform", "pixelation": "pixelate", "jpeg_compression": "jpeg_compression",
}
SECTION = "## Image corruptions"
CONSTANTS_NOTE = {
    "imagenet": "ImageNet-C constants on both sides (stalwart `constants=\"imagenet\"`)",
    "auto": "stalwart's size-scaled constants (`constants=\"auto\"`: CIFAR-10-C at 32 px, ImageNet-C at 224 px); "
            "imagecorruptions always uses ImageNet-C's, so at 32 px the two do different work",
    "cifar": "stalwart with the CIFAR-10-C constants, imagecorruptions with ImageNet-C's (different work)",
}


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


def ours(name: str, constants: str) -> perturb.Perturbation:
    """The stalwart corruption, with ``constants`` where it has size-dependent ones."""
    cls = perturb.PERTURBATIONS.get(name)
    takes = "constants" in inspect.signature(cls).parameters
    return perturb.get(name, constants=constants) if takes else perturb.get(name)


def timer(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peer_call(name: str, hwc: np.ndarray, severity: int) -> tuple[Callable[[], object] | None, str]:
    """A function running the peer over every image, or None and the reason it fails."""
    from imagecorruptions import corrupt

    def run() -> None:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for img in hwc:
                corrupt(img, corruption_name=name, severity=severity)

    np.random.seed(0)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            corrupt(hwc[0], corruption_name=name, severity=severity)  # warm-up, and the failure check
    except Exception as exc:  # noqa: BLE001 - any failure of the peer is reported, not raised
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    return run, ""


def measure(size: int, n: int, severity: int, repeats: int, threads: int, constants: str,
            only: list[str]) -> list[dict]:
    """Per corruption: best seconds for stalwart batched, stalwart one image per call, and the peer."""
    import cv2

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    hwc = images(n, size)
    nchw = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2), dtype=np.float32)
    singles = [nchw[i:i + 1] for i in range(n)]
    schema = Schema("image", value_range=(0.0, 255.0))
    rows = []
    for name, theirs in PAIRS.items():
        if only and name not in only:
            continue
        p = ours(name, constants)

        def batched(p: perturb.Perturbation = p) -> None:
            p.apply(nchw, severity, rng=0, schema=schema)

        def single(p: perturb.Perturbation = p) -> None:
            rng = np.random.default_rng(0)  # one stream for the loop, as a transform holds one
            for one in singles:
                p.apply(one, severity, rng=rng, schema=schema)

        peer, error = peer_call(theirs, hwc, severity)
        batched()
        single()  # warm-up: caches of constant matrices, torch kernels
        best = {"batched": np.inf, "single": np.inf, "peer": np.inf}
        for _ in range(repeats):
            best["batched"] = min(best["batched"], timer(batched))
            best["single"] = min(best["single"], timer(single))
            if peer is not None:
                best["peer"] = min(best["peer"], timer(peer))
        rows.append({"name": name, "error": error, **{k: (None if v == np.inf else v) for k, v in best.items()}})
        r = rows[-1]
        peer_s = "fails" if r["peer"] is None else f"{n / r['peer']:9.0f}"
        print(f"{size:4d}px {threads}t {name:18s} batched {n / r['batched']:9.0f} img/s  single "
              f"{r['single'] / n * 1e6:8.1f} us  peer {peer_s} img/s", flush=True)
    return rows


def ratio_summary(ratios: list[float]) -> str:
    return f"median **{np.median(ratios):.1f}x**, slowest {min(ratios):.2f}x" if ratios else "no ratio"


def tables(size: int, n: int, runs: dict[int, list[dict]]) -> list[str]:
    threads = sorted(runs)
    out = []
    for mode, title in (("batched", f"batched ({n} images per call; images per second)"),
                        ("single", "one image per call (microseconds per image)")):
        head = ["corruption"]
        for t in threads:
            head += [f"stalwart, {t} thr", f"peer, {t} thr", f"ratio, {t} thr"]
        lines = [f"#### {size} px, {title}", "", "| " + " | ".join(head) + " |",
                 "|---|" + "---:|" * (len(head) - 1)]
        ratios: dict[int, list[float]] = {t: [] for t in threads}
        for k, row in enumerate(runs[threads[0]]):
            cells = [row["name"]]
            for t in threads:
                r = runs[t][k]
                ours_s = r[mode]
                mine = f"{n / ours_s:,.0f}" if mode == "batched" else f"{ours_s / n * 1e6:,.0f}"
                if r["peer"] is None:
                    cells += [mine, f"peer fails (`{r['error']}`)" if t == threads[0] else "peer fails", "-"]
                    continue
                ratio = r["peer"] / ours_s
                ratios[t].append(ratio)
                theirs = f"{n / r['peer']:,.0f}" if mode == "batched" else f"{r['peer'] / n * 1e6:,.0f}"
                cells += [mine, theirs, f"{ratio:.1f}x" if ratio >= 1 else f"**{ratio:.2f}x**"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Ratio (peer time / stalwart time) over the corruptions both run: " + "; ".join(
            f"{t} thread{'s' if t > 1 else ''}: {ratio_summary(ratios[t])}" for t in threads) + ".", ""]
        out += lines
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="images per batch (default 24)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch (and OpenCV) threads")
    ap.add_argument("--constants", choices=["imagenet", "auto", "cifar"], default="imagenet",
                    help="stalwart's constants for size-dependent corruptions (default: ImageNet-C, like the peer)")
    ap.add_argument("--only", nargs="*", default=[], help="corruptions to run (default: all both have)")
    ap.add_argument("--write", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md",
                    help="replace the '## Image corruptions' section of this file (default docs/benchmarks.md)")
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    args = ap.parse_args(argv)

    import imagecorruptions

    load_before = os.getloadavg()[0]
    results = {size: {t: measure(size, args.n, args.severity, args.repeats, t, args.constants, args.only)
                      for t in args.threads} for size in args.sizes}
    command = "make bench BENCHMARKS=corruptions" if argv is None and len(sys.argv) == 1 else \
        ".venv-bench/bin/python benchmarks/bench_corruptions.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        SECTION, "",
        f"Severity {args.severity}, RGB images of 1/f^1.5 noise (natural-image spectrum), {args.n} per batch, on CPU. "
        f"Constants: {CONSTANTS_NOTE[args.constants]}. Each figure is the best of {args.repeats} runs; stalwart and "
        "the peer alternate, so each ratio compares runs under the same load. stalwart gets float32 N x 3 x H x W "
        "arrays in [0, 255] (with their schema), the peer uint8 H x W x 3 images; the peer always works one image "
        "per call, so its figure is the same in both tables of a size.", "",
        f"Peer: imagecorruptions {getattr(imagecorruptions, '__version__', '1.1.2')}; torch {torch.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}; {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}); load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; " + (
            f"OMP_WAIT_POLICY={WAIT_POLICY} (OpenMP threads sleep when they wait: each multi-threaded torch "
            "operation wakes one, which costs more than it saves on one 224 px image per call)."
            if WAIT_POLICY else "OMP_WAIT_POLICY unset (libgomp's default, what a user's torch runs with: "
            "threads spin briefly before they sleep; on a machine busier than its cores run with "
            "OMP_WAIT_POLICY=PASSIVE instead, at the price of a wake-up per multi-threaded operation)."), "",
        f"Command: `{command}` (the peer lives in `.venv-bench`).", "",
    ]
    for size in args.sizes:
        lines += [f"### {size} px", ""] + tables(size, args.n, results[size])
    text = "\n".join(lines).rstrip() + "\n"
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
