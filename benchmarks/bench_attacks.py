"""Attack strength and speed: stalwart vs torchattacks, ART and Foolbox across a zoo of models.

Every model of the zoo (``benchmarks/zoo.py``: MLPs of widths 32 to 1024 on 64 features, two
CNNs on 1 x 8 x 8 and 3 x 32 x 32 images, an MLP on 3 x 32 x 32) is attacked by every tool with
the same eps, steps and step size, at 1 and at 2 torch threads. Also timed: the same number of
plain forward+backward passes on the whole batch (the floor no gradient attack can beat without
early stopping), and stalwart's full default ``evaluate`` (the AutoAttack-style ensemble at
reference strength, with its eps curve and sanity checks) against torchattacks' AutoAttack
(standard, linf).

    python benchmarks/bench_attacks.py                      # writes the "Adversarial attacks" section
    python benchmarks/bench_attacks.py --models mlp256 cnn-s --threads 1 --no-write   # a quick look
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
from zoo import ZOO_NAMES, ZooModel, build_zoo  # noqa: E402

import stalwart  # noqa: E402
from stalwart import attacks  # noqa: E402

warnings.filterwarnings("ignore")
REPEATS = 3  # fast settings: best of this many interleaved runs per tool


def floor_time(net: nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int) -> float:
    def run():
        xa = x.clone()
        for _ in range(passes):
            xa.requires_grad_(True)
            loss = nn.functional.cross_entropy(net(xa), y)
            (g,) = torch.autograd.grad(loss, xa)
            xa = (xa.detach() + 1e-3 * g.sign()).clamp(0, 1)
        return xa
    return min(timed(run)[1] for _ in range(REPEATS))


def robust_acc(net: nn.Module, x_adv, y: torch.Tensor) -> float:
    with torch.no_grad():
        x_adv = torch.as_tensor(np.asarray(x_adv), dtype=torch.float32)
        return float((net(x_adv).argmax(1) == y).float().mean())


# -- each tool's run of one setting: returns a callable that runs it and gives its adversarial x ----
def tool_stalwart(m: ZooModel, kind: str, norm: str, eps: float, steps: int):
    threat = attacks.ThreatModel(norm, eps, (0.0, 1.0))
    model = stalwart.wrap(m.net)
    atk = attacks.FGSM(threat) if kind == "fgsm" else attacks.PGD(threat, steps=steps, step_size=2.5 * eps / steps)
    x, y = m.x.numpy(), m.y.numpy()
    return lambda: atk.run(model, x, y).x_adv


def tool_torchattacks(m: ZooModel, kind: str, norm: str, eps: float, steps: int):
    import torchattacks

    if kind == "fgsm":
        atk = torchattacks.FGSM(m.net, eps=eps)
    elif norm == "linf":
        atk = torchattacks.PGD(m.net, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    else:
        atk = torchattacks.PGDL2(m.net, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    x = m.x_images  # torchattacks takes image batches only
    return lambda: atk(x, m.y)


def tool_torchattacks_checked(m: ZooModel, kind: str, norm: str, eps: float, steps: int):
    """torchattacks and then the verdict a user needs from it: the model's prediction on the returned
    inputs (stalwart and Foolbox include this forward pass; torchattacks and ART leave it to the user)."""
    run = tool_torchattacks(m, kind, norm, eps, steps)

    def checked():
        x_adv = run()
        with torch.no_grad():
            m.net(x_adv).argmax(1)
        return x_adv
    return checked


def tool_art(m: ZooModel, kind: str, norm: str, eps: float, steps: int):
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(m.net, loss=nn.CrossEntropyLoss(), input_shape=tuple(m.x.shape[1:]), nb_classes=10,
                            clip_values=(0.0, 1.0))
    order = np.inf if norm == "linf" else 2
    n = len(m.x)
    if kind == "fgsm":
        atk = FastGradientMethod(clf, norm=order, eps=eps, batch_size=n)
    else:
        atk = ProjectedGradientDescent(clf, norm=order, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                       num_random_init=1, batch_size=n, verbose=False)
    x, y = m.x.numpy(), m.y.numpy()
    return lambda: atk.generate(x, y=y)


def tool_foolbox(m: ZooModel, kind: str, norm: str, eps: float, steps: int):
    import foolbox as fb

    fmodel = fb.PyTorchModel(m.net, bounds=(0.0, 1.0))
    if kind == "fgsm":
        atk = fb.attacks.FGSM() if norm == "linf" else fb.attacks.FGM()
    elif norm == "linf":
        atk = fb.attacks.LinfPGD(abs_stepsize=2.5 * eps / steps, steps=steps, random_start=True)
    else:
        atk = fb.attacks.L2PGD(abs_stepsize=2.5 * eps / steps, steps=steps, random_start=True)
    return lambda: atk(fmodel, m.x, m.y, epsilons=eps)[1]


TOOLS = {"stalwart": tool_stalwart, "torchattacks": tool_torchattacks, "torchattacks + check": tool_torchattacks_checked,
         "ART": tool_art, "Foolbox": tool_foolbox}
PEERS = ["torchattacks", "ART", "Foolbox"]  # as they come: `ratio`
CHECKED = ["torchattacks + check", "Foolbox"]  # the ones whose time includes the verdict: `ratio checked`


def settings(m: ZooModel) -> list[tuple[str, str, float, int]]:
    l2 = 1.0 if m.x[0].numel() <= 64 else 0.5
    return [("fgsm", "linf", m.eps, 1), ("pgd", "linf", m.eps, 20), ("pgd", "l2", l2, 50)]


def attack_rows(m: ZooModel, threads: int) -> list[list]:
    rows = []
    for kind, norm, eps, steps in settings(m):
        setting = f"{kind.upper()}-{norm} eps={eps:.3g}" + (f" {steps} steps" if kind == "pgd" else "")
        floor = floor_time(m.net, m.x, m.y, steps)
        runs, times, accs = {}, {t: [] for t in TOOLS}, {}
        for tool, make in TOOLS.items():
            try:
                runs[tool] = make(m, kind, norm, eps, steps)
                runs[tool]()  # warm-up (also settles lazy initialisation)
            except Exception as exc:  # noqa: BLE001 - a peer failing is a result too
                print(f"{tool} failed on {m.name} {setting}: {exc}", file=sys.stderr)
        for _ in range(REPEATS):  # interleaved: a busy moment hits every tool alike
            for tool, fn in runs.items():
                torch.manual_seed(0)
                start = time.perf_counter()
                out = fn()
                times[tool].append(time.perf_counter() - start)
                accs[tool] = robust_acc(m.net, out, m.y)
        best = {t: min(v) for t, v in times.items() if v}
        peers = [t for t in PEERS if t in best]
        fastest = min(best[t] for t in peers)
        fastest_checked = min((best[t] for t in CHECKED if t in best), default=float("nan"))
        lowest = min(accs[t] for t in peers)
        cells = [f"{1000 * best[t]:.1f}" if t in best else "fails" for t in TOOLS]
        rows.append([m.name, setting, threads, f"{accs['stalwart']:.3f}", f"{accs['stalwart'] - lowest:+.3f}",
                     *cells, f"{best['stalwart'] / fastest:.2f}", f"{best['stalwart'] / fastest_checked:.2f}",
                     f"{best['stalwart'] / floor:.2f}"])
        print(rows[-1], flush=True)
    return rows


def ensemble_row(m: ZooModel, threads: int) -> list:
    import torchattacks

    threat = attacks.ThreatModel("linf", m.eps, (0.0, 1.0))
    x, y = m.x.numpy(), m.y.numpy()
    ev, t_s = timed(lambda: attacks.evaluate(stalwart.wrap(m.net), x, y, threat))  # the full default
    aa = torchattacks.AutoAttack(m.net, norm="Linf", eps=m.eps, version="standard", n_classes=10, seed=0)
    x_aa, t_aa = timed(lambda: aa(m.x_images, m.y))
    ra_aa = robust_acc(m.net, x_aa, m.y)
    row = [m.name, f"{m.eps:.3g}", threads, f"{ev.robust_accuracy:.3f}", f"{ra_aa:.3f}",
           f"{ev.robust_accuracy - ra_aa:+.3f}", f"{t_s:.2f}", f"{ev.curve_time_s:.2f}", f"{t_aa:.2f}",
           f"{t_s / t_aa:.2f}", "yes" if all(s.passed for s in ev.sanity) else "no"]
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(ZOO_NAMES), choices=ZOO_NAMES)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--skip-ensemble", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args()
    import torchattacks  # noqa: F401 - fail early when the peers are missing

    load_start = os.getloadavg()[0]
    zoo = build_zoo(args.models)
    rows, ensemble = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for m in zoo:
            rows += attack_rows(m, threads)
    if not args.skip_ensemble:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for m in zoo:
                ensemble.append(ensemble_row(m, threads))
    load_end = os.getloadavg()[0]

    zoo_table = markdown_table(["model", "description", "test samples", "clean acc", "eps (linf)"],
                               [[m.name, m.description, len(m.x), f"{m.clean_accuracy:.3f}", f"{m.eps:.3g}"]
                                for m in zoo])
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=attacks` (= `.venv-bench/bin/python benchmarks/bench_attacks.py`; "
        f"machine: {machine()}, CPU, torch {torch.__version__}; torch threads {' and '.join(map(str, args.threads))}; "
        f"load average {load_start:.1f} at the start and {load_end:.1f} at the end). Ratios are from this one run.",
        "### The zoo\n\nTrained in the benchmark with seed 0 (`benchmarks/zoo.py`); bounds [0, 1]; eps in the data's "
        "[0, 1] unit. torchattacks takes image batches only, so it gets the digits MLPs' 64 features as 1 x 8 x 8 "
        "images (the networks flatten them; the same values).\n\n" + zoo_table,
        "### FGSM and PGD: stalwart against the peers\n\nStep size 2.5·eps/steps for every tool, random start where "
        "the tool has one. Times are the best of "
        f"{REPEATS} interleaved runs per tool, in ms. `Δ robust acc` is stalwart's minus the lowest peer's "
        "(negative = stalwart stronger); `ratio` is stalwart's time over the fastest peer's; `floor×` is stalwart's "
        "time over that of the same number of plain forward+backward passes on the whole batch. stalwart's time "
        "includes recomputing success from the model's own predictions on the returned inputs (one more forward "
        "pass), and so does Foolbox's; torchattacks and ART return inputs without checking them. "
        "`torchattacks + check` is torchattacks followed by that forward pass (what a user runs to learn which "
        "attacks succeeded); `ratio checked` is stalwart's time over the faster of it and Foolbox, the same work. "
        "Every tool gets the same tensors, laid out as a DataLoader's batches are (standard NCHW strides).\n\n"
        + markdown_table(["model", "setting", "threads", "robust acc", "Δ robust acc", "stalwart ms",
                          "torchattacks ms", "torchattacks + check ms", "ART ms", "Foolbox ms", "ratio",
                          "ratio checked", "floor×"], rows),
    ])
    if ensemble:
        body += "\n\n" + (
            "### Ensemble: `stalwart.attacks.evaluate` vs torchattacks AutoAttack (standard, linf)\n\n"
            "`evaluate` as a user calls it, with every default: APGD-CE (100 steps), APGD-T (9 targets, 100 steps), "
            "Square (1,000 queries, escalated to 5,000 on signs of gradient masking), the eps curve at 0.25, 0.5 "
            "and 2 x eps, and the sanity checks. torchattacks' AutoAttack runs APGD-CE, APGD-T and FAB-T with its "
            "default 10 steps each, then Square with 5,000 queries. One run each; `curve s` is the part of "
            "`evaluate s` spent on the eps curve (`EvaluationResult.curve_time_s`).\n\n"
            + markdown_table(["model", "eps", "threads", "evaluate robust acc", "AutoAttack robust acc",
                              "Δ robust acc", "evaluate s", "curve s", "AutoAttack s", "time ratio", "sanity passed"],
                             ensemble))
    if args.no_write:
        print(body)
    else:
        write_section("Adversarial attacks", body)


if __name__ == "__main__":
    main()
