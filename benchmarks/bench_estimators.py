"""Label-free accuracy estimation: stalwart's ConfidenceEstimator beside NannyML's CBPE under covariate shift.

    python benchmarks/bench_estimators.py              # writes the "Label-free accuracy estimation" section
    python benchmarks/bench_estimators.py --no-write   # prints it
    python benchmarks/bench_estimators.py --seeds 2 --no-write   # a quick look

Two tasks, binary and three classes. Features are Gaussian; labels follow a fixed noisy rule
(nonlinear for the binary task), so P(y | x) never changes and only the inputs move: covariate
shift. A logistic regression is trained on 4,000 rows, both estimators are fitted on a labelled
reference of 5,000 rows from the training distribution, then judge ``--chunks`` unlabelled chunks of
``--chunk-rows`` rows whose inputs move a little further each chunk (the first chunk unshifted).
Each chunk's true accuracy is measured on its labels; the table gives the mean absolute error of
the estimates in accuracy points over all chunks and ``--seeds`` seeds, and the worst chunk.

- stalwart: ``ConfidenceEstimator(model)`` with its defaults (isotonic calibration for a
  scikit-learn model, the average calibrated confidence).
- NannyML: ``CBPE`` (confidence-based performance estimation, its own calibration), metric
  ``accuracy``, one chunk per shifted chunk. NannyML pins its own numpy/pandas, so it runs in
  ``.venv-nannyml`` (``pip install -r benchmarks/requirements-nannyml.txt``) in a subprocess; the
  predicted probabilities, predictions and reference labels go to it through Parquet files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
NANNYML_PYTHON = HERE.parent / ".venv-nannyml" / "bin" / "python"


def make_task(task: str, seed: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``task`` with every input mean moved by ``shift`` (labels by the same rule)."""
    rng = np.random.default_rng(seed)
    d = 6
    x = rng.normal(size=(n, d)) + shift * np.linspace(1.0, 0.2, d)
    if task == "binary":
        score = x[:, 0] - 0.8 * x[:, 1] + 0.4 * x[:, 2] * x[:, 3] + 0.3 * x[:, 4] ** 2 - 0.3
        y = (score + rng.logistic(scale=0.6, size=n) > 0).astype(int)
    else:
        scores = np.stack([x[:, 0] + 0.5 * x[:, 2], -x[:, 0] + x[:, 1], 0.6 * x[:, 3] - 0.7 * x[:, 1] + 0.3], axis=1)
        y = np.argmax(scores + rng.gumbel(scale=0.7, size=scores.shape), axis=1)
    return x, y


