"""Adversarial training: stalwart's PGD-AT, TRADES and fast FGSM training against ART's adversarial
trainer (Madry PGD) on the benchmark zoo's digits CNN, at L-inf eps 0.1.

    python benchmarks/bench_harden.py              # writes the "Adversarial training" section
    python benchmarks/bench_harden.py --no-write   # prints it

Model: the zoo's ``cnn-s`` architecture (``benchmarks/zoo.py``: conv16-conv32-pool-fc64 on 1 x 8 x 8
digits), re-initialised with seed 0 for every row; ``--wide`` adds rows for a wider CNN of the same
shape (conv32-conv64-pool-fc128). Data: the zoo's split (``stalwart.datasets.load_split("digits",
seed=0)``): every row trains on the same first 90% of the training split; the last 10% of it is the
held-out data stalwart validates on after each epoch (and keeps the best epoch's weights by); the
first 500 samples of the test split are only ever used by the judge, `stalwart.attacks.evaluate`
(level "standard"), the same for every row.

Every row has the same budget: epochs, batch size, Adam and its learning rate, PGD steps, step
size ``2.5 * eps / steps``, one random start, torch seed 0. Times are per epoch of training
(stalwart's validation is timed apart); ``passes`` is the epoch's time over ``steps + 1`` plain
training epochs (forward, backward, optimiser step on clean batches) timed in the same process,
interleaved with the rows: the issue's target is at most 1.2.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, versions, write_section  # noqa: E402
from zoo import build_zoo  # noqa: E402

warnings.filterwarnings("ignore")
TITLE = "Adversarial training"
EPS = 0.1


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train x, train y, validation x, validation y, test x, test y): the zoo's split, the
    training part cut 90/10 the way ``adversarial_training`` cuts it by default."""
    import stalwart

    train, test = stalwart.datasets.load_split("digits", seed=0)
    x = torch.as_tensor(train.x, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    n_val = len(x) // 10
    xt = torch.as_tensor(test.x[:500], dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(test.y)[:500], dtype=torch.long)
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:], xt, yt


def fresh(template: nn.Module, seed: int = 0) -> nn.Module:
    """``template``'s architecture with fresh weights drawn with ``seed``."""
    net = copy.deepcopy(template)
    torch.manual_seed(seed)
    for module in net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return net.requires_grad_(True).train()


