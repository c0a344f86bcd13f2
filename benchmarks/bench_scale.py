"""Beyond one process: `evaluate` and the corruption check on the local, process and Ray executors.

Two workloads, the issue's sizes by default:

- ``evaluate`` (the AutoAttack-style ensemble, default level "standard") on the digits CNN of the
  benchmark zoo (``cnn-s``, conv16-conv32-pool-fc64 on 1 x 8 x 8) over 2,000 samples: the digits
  test split repeated with a little seeded noise (the split has fewer than 2,000 images);
- the corruption check (``CorruptionRobustness``: every image corruption at severities 1-5) on the
  zoo's ``cnn-m`` over 2,000 synthetic 3 x 32 x 32 colour textures.

torch runs on one thread in every process (this one, each pool worker, each Ray worker), so
``local`` is single-threaded and the speed-ups come from the workers alone. Rows:

- ``unsharded``: ``evaluate`` with one shard of every sample (the code before executors);
- ``local``: shards one after the other in this process (by default evaluate's own shard size,
  1,000 samples: what a user gets without asking); its ``overhead`` is its time over the unsharded
  time, minus 1 (target <= 5%). Every attack step has a cost that does not shrink with the batch,
  so on a model this small many small shards cost more (4 shards of 50 digits took about twice
  the unsharded time of 200 in a trial run);
- ``process`` / ``ray``: the same shards on ``--workers`` processes; ``speed-up`` is the unsharded
  (evaluate) or local (corruptions) time over theirs. Their results equal ``local``'s exactly
  (same shards, same seeds). Ray's start-up (``ray.init``, then its workers starting and importing
  stalwart) is timed apart and not in its rows; the process pool's workers start inside each run.

    python benchmarks/bench_scale.py                           # the issue's sizes; writes the section
    python benchmarks/bench_scale.py --samples 200 --images 200 --level fast --no-write   # a quick check
    python benchmarks/bench_scale.py --shard-costs   # per-shard costs for docs/scale.md's estimate
    python benchmarks/bench_scale.py --skip corruptions ray --repeat 3 --no-write   # local overhead only
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, timed, write_section  # noqa: E402
from zoo import build_zoo  # noqa: E402

import stalwart  # noqa: E402
from stalwart.attacks import ThreatModel, evaluate  # noqa: E402
from stalwart.execute import DEFAULT_SHARD_SIZE, LocalExecutor, ProcessExecutor, RayExecutor, use_executor  # noqa: E402

warnings.filterwarnings("ignore")
TITLE = "Beyond one process: executors"


def portable(net: nn.Module) -> nn.Module:
    """The zoo network as torch's own modules only, so workers unpickle it without the zoo module."""
    return nn.Sequential(net.features, net.head) if hasattr(net, "features") else net


