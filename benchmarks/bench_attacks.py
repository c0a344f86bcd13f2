"""Attack strength and speed: stalwart vs torchattacks, ART and Foolbox on the same torch models.

An MLP and a small CNN are trained here on scikit-learn's digits (8x8, scaled to [0, 1]); the
first 500 test samples are attacked by every tool with the same eps, steps and step size. Also
timed: the same number of plain forward+backward passes on the whole batch (the floor no
gradient attack can beat without early stopping), and stalwart's ``evaluate`` against
torchattacks' AutoAttack (standard, linf, eps 0.1).

    python benchmarks/bench_attacks.py          # writes the "Adversarial attacks" section
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, timed, write_section  # noqa: E402

import stalwart  # noqa: E402
from stalwart import attacks  # noqa: E402

warnings.filterwarnings("ignore")
N = 500


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 40) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net.eval()


def models(train_x: torch.Tensor, train_y: torch.Tensor) -> dict[str, nn.Module]:
    from stalwart.demo import DigitsCNN

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return {"MLP": train(mlp, train_x, train_y), "CNN": train(DigitsCNN(), train_x, train_y)}


def floor_time(net: nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int) -> float:
    def run():
        xa = x.clone()
        for _ in range(passes):
            xa.requires_grad_(True)
            loss = nn.functional.cross_entropy(net(xa), y)
            (g,) = torch.autograd.grad(loss, xa)
            xa = (xa.detach() + 1e-3 * g.sign()).clamp(0, 1)
        return xa
    return timed(run)[1]


def robust_acc(net: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(torch.as_tensor(x_adv, dtype=torch.float32)).argmax(1) == y).float().mean())


# -- each tool's run of one setting ---------------------------------------------------------------
def run_stalwart(net, x, y, kind, norm, eps, steps):
    threat = attacks.ThreatModel(norm, eps, (0.0, 1.0))
    model = stalwart.wrap(net)
    atk = attacks.FGSM(threat) if kind == "fgsm" else attacks.PGD(threat, steps=steps, step_size=2.5 * eps / steps)
    res, t = timed(lambda: atk.run(model, x.numpy(), y.numpy()))
    return res.robust_accuracy, t


def run_torchattacks(net, x, y, kind, norm, eps, steps):
    import torchattacks

    if kind == "fgsm":
        atk = torchattacks.FGSM(net, eps=eps)
    elif norm == "linf":
        atk = torchattacks.PGD(net, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    else:
        atk = torchattacks.PGDL2(net, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    x_adv, t = timed(lambda: atk(x, y))
    return robust_acc(net, x_adv, y), t


def run_art(net, x, y, kind, norm, eps, steps):
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(net, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=10,
                            clip_values=(0.0, 1.0))
    order = np.inf if norm == "linf" else 2
    if kind == "fgsm":
        atk = FastGradientMethod(clf, norm=order, eps=eps, batch_size=N)
    else:
        atk = ProjectedGradientDescent(clf, norm=order, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                       num_random_init=1, batch_size=N, verbose=False)
    x_adv, t = timed(lambda: atk.generate(x.numpy()))
    return robust_acc(net, x_adv, y), t


def run_foolbox(net, x, y, kind, norm, eps, steps):
    import foolbox as fb

    fmodel = fb.PyTorchModel(net, bounds=(0.0, 1.0))
    if kind == "fgsm":
        atk = fb.attacks.FGSM() if norm == "linf" else fb.attacks.FGM()
    elif norm == "linf":
        atk = fb.attacks.LinfPGD(abs_stepsize=2.5 * eps / steps, steps=steps, random_start=True)
    else:
        atk = fb.attacks.L2PGD(abs_stepsize=2.5 * eps / steps, steps=steps, random_start=True)
    (_, clipped, _), t = timed(lambda: atk(fmodel, x, y, epsilons=eps))
    return robust_acc(net, clipped, y), t


TOOLS = {"stalwart": run_stalwart, "torchattacks": run_torchattacks, "ART": run_art, "Foolbox": run_foolbox}
SETTINGS = [("fgsm", "linf", 0.1, 1), ("pgd", "linf", 0.1, 20), ("pgd", "linf", 0.1, 50),
            ("pgd", "linf", 0.2, 20), ("pgd", "linf", 0.2, 50), ("pgd", "l2", 1.0, 50)]


def main() -> None:
    import torchattacks

    train_ds, test_ds = stalwart.datasets.load_split("digits", seed=0)
    tx = torch.as_tensor(train_ds.x, dtype=torch.float32)
    ty = torch.as_tensor(np.asarray(train_ds.y), dtype=torch.long)
    x = torch.as_tensor(test_ds.x[:N], dtype=torch.float32)
    y = torch.as_tensor(np.asarray(test_ds.y)[:N], dtype=torch.long)
    nets = models(tx, ty)

    rows, ratio_rows = [], []
    for mname, net in nets.items():
        for p in net.parameters():
            p.requires_grad_(False)
        for kind, norm, eps, steps in SETTINGS:
            setting = f"{kind.upper()}-{norm} eps={eps:g}" + (f" {steps} steps" if kind == "pgd" else "")
            floor = floor_time(net, x, y, steps)
            results = {}
            for tool, fn in TOOLS.items():
                try:
                    results[tool] = fn(net, x, y, kind, norm, eps, steps)
                except Exception as exc:  # noqa: BLE001 - a peer failing is a result too
                    results[tool] = (float("nan"), float("nan"))
                    print(f"{tool} failed on {mname} {setting}: {exc}", file=sys.stderr)
            ra_s, t_s = results["stalwart"]
            peers = {k: v for k, v in results.items() if k != "stalwart" and np.isfinite(v[0])}
            best_ra = min(v[0] for v in peers.values())
            fastest = min(v[1] for v in peers.values())
            for tool, (ra, t) in results.items():
                rows.append([mname, setting, tool, f"{ra:.3f}", f"{t:.3f}", f"{t / floor:.2f}"])
            ratio_rows.append([mname, setting, f"{ra_s - best_ra:+.3f}", f"{t_s / fastest:.2f}", f"{t_s / floor:.2f}"])
            print(mname, setting, {k: (round(v[0], 3), round(v[1], 3)) for k, v in results.items()},
                  f"floor {floor:.3f}s", flush=True)

    ensemble_rows = []
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    for mname, net in nets.items():
        # best of two runs each, interleaved: these take seconds and a shared 2-core machine jitters
        runs_s, runs_aa = [], []
        for _ in range(2):
            runs_s.append(timed(lambda net=net: attacks.evaluate(stalwart.wrap(net), x.numpy(), y.numpy(), threat,
                                                                 level="standard", sanity=False, eps_curve=[0.1])))
            aa = torchattacks.AutoAttack(net, norm="Linf", eps=0.1, version="standard", n_classes=10, seed=0)
            runs_aa.append(timed(lambda aa=aa: aa(x, y)))
        ev, t_s = runs_s[0][0], min(t for _, t in runs_s)
        x_aa, t_aa = runs_aa[0][0], min(t for _, t in runs_aa)
        ra_aa = robust_acc(net, x_aa, y)
        ensemble_rows.append([mname, f"{ev.robust_accuracy:.3f}", f"{t_s:.2f}", f"{ra_aa:.3f}", f"{t_aa:.2f}",
                              f"{ev.robust_accuracy - ra_aa:+.3f}", f"{t_s / t_aa:.2f}"])
        print(mname, "evaluate", ev.robust_accuracy, t_s, "AutoAttack", ra_aa, t_aa, flush=True)

    # one run per tool is noisy at a large eps, where a handful of samples decide; five seeds each
    seed_rows = []
    for mname, net in nets.items():
        for norm, eps in (("linf", 0.2), ("l2", 1.0)):
            ours, theirs = [], []
            for seed in range(5):
                threat_s = attacks.ThreatModel(norm, eps, (0.0, 1.0))
                pgd = attacks.PGD(threat_s, steps=50, step_size=2.5 * eps / 50, seed=seed)
                ours.append(pgd.run(stalwart.wrap(net), x.numpy(), y.numpy()).robust_accuracy)
                torch.manual_seed(seed)
                cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
                theirs.append(robust_acc(net, cls(net, eps=eps, alpha=2.5 * eps / 50, steps=50,
                                                  random_start=True)(x, y), y))
            seed_rows.append([mname, f"PGD-{norm} eps={eps:g} 50 steps", f"{np.mean(ours):.4f} ± {np.std(ours):.4f}",
                              f"{np.mean(theirs):.4f} ± {np.std(theirs):.4f}", f"{np.mean(ours) - np.mean(theirs):+.4f}"])
            print(seed_rows[-1], flush=True)

    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=attacks` (machine: {machine()}, CPU, torch "
        f"{torch.__version__}). Models trained on digits in the benchmark; first {N} test samples; bounds "
        "[0, 1]; step size 2.5·eps/steps for every tool; random start where the tool has one.",
        "### Robust accuracy and time per tool\n\n`floor×` is the time over the time of the same number "
        "of plain forward+backward passes on the whole batch.\n\n"
        + markdown_table(["model", "setting", "tool", "robust acc", "time (s)", "floor×"], rows),
        "### stalwart against the best peer\n\n`Δ robust acc` is stalwart's minus the lowest peer's "
        "(negative = stalwart stronger); `time ratio` is stalwart's time over the fastest peer's.\n\n"
        + markdown_table(["model", "setting", "Δ robust acc", "time ratio", "floor×"], ratio_rows),
        "### PGD over five seeds (mean ± std of robust accuracy), stalwart vs torchattacks\n\n"
        + markdown_table(["model", "setting", "stalwart", "torchattacks", "Δ"], seed_rows),
        "### Ensemble: `stalwart.attacks.evaluate` vs torchattacks AutoAttack (standard, linf, eps 0.1)\n\n"
        "`evaluate` runs APGD-CE, APGD-T (9 targets) and Square with 1,000 queries, escalated to 5,000 "
        "on signs of gradient masking (none here); AutoAttack runs APGD-CE, APGD-T, FAB-T and Square "
        "with 5,000 queries. Sanity checks off for the timing; times are the best of two interleaved runs.\n\n"
        + markdown_table(["model", "evaluate robust acc", "evaluate s", "AutoAttack robust acc", "AutoAttack s",
                          "Δ robust acc", "time ratio"], ensemble_rows),
    ])
    write_section("Adversarial attacks", body)


if __name__ == "__main__":
    main()