def plain_epochs(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
                 seed: int = 0) -> list[float]:
    """Standard training, timed per epoch: the unit of the ``passes`` column."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    times = []
    net.train()
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    net.eval()
    return times


def judge(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """(clean accuracy, robust accuracy by ``evaluate`` at the standard level, seconds it took)."""
    from stalwart import attacks

    net.eval()
    with torch.no_grad():
        clean = float((net(x).argmax(1) == y).float().mean())
    start = time.perf_counter()
    res = attacks.evaluate(net, x.numpy(), y.numpy(), attacks.ThreatModel("linf", EPS, (0.0, 1.0)),
                           level="standard", seed=0)
    return clean, float(res.robust_accuracy), time.perf_counter() - start


def train_stalwart(net: nn.Module, data: tuple, method: str, args: argparse.Namespace) -> dict:
    from stalwart import attacks
    from stalwart.defend import adversarial_training

    x, y, xv, yv = data[:4]
    res = adversarial_training(net, x.numpy(), y.numpy(), attacks.ThreatModel("linf", EPS, (0.0, 1.0)),
                               method=method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               steps=args.steps, beta=args.beta, eps_warmup=args.eps_warmup, x_val=xv.numpy(),
                               y_val=yv.numpy(), seed=0)
    return {"total_s": res.time_s, "epoch_s": statistics.median(r["train_time_s"] for r in res.history),
            "note": f"best epoch {res.best_epoch} (val robust {res.history[res.best_epoch - 1]['val_robust_accuracy']:.2f})"}


def train_art(net: nn.Module, data: tuple, args: argparse.Namespace) -> dict:
    """ART's ``AdversarialTrainer`` with its ``ProjectedGradientDescent`` on whole batches (what
    ``AdversarialTrainerMadryPGD`` builds, but that one attacks in sub-batches of 32)."""
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainer
    from art.estimators.classification import PyTorchClassifier

    x, y = data[0].numpy(), data[1].numpy()
    np.random.seed(0)  # ART shuffles and draws its random start with numpy's global generator
    clf = PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(net.parameters(), lr=args.lr),
                            input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    pgd = ProjectedGradientDescent(clf, norm=np.inf, eps=EPS, eps_step=2.5 * EPS / args.steps, max_iter=args.steps,
                                   num_random_init=1, batch_size=args.batch_size, verbose=False)
    trainer = AdversarialTrainer(clf, pgd, ratio=1.0)
    start = time.perf_counter()
    trainer.fit(x, y, nb_epochs=args.epochs, batch_size=args.batch_size)
    total = time.perf_counter() - start
    return {"total_s": total, "epoch_s": total / args.epochs, "note": "last epoch's weights"}


def rows_for(template: nn.Module, label: str, data: tuple, args: argparse.Namespace, threads: int,
             plain: list[float]) -> list[list]:
    torch.set_num_threads(threads)
    rows = []
    methods = ["standard", *args.methods] + ([] if args.skip_art else ["ART"])
    for method in methods:
        plain += plain_epochs(fresh(template, seed=1), data[0], data[1], epochs=3, batch_size=args.batch_size,
                              lr=args.lr)  # the unit, measured next to every row
        net = fresh(template)
        if method == "standard":
            times = plain_epochs(net, data[0], data[1], epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
            out = {"total_s": sum(times), "epoch_s": statistics.median(times), "note": "last epoch's weights"}
        elif method == "ART":
            out = train_art(net, data, args)
        else:
            out = train_stalwart(net, data, method, args)
        clean, robust, judge_s = judge(net, data[4], data[5])
        out.update(model=label, method=method, threads=threads, clean=clean, robust=robust, judge_s=judge_s)
        rows.append(out)
        print(out, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--beta", type=float, default=6.0, help="TRADES beta")
    parser.add_argument("--eps-warmup", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["pgd", "trades", "fast"],
                        choices=["pgd", "trades", "fast"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1])
    parser.add_argument("--wide", action="store_true", help="also train a wider CNN (conv32-conv64-pool-fc128)")
    parser.add_argument("--skip-art", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    if not args.skip_art:
        import art  # noqa: F401 - fail early when the peer is missing

    load_start = os.getloadavg()[0]
    (zoo_cnn,) = build_zoo(["cnn-s"])
    models = [("cnn-s", zoo_cnn.net)]
    if args.wide:
        models.append(("cnn-wide", type(zoo_cnn.net)(1, 8, (32, 64), 128)))  # the zoo's CNN class, wider
    data = digits()
    start = time.perf_counter()
    rows, plain = [], {}
    for threads in args.threads:
        for label, template in models:
            unit = plain.setdefault((label, threads), [])
            rows += rows_for(template, label, data, args, threads, unit)
    load_end = os.getloadavg()[0]

    table = []
    for r in rows:
        unit = statistics.median(plain[(r["model"], r["threads"])])
        attack_steps = 1 if r["method"] == "fast" else args.steps
        passes = "" if r["method"] == "standard" else f"{r['epoch_s'] / ((attack_steps + 1) * unit):.2f}"
        table.append([r["model"], r["method"], r["threads"], f"{r['clean']:.3f}", f"{r['robust']:.3f}",
                      f"{r['total_s']:.1f}", f"{r['epoch_s'] * 1000:.0f}", f"{unit * 1000:.0f}", passes, r["note"]])
    art_version = "" if args.skip_art else ", adversarial-robustness-toolbox " + __import__("art").__version__
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=harden` (= `.venv-bench/bin/python benchmarks/bench_harden.py"
        f"{' --wide' if args.wide else ''}`; machine: {machine()}, CPU, torch {torch.__version__}; "
        f"{versions()}{art_version}; torch threads {' and '.join(map(str, args.threads))}; load average "
        f"{load_start:.1f} at the start and {load_end:.1f} at the end: a busy machine shared with other jobs, so "
        f"times carry its noise; {time.perf_counter() - start:.0f} s in all). One run.",
        f"L-inf eps {EPS}, bounds [0, 1]. Every row: {args.epochs} epochs, batch {args.batch_size}, Adam lr {args.lr:g}, "
        f"{args.steps} PGD steps of {2.5 * EPS / args.steps:.3g} from one random start (TRADES: beta {args.beta:g}, "
        "its KL objective from a 0.001 Gaussian start; fast: one FGSM step of 1.25·eps), torch seed 0, the same "
        f"{len(data[0])} training digits (the zoo's training split less its last {len(data[2])}, which stalwart "
        "validates on after each epoch with PGD-10). Judge for every row, ART's included: "
        f"`stalwart.attacks.evaluate(level=\"standard\")` on the first {len(data[4])} digits of the zoo's test split, "
        "which no row trains or selects on. `epoch ms`: median training time of one epoch (stalwart's per-epoch "
        "validation not included; `total s` includes it); `plain ms`: one standard training epoch on the same "
        "data (median of 3 epochs before every row); `passes` = epoch ms / ((steps + 1) × plain ms), target ≤ 1.2 "
        "(for fast training steps = 1; TRADES also runs a clean forward pass for its attack and both the clean and "
        "the adversarial batch through the update, so its floor is above PGD-AT's). Below 1 is possible: an attack step needs the input's gradient only, "
        "with no optimiser step, while the unit is a whole training step. ART converts each numpy "
        "batch to a tensor in the default NCHW layout; stalwart keeps the batch's own layout in its attack steps "
        "(a 1-channel batch indexed from a tensor is channels-last for torch, which runs this CNN's max-pool "
        "faster): part of the time difference is that.",
        markdown_table(["model", "training", "threads", "clean acc", "robust acc (evaluate)", "total s", "epoch ms",
                        "plain ms", "passes", "weights"], table),
    ])
    if args.no_write:
        print(body)
    else:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