def digits_samples(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits: the test split repeated, each copy after the first with seeded noise (sd 0.03)."""
    reps = -(-n // len(x))
    rng = np.random.default_rng(0)
    xs = np.concatenate([x.numpy()] * reps)[:n].astype(np.float32)
    noisy = np.arange(n) >= len(x)
    xs[noisy] = np.clip(xs[noisy] + rng.normal(0.0, 0.03, size=xs[noisy].shape), 0.0, 1.0)
    return xs, np.concatenate([y.numpy()] * reps)[:n]


def escalated(res) -> str:
    """A mark on runs whose Square went on to 5,000 queries: its first 1,000 broke a sample APGD had not (or
    gradients vanished) in some shard. That is a draw of the shards' seeds, and it multiplies Square's cost by
    about five, so a row with it and a row without it do not compare the cost of sharding."""
    return " (Square escalated)" if any(a["params"].get("escalated") for a in res.attacks) else ""


def evaluate_rows(executors: dict, args: argparse.Namespace) -> tuple[list[list], str]:
    (m,) = build_zoo(["cnn-s"], n_digits=10_000)
    net = portable(m.net)
    x, y = digits_samples(m.x, m.y, args.samples)
    threat = ThreatModel("linf", m.eps, (0.0, 1.0))

    def run(executor, shard_size):
        return evaluate(net, x, y, threat, level=args.level, seed=0, shard_size=shard_size, executor=executor,
                        escalate_square=not args.square_full)

    def cpu_timed(fn):  # wall and this process's CPU seconds (local runs use no other process)
        cpu = time.process_time()
        out, wall = timed(fn)
        return out, wall, time.process_time() - cpu

    # unsharded and local alternate, each keeping its fastest of --repeat runs: on a shared machine a
    # single pair measures the neighbours' load as much as the sharding
    best: dict[str, tuple] = {}
    for _ in range(args.repeat):
        for name, fn in (("unsharded", lambda: run(LocalExecutor(), len(y))),
                         ("local", lambda: run(executors["local"], args.shard_size))):
            res, wall, cpu = cpu_timed(fn)
            prev = best.get(name)
            best[name] = (res, min(wall, prev[1]), min(cpu, prev[2])) if prev else (res, wall, cpu)
    base, t_base, cpu_base = best["unsharded"]
    rows = [["unsharded", 1, f"{base.robust_accuracy:.4f}" + escalated(base), t_base, "", ""]]
    local = None
    for name, executor in executors.items():
        if name == "local":
            res, t, cpu = best["local"]
        else:
            res, t = timed(lambda ex=executor: run(ex, args.shard_size))
        same = "" if local is None else ("yes" if np.array_equal(res.broken_by, local.broken_by)
                                          and np.array_equal(res.x_adv, local.x_adv) else "NO")
        if local is None:
            local = res
        overhead = f"{t / t_base - 1:+.1%} (CPU {cpu / cpu_base - 1:+.1%})" if name == "local" else ""
        # against local: the same shards and seeds, hence the same work and result (unsharded may draw another
        # Square escalation)
        speed = "" if name == "local" else f"{best['local'][1] / t:.2f}x"
        rows.append([name, res.n_shards, f"{res.robust_accuracy:.4f}" + ("" if not same else f" (same: {same})")
                     + escalated(res), t, overhead, speed])
        print(rows[-1], flush=True)
    what = (f"`evaluate(level={args.level!r})` on {m.description} (clean accuracy {m.clean_accuracy:.3f} on the "
            f"split), {len(y):,} samples, linf eps {m.eps:g}, shards of {args.shard_size}"
            + ("; Square with its full 5,000 queries in every run (`escalate_square=False`), so that the overhead "
               "measures sharding, not whether a shard's draw escalated Square" if args.square_full else "")
            + "; unsharded and local: "
            f"fastest of {args.repeat} alternating run(s), overhead in wall and in this process's CPU seconds")
    return rows, what


def corruption_rows(executors: dict, args: argparse.Namespace) -> tuple[list[list], str]:
    from stalwart.checks.corruption import CorruptionRobustness

    (m,) = build_zoo(["cnn-m"], n_rgb=args.images)
    model = stalwart.wrap(portable(m.net))
    data = stalwart.Dataset.from_arrays(m.x.numpy(), m.y.numpy(), modality="image")
    check = CorruptionRobustness(max_samples=args.images, perturbations=args.corruptions)
    rows, local, t_local = [], None, None
    for name, executor in executors.items():
        with use_executor(executor):
            res, t = timed(lambda: check.run(model, data, seed=0))
        d = res.to_dict()
        if local is None:
            local, t_local = d, t
        same = "" if name == "local" else ("yes" if d["metrics"] == local["metrics"] else "NO")
        headline = d["metrics"][d["headline_metric"]]
        value = headline["value"] if isinstance(headline, dict) else headline
        rows.append([name, len(d["tables"]["cells"]), f"{value:.4f}" + (f" (same: {same})" if same else ""), t,
                     "", "" if name == "local" else f"{t_local / t:.2f}x"])
        print(rows[-1], flush=True)
    cells = len(local["tables"]["cells"])
    what = (f"`CorruptionRobustness` ({cells} corruption x severity cells, one task each) on {m.description}, "
            f"{args.images:,} images")
    return rows, what


def warm(shared, item) -> int:
    """A task that loads what every shard needs, so Ray's worker processes start (and import) before the timing."""
    import stalwart.attacks  # noqa: F401
    import stalwart.checks.corruption  # noqa: F401

    return os.getpid()


def shard_costs(args: argparse.Namespace) -> None:
    """Per-shard costs behind docs/scale.md's paper estimate, in this process on one torch thread."""
    import tempfile

    import pandas as pd
    from _common import peak_memory

    from stalwart.shift.drift import detect_drift_parquet

    rows = args.drift_rows
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for name, shift in (("ref", 0.0), ("cur", 0.1)):
            pd.DataFrame({"num": rng.normal(shift, 1.0, rows),
                          "cat": rng.choice(list("abcdefgh"), rows)}).to_parquet(f"{tmp}/{name}.parquet")
        for column in ("num", "cat"):
            for window in (2 * rows, rows // 2):
                if column == "cat" and window < 2 * rows:
                    continue  # counts: no window, nothing spilled
                _, t, mib = peak_memory(lambda c=column, w=window: detect_drift_parquet(
                    f"{tmp}/ref.parquet", f"{tmp}/cur.parquet", columns=[c], window=w, tmp_dir=tmp))
                print(f"drift exact, column {column!r}, {rows:,} + {rows:,} rows, window {window:,}: {t:.2f} s, "
                      f"{t / (2 * rows) * 1e9:.0f} ns per value, peak traced {mib:.0f} MiB", flush=True)
    (m,) = build_zoo(["cnn-m"], n_rgb=args.images_cost)
    net, x, y = portable(m.net), m.x.numpy(), m.y.numpy()
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)

    def passes() -> None:
        for _ in range(20):
            xg = xt.clone().requires_grad_(True)
            nn.functional.cross_entropy(net(xg), yt).backward()

    _, t_pass = timed(passes)
    t_pass /= 20 * len(x)
    print(f"cnn-m: one forward+backward pass {t_pass * 1e6:.0f} us per image", flush=True)
    for level in ("fast", "standard"):
        ev, t = timed(lambda lv=level: evaluate(net, x, y, ThreatModel("linf", m.eps, (0.0, 1.0)), level=lv, seed=0))
        print(f"evaluate(level={level!r}) on {len(y)} 3x32x32 images of cnn-m: {t:.1f} s, {t / len(y) * 1e3:.0f} ms "
              f"per image = {t / len(y) / t_pass:.0f} forward+backward passes per image "
              f"(robust accuracy {ev.robust_accuracy:.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="digits for evaluate (default 2,000)")
    parser.add_argument("--images", type=int, default=2000, help="3 x 32 x 32 images for the corruptions")
    parser.add_argument("--level", default="standard", choices=["standard", "fast"])
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                        help="samples per evaluate shard (default: evaluate's own, 1,000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1,
                        help="unsharded and local evaluate runs, alternating; each row keeps its fastest")
    parser.add_argument("--square-full", action="store_true",
                        help="evaluate with escalate_square=False (Square's 5,000 queries in every run): the "
                             "overhead row then measures sharding, not the escalation draw")
    parser.add_argument("--corruptions", nargs="+", default=None, help="default: every image corruption")
    parser.add_argument("--skip", nargs="+", default=[], choices=["evaluate", "corruptions", "ray"])
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    parser.add_argument("--shard-costs", action="store_true",
                        help="print the per-shard costs behind docs/scale.md's paper estimate, then stop")
    parser.add_argument("--drift-rows", type=int, default=1_000_000, help="rows per file for --shard-costs")
    parser.add_argument("--images-cost", type=int, default=100, help="images for --shard-costs")
    args = parser.parse_args()

    torch.set_num_threads(1)  # local is single-threaded; pool workers get cpus // workers threads
    if args.shard_costs:
        shard_costs(args)
        return
    if (os.cpu_count() or 1) // args.workers != 1:
        print(f"note: {os.cpu_count()} CPUs for {args.workers} workers: pool workers run "
              f"{(os.cpu_count() or 1) // args.workers} torch threads each", flush=True)
    load_start = os.getloadavg()[0]
    executors: dict = {"local": LocalExecutor(), "process": ProcessExecutor(workers=args.workers)}
    ray_init = None
    if "ray" not in args.skip:
        ray_exec = RayExecutor(num_cpus=args.workers)
        _, ray_init = timed(ray_exec.start)
        _, ray_warm = timed(lambda: ray_exec.map(warm, list(range(4 * args.workers))))
        executors["ray"] = ray_exec
    sections = []
    header = ["executor", "shards / cells", "result", "seconds", "overhead vs unsharded", "speed-up"]
    try:
        if "evaluate" not in args.skip:
            rows, what = evaluate_rows(executors, args)
            sections.append(f"**evaluate**: {what}. `result`: robust accuracy; speed-up over `local`.\n\n" + markdown_table(header, rows))
        if "corruptions" not in args.skip:
            rows, what = corruption_rows(executors, args)
            sections.append(f"**corruptions**: {what}. `result`: the check's headline metric (mean corruption "
                            "error); speed-up over `local`.\n\n" + markdown_table(header, rows))
    finally:
        for ex in executors.values():
            ex.close()
    load_end = os.getloadavg()[0]
    startup = "" if ray_init is None else (
        f" Ray start-up, not in the rows: `ray.init` with {args.workers} CPUs {ray_init:.1f} s, then {ray_warm:.1f} s "
        "for its worker processes to start and import stalwart (paid once per Ray runtime; a process pool pays its "
        "workers' start-up at every `evaluate` or check, so it is in the process rows).")
    body = "\n\n".join([
        f"Command: `python benchmarks/bench_scale.py` (machine: {machine()}, torch {torch.__version__}, "
        f"{args.workers} workers, one torch thread per process; load average {load_start:.1f} at the start and "
        f"{load_end:.1f} at the end). One run each.{startup} `(same: yes)`: the result equals `local`'s exactly "
        "(same shards, same seeds).",
        *sections,
    ])
    if args.no_write:
        print(body)
    else:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
