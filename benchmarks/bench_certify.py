"""Certification: CROWN/IBP per-input time and tightness, randomized smoothing's time and memory
against the model's own forward passes and against ART's ``PyTorchRandomizedSmoothing``.

    python benchmarks/bench_certify.py             # writes the "Certified robustness" section
    python benchmarks/bench_certify.py --no-write  # prints it

Models: the zoo's digits MLPs (``benchmarks/zoo.py``) and a Sequential digits CNN trained here
(conv8-conv16-avgpool-fc10; the zoo's CNNs max-pool, which bound propagation does not take).
Smoothing runs in a fresh process per setting so that each peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402
from zoo import build_zoo  # noqa: E402

warnings.filterwarnings("ignore")
EPS = (0.01, 0.03, 0.05, 0.1)
SIGMA = 0.25


def digits_cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.as_tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.as_tensor(y)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(20):
        for i in range(0, 1297, 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    return net.eval(), x[1297:], y[1297:]


def crown_rows(threads: int) -> list[list]:
    from stalwart import attacks
    from stalwart.certify import CROWN, IBP, bracket

    torch.set_num_threads(threads)
    models = [(m.name, m.net.eval(), m.x, m.y) for m in build_zoo(["mlp32", "mlp256"])]
    net, x, y = digits_cnn()
    models.append(("cnn-avg", net, x, y))
    rows = []
    for name, net, x, y in models:
        xs, ys = x.numpy(), y.numpy()
        threat = attacks.ThreatModel("linf", 0.03, (0.0, 1.0))
        times = {}
        for cls in (CROWN, IBP):
            cert = cls.from_threat(threat)
            problem = cert.prepare(net, xs, ys)
            cert.verify(problem, np.full(len(xs), 0.03))  # warm-up
            start = time.perf_counter()
            cert.verify(problem, np.full(len(xs), 0.03))
            times[cls.name] = (time.perf_counter() - start) / len(xs) * 1000
        res = bracket(net, xs, ys, threat, eps=list(EPS), level="standard")
        ibp = IBP.from_threat(threat)
        ibp_problem = ibp.prepare(net, xs, ys)
        ibp_acc = [float(ibp.verify(ibp_problem, np.full(len(xs), e)).mean()) for e in EPS]
        for e, c, r, i in zip(EPS, res.certified_accuracy, res.robust_accuracy, ibp_acc):
            rows.append([name, threads, e, f"{i:.3f}", f"{c:.3f}", f"{r:.3f}", f"{r - c:.3f}",
                         f"{times['crown']:.3f}", f"{times['ibp']:.3f}"])
            print(rows[-1], flush=True)
    return rows


# -- smoothing: one setting per process ---------------------------------------------------------------
def smoothing_worker(tool: str, n: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    net, x, _ = digits_cnn()
    x1 = x[:1].numpy()
    base = _reset_peak()
    start = time.perf_counter()
    if tool == "stalwart":
        from stalwart.certify import RandomizedSmoothing

        # warmed up and at its best batch size of the same three, as the forward row is: both are best-of-three
        RandomizedSmoothing(SIGMA, n0=100, n=1000, batch_size=1024).certify(net, x1)
        best, size = float("inf"), 0
        for bs in (1024, 4096, 16384):
            t0 = time.perf_counter()
            RandomizedSmoothing(SIGMA, n0=100, n=n, batch_size=bs, seed=0).certify(net, x1)
            if time.perf_counter() - t0 < best:
                best, size = time.perf_counter() - t0, bs
        base = _reset_peak()  # memory at the chosen batch size (a CNN's activations grow with the batch, not n)
        t0 = time.perf_counter()
        res = RandomizedSmoothing(SIGMA, n0=100, n=n, batch_size=size, seed=0).certify(net, x1)
        best = min(best, time.perf_counter() - t0)
        return {"time_s": best, "radius": float(res.radius[0]), "batch_size": size, "peak_mib": _peak() - base}
    elif tool == "forward":  # the model alone on n + 100 noisy inputs, at its best batch size of three
        best = float("inf")
        for bs in (1024, 4096, 16384):
            t0 = time.perf_counter()
            with torch.inference_mode():
                done = 0
                while done < n + 100:
                    m = min(bs, n + 100 - done)
                    net(torch.as_tensor(x1).expand(m, -1, -1, -1) + SIGMA * torch.randn(m, 1, 8, 8)).argmax(1)
                    done += m
            best = min(best, time.perf_counter() - t0)
        return {"time_s": best, "peak_mib": _peak() - base}
    else:
        from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

        rs = PyTorchRandomizedSmoothing(net, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                                        sample_size=n, scale=SIGMA, alpha=0.001, device_type="cpu",
                                        clip_values=None)
        _, radius_arr = rs.certify(x1, n=n, batch_size=4096)
        radius = float(radius_arr[0])
    return {"time_s": time.perf_counter() - start, "radius": radius, "peak_mib": _peak() - base}


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024  # kB -> MiB
    return float("nan")


def _reset_peak() -> float:
    """Reset the process's peak RSS to its current RSS (Linux: clear_refs 5); the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak() -> float:
    return _status("VmHWM")