def scenario(task: str, seed: int, chunks: int, chunk_rows: int, max_shift: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    x_tr, y_tr = make_task(task, 1000 * seed + 1, 4000, 0.0)
    x_ref, y_ref = make_task(task, 1000 * seed + 2, 5000, 0.0)
    model = LogisticRegression(max_iter=1000).fit(x_tr, y_tr)
    parts = [make_task(task, 1000 * seed + 10 + k, chunk_rows, max_shift * k / max(1, chunks - 1))
             for k in range(chunks)]
    return {"model": model, "x_ref": x_ref, "y_ref": y_ref, "chunks": parts}


def stalwart_estimates(s: dict[str, Any]) -> tuple[list[float], float]:
    from stalwart.shift.performance import ConfidenceEstimator

    start = time.perf_counter()
    est = ConfidenceEstimator(s["model"]).fit(s["x_ref"], s["y_ref"])
    out = [float(est.estimate(x)["accuracy"]) for x, _ in s["chunks"]]
    return out, time.perf_counter() - start


def nannyml_frames(s: dict[str, Any], folder: Path) -> None:
    import pandas as pd

    model, classes = s["model"], list(s["model"].classes_)

    def frame(x: np.ndarray, y: np.ndarray | None, chunk: int) -> pd.DataFrame:
        proba = model.predict_proba(x)
        df = pd.DataFrame({f"p{c}": proba[:, i] for i, c in enumerate(classes)})
        df["y_pred"] = model.predict(x)
        df["chunk"] = chunk
        if y is not None:
            df["y_true"] = y
        return df

    frame(s["x_ref"], s["y_ref"], -1).to_parquet(folder / "reference.parquet")
    pd.concat([frame(x, None, k) for k, (x, _) in enumerate(s["chunks"])]).to_parquet(folder / "analysis.parquet")
    (folder / "classes.json").write_text(json.dumps([int(c) for c in classes]))


def nannyml_worker(folder: str) -> dict[str, Any]:
    """Runs inside .venv-nannyml: CBPE fitted on the reference, accuracy per chunk."""
    import nannyml as nml
    import pandas as pd

    root = Path(folder)
    ref, ana = pd.read_parquet(root / "reference.parquet"), pd.read_parquet(root / "analysis.parquet")
    classes = json.loads((root / "classes.json").read_text())
    rows = int((ana["chunk"] == 0).sum())
    binary = len(classes) == 2
    start = time.perf_counter()
    est = nml.CBPE(y_pred_proba=f"p{classes[1]}" if binary else {c: f"p{c}" for c in classes}, y_pred="y_pred",
                   y_true="y_true", problem_type="classification_binary" if binary else "classification_multiclass",
                   metrics=["accuracy"], chunk_size=rows)
    est.fit(ref.drop(columns="chunk"))
    result = est.estimate(ana.drop(columns="chunk")).filter(period="analysis").to_df()
    values = result[("accuracy", "value")].tolist()
    return {"accuracy": [float(v) for v in values], "seconds": time.perf_counter() - start,
            "version": nml.__version__}


def run_nannyml(s: dict[str, Any], python: Path, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stalwart-bench-cbpe-") as tmp:
        nannyml_frames(s, Path(tmp))
        proc = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", tmp], capture_output=True,
                              text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"NannyML failed: {proc.stderr.strip()[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--chunks", type=int, default=6)
    ap.add_argument("--chunk-rows", type=int, default=2000)
    ap.add_argument("--max-shift", type=float, default=1.5, help="input mean shift of the last chunk (in sd)")
    ap.add_argument("--nannyml-python", default=str(NANNYML_PYTHON))
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(nannyml_worker(args.worker)))
        return

    sys.path.insert(0, str(HERE))
    from _common import machine, markdown_table, versions, write_section

    nannyml = Path(args.nannyml_python)
    rows, version = [], "n/a"
    for task in ("binary", "3 classes"):
        err: dict[str, list[float]] = {"stalwart": [], "NannyML": []}
        secs: dict[str, float] = {"stalwart": 0.0, "NannyML": 0.0}
        truth_range: list[float] = []
        for seed in range(args.seeds):
            s = scenario("binary" if task == "binary" else "multi", seed, args.chunks, args.chunk_rows, args.max_shift)
            truth = np.array([float((s["model"].predict(x) == y).mean()) for x, y in s["chunks"]])
            truth_range += [truth.min(), truth.max()]
            ours, t = stalwart_estimates(s)
            err["stalwart"] += list(np.abs(np.array(ours) - truth) * 100)
            secs["stalwart"] += t
            if nannyml.exists():
                theirs = run_nannyml(s, nannyml, args.timeout)
                if len(theirs["accuracy"]) != args.chunks:
                    raise RuntimeError(f"NannyML gave {len(theirs['accuracy'])} chunks, expected {args.chunks}")
                err["NannyML"] += list(np.abs(np.array(theirs["accuracy"]) - truth) * 100)
                secs["NannyML"] += theirs["seconds"]
                version = theirs["version"]
        for tool in ("stalwart", "NannyML"):
            e = err[tool]
            rows.append([task, tool, f"{np.mean(e):.2f}" if e else "n/a", f"{np.max(e):.2f}" if e else "n/a",
                         f"{secs[tool] / args.seeds:.2f}" if e else "n/a",
                         f"{100 * min(truth_range):.1f}-{100 * max(truth_range):.1f}"])
    body = "\n".join([
        f"Covariate shift, {args.chunks} chunks of {args.chunk_rows:,} rows × {args.seeds} seeds, the last chunk's "
        f"inputs moved by {args.max_shift} sd; a logistic regression, a labelled reference of 5,000 rows. Error: "
        "|estimated - true accuracy| in accuracy points. Seconds: fit and estimate all chunks, per seed. "
        f"Machine: {machine()}. {versions('sklearn')}, NannyML {version}.", "",
        markdown_table(["task", "estimator", "MAE (points)", "worst chunk (points)", "seconds", "true accuracy %"],
                       rows), "",
        "Command: `python benchmarks/bench_estimators.py` (NannyML from `.venv-nannyml`, "
        "`pip install -r benchmarks/requirements-nannyml.txt`; without it the NannyML rows read n/a).",
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Label-free accuracy estimation", body)


if __name__ == "__main__":
    main()
