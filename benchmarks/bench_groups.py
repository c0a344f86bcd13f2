"""Group metrics: stalwart's values against fairlearn's and AIF360's on the same predictions.

    python benchmarks/bench_groups.py             # writes the "Group metrics" section
    python benchmarks/bench_groups.py --no-write  # prints it

Synthetic predictions (20,000 rows, a planted disparity) with a binary sensitive column (AIF360
compares two groups) and with a four-valued one (fairlearn compares all groups). Every metric
both libraries share with stalwart is computed by each; the table lists the largest absolute
difference. The agreement target is 1e-9.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stalwart import groups  # noqa: E402

warnings.filterwarnings("ignore")


def data(seed: int = 0, n: int = 20_000):
    rng = np.random.default_rng(seed)
    s2 = rng.choice(["priv", "unpriv"], size=n, p=[0.6, 0.4])
    s4 = rng.choice(["a", "b", "c", "d"], size=n)
    y = (rng.random(n) < 0.45).astype(int)
    rate = np.where(s2 == "priv", 0.55, 0.35) + np.where(s4 == "d", -0.1, 0.0)
    p = np.where(rng.random(n) < 0.8, y, (rng.random(n) < rate).astype(int))
    return y, p, s2, s4


def fairlearn_rows(y, p, s4) -> list[list]:
    from fairlearn import metrics as fm

    pairs = [
        ("demographic_parity_difference", groups.demographic_parity_difference, fm.demographic_parity_difference),
        ("demographic_parity_ratio", groups.demographic_parity_ratio, fm.demographic_parity_ratio),
        ("equalized_odds_difference", groups.equalized_odds_difference, fm.equalized_odds_difference),
        ("equalized_odds_ratio", groups.equalized_odds_ratio, fm.equalized_odds_ratio),
    ]
    rows = []
    for name, ours, theirs in pairs:
        a = ours(y, p, sensitive_features=s4)
        b = theirs(y, p, sensitive_features=s4)
        rows.append(["fairlearn", name, "4 groups", f"{a:.12f}", f"{b:.12f}", f"{abs(a - b):.1e}"])
    frame = fm.MetricFrame(metrics={"accuracy": lambda t, q: float(np.mean(t == q)),
                                    "tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate,
                                    "selection_rate": fm.selection_rate},
                           y_true=y, y_pred=p, sensitive_features=s4)
    ours = groups.group_metrics(y, p, s4, metrics=["accuracy", "tpr", "fpr", "selection_rate"], n_boot=10)
    for m in ("accuracy", "tpr", "fpr", "selection_rate"):
        diff = max(abs(r[m] - frame.by_group[m][r["group"]]) for r in ours.by_group)
        rows.append(["fairlearn", f"MetricFrame by_group {m}", "4 groups", "-", "-", f"{diff:.1e}"])
    return rows


def aif360_rows(y, p, s2) -> list[list]:
    from aif360.datasets import BinaryLabelDataset
    from aif360.metrics import ClassificationMetric

    prot = (s2 == "priv").astype(float)
    truth = BinaryLabelDataset(df=pd.DataFrame({"y": y.astype(float), "s": prot}), label_names=["y"],
                               protected_attribute_names=["s"])
    pred = truth.copy()
    pred.labels = p.astype(float).reshape(-1, 1)
    cm = ClassificationMetric(truth, pred, unprivileged_groups=[{"s": 0.0}], privileged_groups=[{"s": 1.0}])
    kw = {"sensitive_features": s2, "privileged": "priv"}
    pairs = [
        ("statistical_parity_difference", groups.statistical_parity_difference(y, p, **kw),
         cm.statistical_parity_difference()),
        ("disparate_impact", groups.disparate_impact(y, p, **kw), cm.disparate_impact()),
        ("equal_opportunity_difference", groups.equal_opportunity_difference(y, p, **kw),
         cm.equal_opportunity_difference()),
        ("average_odds_difference", groups.average_odds_difference(y, p, **kw), cm.average_odds_difference()),
        ("predictive parity (PPV difference)", groups.predictive_parity_difference(y, p, **kw),
         cm.positive_predictive_value(privileged=False) - cm.positive_predictive_value(privileged=True)),
    ]
    return [["AIF360", name, "2 groups", f"{a:.12f}", f"{b:.12f}", f"{abs(a - b):.1e}"] for name, a, b in pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    y, p, s2, s4 = data()
    start = time.perf_counter()
    rows = fairlearn_rows(y, p, s4) + aif360_rows(y, p, s2)
    worst = max(float(r[-1]) for r in rows)
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=groups` (= `.venv-bench/bin/python benchmarks/bench_groups.py`; machine: "
        f"{machine()}). 20,000 synthetic predictions with a planted disparity; fairlearn's metrics on a "
        "four-valued sensitive column, AIF360's (which compare an unprivileged with a privileged group) on a "
        "binary one.",
        markdown_table(["peer", "metric", "groups", "stalwart", "peer value", "|difference|"], rows),
        f"Largest difference: {worst:.1e} (target 1e-9: {'met' if worst <= 1e-9 else 'not met'}); "
        f"{time.perf_counter() - start:.1f} s for the whole comparison.",
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Group metrics", body)


if __name__ == "__main__":
    main()