def smoothing_rows(sizes: list[int], threads: list[int]) -> list[list]:
    rows = []
    for t in threads:
        for n in sizes:
            out = {}
            for tool in ("forward", "stalwart", "ART"):
                if tool == "ART" and n > 100_000:
                    continue
                proc = subprocess.run([sys.executable, __file__, "--worker", tool, str(n), str(t)],
                                      capture_output=True, text=True, timeout=1800)
                if proc.returncode != 0:
                    out[tool] = {"error": proc.stderr.strip().splitlines()[-1][:120]}
                else:
                    out[tool] = json.loads(proc.stdout.strip().splitlines()[-1])
            fwd, sw = out["forward"], out["stalwart"]
            art = out.get("ART", {})
            rows.append([n, t, f"{fwd['time_s']:.2f}", f"{sw['time_s']:.2f}", sw["batch_size"],
                         f"{sw['time_s'] / fwd['time_s']:.2f}",
                         f"{sw['peak_mib']:.0f}", f"{sw['radius']:.3f}",
                         f"{art['time_s']:.2f}" if "time_s" in art else art.get("error", "not run (memory)"),
                         f"{art['peak_mib']:.0f}" if "peak_mib" in art else "-",
                         f"{art['radius']:.3f}" if "radius" in art else "-"])
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", choices=["crown", "smoothing"], default=None)
    args = ap.parse_args()
    if args.worker:
        tool, n, t = args.worker
        print(json.dumps(smoothing_worker(tool, int(n), int(t))))
        return
    load = os.getloadavg()[0]
    crown = [] if args.only == "smoothing" else [r for t in args.threads for r in crown_rows(t)]
    smooth = [] if args.only == "crown" else smoothing_rows(args.sizes, args.threads)
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=certify` (= `.venv-bench/bin/python benchmarks/bench_certify.py`; machine: "
        f"{machine()}, CPU, torch {torch.__version__}; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end).",
        "### Bound propagation and the bracket\n\nDigits models (500 test samples for the zoo MLPs, 500 for the "
        "CNN), L-inf balls intersected with [0, 1]. `certified` is CROWN's, `attacked` the robust accuracy of "
        "`evaluate` (standard); the true robust accuracy lies between them. `ms/input` is the time to decide one "
        "sample at one eps (the bisection for a radius takes ~20 such calls).\n\n"
        + markdown_table(["model", "threads", "eps", "IBP certified", "CROWN certified", "attacked", "gap",
                          "CROWN ms/input", "IBP ms/input"], crown),
        f"### Randomized smoothing (sigma {SIGMA}, one input, n0 = 100)\n\n`forward s` is the CNN alone on the "
        "same number of noisy inputs at its best batch size (1,024, 4,096 or 16,384), and `stalwart s` is "
        "`RandomizedSmoothing.certify` after a warm-up call at its best of the same three batch sizes (`batch`); "
        "`peak MiB` is each process's peak RSS above its RSS after loading the model (stalwart: in one more run at "
        "that batch size; the peak reset before it). ART's `PyTorchRandomizedSmoothing.certify` with the same n, sigma and alpha at batch "
        "size 4,096, once; it is not run at 1,000,000 (it builds every noisy copy).\n\n"
        + markdown_table(["n", "threads", "forward s", "stalwart s", "batch", "stalwart / forward", "stalwart peak MiB",
                          "stalwart radius", "ART s", "ART peak MiB", "ART radius"], smooth),
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Certified robustness", body)


if __name__ == "__main__":
    main()
