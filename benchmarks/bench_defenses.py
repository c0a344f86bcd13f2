"""Defences attacked plainly and adaptively: feature squeezing, defensive distillation and a
randomized transform on the zoo's digits CNN (``cnn-s``), against the undefended network.

Each defence is attacked twice:

- **plain**: APGD-CE (100 steps) through the defence's own gradients, ``model.non_adaptive()``:
  the squeezers' exact derivative (zero for rounding and JPEG), the distilled student's saturated
  softmax output, one random draw per gradient. This is the number a naive evaluation reports;
- **adaptive**: :func:`stalwart.attacks.evaluate` on the defended model as stalwart builds it
  (BPDA through the squeezers, the student's logits, EOT over draws), judged as deployed (a
  randomized model by majority vote over its ``verdict_draws`` draws).

The target (issue 10): adaptive robust accuracy within 2 points of the undefended network's, while
the plain attack shows the defence "robust". ``evaluate`` on the plain view (fast level) is also run,
to show which sanity checks flag it.

    python benchmarks/bench_defenses.py                    # writes "Defences attacked adaptively"
    python benchmarks/bench_defenses.py --n 100 --no-write # a quick look
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, timed, write_section  # noqa: E402
from zoo import build_zoo  # noqa: E402

import stalwart  # noqa: E402
from stalwart import attacks, defend  # noqa: E402

warnings.filterwarnings("ignore")
EPS = 0.1


def defences(net: torch.nn.Module, train_x: np.ndarray, train_y: np.ndarray, temperatures: list[float],
             eot: int) -> list[tuple[str, str, object]]:
    """(name, family, defended model) for every defence; the plain view is ``model.non_adaptive()``."""
    out: list[tuple[str, str, object]] = [
        ("bit depth 3", "squeeze", defend.SqueezedModel(net, defend.BitDepth(3), bounds=(0.0, 1.0))),
        ("bit depth 1", "squeeze", defend.SqueezedModel(net, defend.BitDepth(1), bounds=(0.0, 1.0))),
        ("median filter 2x2", "squeeze", defend.SqueezedModel(net, defend.MedianFilter(2), bounds=(0.0, 1.0))),
        ("JPEG quality 50", "squeeze", defend.SqueezedModel(net, defend.JPEG(50), bounds=(0.0, 1.0))),
    ]
    arch = copy.deepcopy(net)
    for p in arch.parameters():  # the zoo freezes its networks; distillation trains fresh copies
        p.requires_grad_(True)
    for t in temperatures:
        res = defend.distill(arch, train_x, train_y, temperature=t, epochs=30, batch_size=64, lr=3e-3, seed=0)
        out.append((f"distillation T={t:g}", "distill", res.model))
    out.append((f"random resize-pad 1 px + noise 0.1 (EOT {eot})", "random",
                defend.RandomizedModel(net, [defend.RandomResizePad(1), defend.RandomNoise(0.1)], eot=eot,
                                       bounds=(0.0, 1.0), seed=0)))
    return out


def flags(ev) -> str:  # noqa: ANN001
    failed = [s.name for s in ev.sanity if not s.passed]
    return ", ".join(failed) if failed else "none"


def run_row(name: str, family: str, model, x: np.ndarray, y: np.ndarray, threat, level: str,  # noqa: ANN001
            undefended: dict[str, float], args: argparse.Namespace) -> dict:
    print(f"{time.strftime('%H:%M:%S')} {name}: plain APGD-CE, adaptive evaluate ({level})", flush=True)
    plain_model = model.non_adaptive()
    plain, t_plain = timed(lambda: attacks.ATTACKS.get("apgd-ce")(threat, steps=args.plain_steps, seed=0)
                           .run(plain_model, x, y))
    ev, t_ev = timed(lambda: attacks.evaluate(model, x, y, threat, level=level, eps_curve=[], seed=0,
                                              sanity=args.sanity))
    flagged = None
    if args.plain_evaluate:
        print(f"{time.strftime('%H:%M:%S')} {name}: plain evaluate (fast)", flush=True)
        flagged = attacks.evaluate(plain_model, x, y, threat, level="fast", eps_curve=[], seed=0)
    row = {"defence": name, "family": family, "level": level, "clean": ev.clean_accuracy,
           "plain": plain.robust_accuracy, "adaptive": ev.robust_accuracy,
           "undefended": undefended[level], "gap": ev.robust_accuracy - undefended[level],
           "plain_flags": flags(flagged) if flagged else "", "plain_evaluate": flagged and flagged.robust_accuracy,
           "adaptive_flags": flags(ev) if args.sanity else "", "time_adaptive": t_ev, "time_plain": t_plain}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="test samples (default 500)")
    parser.add_argument("--level", default="standard", choices=["fast", "standard"])
    parser.add_argument("--random-level", default="fast", choices=["fast", "standard"],
                        help="evaluate level for the randomized defence (EOT multiplies every gradient's cost)")
    parser.add_argument("--eot", type=int, default=8)
    parser.add_argument("--plain-steps", type=int, default=100, help="APGD-CE steps of the plain attack")
    parser.add_argument("--sanity", action="store_true", help="run evaluate's sanity checks on the adaptive runs")
    parser.add_argument("--plain-evaluate", action="store_true",
                        help="also run evaluate (fast) on each plain view, for its sanity-check flags")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[20.0, 100.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", help="defence families to run (squeeze, distill, random)")
    parser.add_argument("--cache", type=Path, help="JSON lines file: finished rows are read from it and appended")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    (m,) = build_zoo(["cnn-s"], n_digits=args.n)
    train, _ = stalwart.datasets.load_split("digits", seed=0)
    x, y = m.x.numpy(), m.y.numpy()
    threat = attacks.ThreatModel("linf", EPS, (0.0, 1.0))
    cached = {}
    if args.cache and args.cache.exists():
        cached = {r["defence"]: r for r in map(json.loads, args.cache.read_text().splitlines()) if r}
    undefended: dict[str, float] = {}
    und_rows = []
    for level in sorted({args.level, args.random_level}):
        key = f"undefended ({level})"
        if key not in cached:
            print(f"{time.strftime('%H:%M:%S')} {key}", flush=True)
            ev, t_ev = timed(lambda lv=level: attacks.evaluate(stalwart.wrap(m.net), x, y, threat, level=lv,
                                                               eps_curve=[], seed=0, sanity=args.sanity))
            cached[key] = {"defence": key, "family": "none", "level": level, "clean": ev.clean_accuracy,
                           "plain": None, "adaptive": ev.robust_accuracy, "undefended": ev.robust_accuracy,
                           "gap": 0.0, "plain_flags": "", "plain_evaluate": None,
                           "adaptive_flags": flags(ev) if args.sanity else "",
                           "time_adaptive": t_ev, "time_plain": 0.0}
            print(json.dumps(cached[key]), flush=True)
            if args.cache:
                with args.cache.open("a") as fh:
                    fh.write(json.dumps(cached[key]) + "\n")
        undefended[level] = cached[key]["adaptive"]
        und_rows.append(cached[key])
    rows = []
    for name, family, model in defences(m.net, train.x, np.asarray(train.y), args.temperatures, args.eot):
        if args.only and family not in args.only:
            continue
        if name in cached:
            rows.append(cached[name])
            continue
        level = args.random_level if family == "random" else args.level
        rows.append(run_row(name, family, model, x, y, threat, level, undefended, args))
        if args.cache:
            with args.cache.open("a") as fh:
                fh.write(json.dumps(rows[-1]) + "\n")
    load_end = os.getloadavg()[0]
    total = time.perf_counter() - start

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    with_flags = any(r["plain_flags"] for r in rows)
    table = markdown_table(
        ["defence", "evaluate level", "clean acc", "plain robust acc", "adaptive robust acc",
         "undefended robust acc", "adaptive − undefended", "within 2 points",
         *(["sanity flags on the plain view"] if with_flags else []), "adaptive s", "plain s"],
        [[r["defence"], r["level"], fmt(r["clean"]), fmt(r["plain"]), fmt(r["adaptive"]), fmt(r["undefended"]),
          f"{r['gap']:+.3f}", "—" if r["family"] == "none" else ("yes" if r["gap"] <= 0.02 else "no"),
          *([r["plain_flags"] or "—"] if with_flags else []), f"{r['time_adaptive']:.1f}", f"{r['time_plain']:.1f}"]
         for r in und_rows + rows])
    body = "\n\n".join([
        f"Command: `.venv-bench/bin/python benchmarks/bench_defenses.py --n {args.n}` (machine: {machine()}, CPU, "
        f"torch {torch.__version__}, {args.threads} torch threads; load average {load_start:.1f} at the start and "
        f"{load_end:.1f} at the end: a busy, shared machine, so times are indicative only; {total / 60:.0f} min "
        "in all).",
        f"The zoo's `cnn-s` (conv16-conv32-pool-fc64, digits 1 x 8 x 8, seed 0), its first {args.n} test digits, "
        f"L-inf eps {EPS}, bounds [0, 1]. **plain**: APGD-CE ({args.plain_steps} steps) through the defence's own "
        "gradients (`model.non_adaptive()`: the squeezer's exact derivative, the student's softmax output, one "
        "draw per gradient). **adaptive**: `evaluate` on the defended model as stalwart builds it (BPDA through "
        "squeezers, the distilled student's logits, EOT over draws), without the eps curve. The randomized "
        f"defence uses EOT over {args.eot} draws per gradient and is judged by majority vote over 32 draws, at "
        f"the `{args.random_level}` level (its undefended reference is at the same level). Distillation trains "
        "teacher and student of the same architecture for 30 epochs each on the 1,257 training digits."
        + (" `sanity flags on the plain view`: the sanity checks that fail when `evaluate` (fast) is run on the "
           "plain view itself." if with_flags else ""),
        table,
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Defences attacked adaptively", body)


if __name__ == "__main__":
    main()
