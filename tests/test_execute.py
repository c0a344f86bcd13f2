"""Executors: sharded evaluate gives one answer whatever runs it; failures surface, never a smaller sample."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import stalwart
from stalwart.attacks import ThreatModel, evaluate
from stalwart.errors import ConfigError, MissingDependencyError, ModelError
from stalwart.execute import (
    LocalExecutor,
    ProcessExecutor,
    RayExecutor,
    get_executor,
    resolve_executor,
    shard_seeds,
    shard_slices,
    use_executor,
)

#: a shard function that fails its first ``fail_times`` attempts; a file counts attempts across processes
FLAKY = '''
from pathlib import Path


def flaky(shared, item):
    path, fail_times, value = item
    p = Path(path)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n < fail_times:
        raise RuntimeError(f"shard {value} broke on attempt {n + 1}")
    return shared * value


def dies(shared, item):
    """Kills its worker process on the first attempt at value 1, as an out-of-memory kill would."""
    import os

    path, value = item
    p = Path(path)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n == 0 and value == 1:
        os._exit(1)
    return shared * value
'''


@pytest.fixture()
def flaky(tmp_path, monkeypatch):
    """The FLAKY function from a real module file (spawned workers import it by name)."""
    (tmp_path / "stalwart_flaky_helper.py").write_text(FLAKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("stalwart_flaky_helper")
    yield module
    sys.modules.pop("stalwart_flaky_helper", None)


def _same(a, b) -> None:
    """Two evaluations agree on everything but timings."""
    def strip(ev):
        d = ev.to_dict()
        d.pop("time_s")
        for rec in d["attacks"]:
            rec.pop("time_s")
        return json.dumps(d, sort_keys=True, default=str)

    assert strip(a) == strip(b)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.broken_by, b.broken_by)


# -- shards ----------------------------------------------------------------------------------------------


def test_shard_boundaries_and_seeds_depend_on_size_and_seed_only():
    assert shard_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert shard_slices(3, 1000) == [slice(0, 3)]
    assert shard_seeds(5, 1) == [5]  # one shard is the unsharded run
    four = shard_seeds(5, 4)
    assert len(set(four)) == 4 and shard_seeds(5, 4) == four
    # shard i's seed is the i-th child of SeedSequence(seed), however many shards follow it
    assert shard_seeds(5, 7)[:4] == four
    assert four[0] == int(np.random.SeedSequence(5).spawn(1)[0].generate_state(1)[0])
    with pytest.raises(ConfigError, match="shard_size must be an integer >= 1"):
        shard_slices(10, 0)


@pytest.mark.parametrize("shard_size", [48, 24, 12])  # 1, 2 and 4 shards
def test_sharded_evaluate_matches_the_closed_form_on_a_linear_model(shard_size, linear_problem):
    net, x, y, dist = linear_problem()
    eps = float(np.median(dist))
    ev = evaluate(net, x, y, ThreatModel("linf", eps, None), level="fast", sanity=False, eps_curve=[eps],
                  shard_size=shard_size)
    clear = (dist < eps / 1.05) | (dist > eps * 1.05)
    assert clear.sum() > 30
    assert ev.clean_accuracy == 1.0
    np.testing.assert_array_equal(ev.robust[clear], dist[clear] > eps)
    broken = ~ev.robust
    assert np.all(np.abs(ev.x_adv[broken] - x[broken]).max(axis=1) <= eps * (1 + 1e-5))


def test_shards_merge_into_the_evaluations_of_each_shard_with_its_seed(digits_logreg):
    """The merge is exact: per-sample results of a 3-shard run are those of evaluating each shard on its
    own with its derived seed, and the curve counts are their sums."""
    model, x, y = digits_logreg
    threat = ThreatModel("linf", 0.05, (0.0, 1.0))
    ev = evaluate(model, x, y, threat, level="fast", sanity=False, seed=3, shard_size=8)
    parts = [evaluate(model, x[s], y[s], threat, level="fast", sanity=False, seed=sd)
             for s, sd in zip(shard_slices(len(y), 8), shard_seeds(3, 3))]
    np.testing.assert_array_equal(ev.broken_by, np.concatenate([p.broken_by for p in parts]))
    np.testing.assert_array_equal(ev.x_adv, np.concatenate([p.x_adv for p in parts]))
    for i, e in enumerate(ev.curve["eps"]):
        standing = sum(round(p.curve["robust_accuracy"][i] * p.n) for p in parts)
        assert all(p.curve["eps"][i] == e for p in parts)
        assert ev.curve["robust_accuracy"][i] == pytest.approx(standing / len(y))
    assert ev.to_dict()["shards"] == {"count": 3, "size": 8} and parts[0].to_dict()["shards"]["count"] == 1
    first = ev.attacks[0]
    assert first["attacked"] == sum(p.attacks[0]["attacked"] for p in parts) == int(ev.clean_correct.sum())
    assert first["broken"] == sum(p.attacks[0]["broken"] for p in parts)


def test_one_progress_report_across_shards(digits_logreg):
    model, x, y = digits_logreg
    seen = []
    evaluate(model, x, y, ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast", eps_curve=[], sanity=True,
             shard_size=8, progress=lambda stage, i, n: seen.append((stage, i, n)))
    counts = [i for stage, i, n in seen if stage != "done"]
    assert {n for stage, _, n in seen if stage != "done"} == {7}  # 3 shards x 2 passes + the sanity checks
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 6
    assert seen[-1][0] == "done" and seen[-1][1] == seen[-1][2]


@pytest.mark.slow
def test_local_and_process_executors_give_identical_evaluations(digits_logreg):
    model, x, y = digits_logreg
    threat = ThreatModel("linf", 0.05, (0.0, 1.0))
    local = evaluate(model, x, y, threat, level="fast", seed=1, shard_size=6, executor="local")
    pooled = evaluate(model, x, y, threat, level="fast", seed=1, shard_size=6,
                      executor=ProcessExecutor(workers=2))
    _same(local, pooled)


@pytest.mark.slow
@pytest.mark.parametrize("check_name", ["corruption", "natural"])
def test_the_perturbation_grid_is_the_same_on_a_process_pool(check_name):
    from stalwart.checks.corruption import CorruptionRobustness
    from stalwart.checks.natural import NaturalRobustness

    train, test = stalwart.datasets.load_split("digits", seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.as_tensor(np.asarray(train.x, dtype=np.float32)), torch.as_tensor(np.asarray(train.y))
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    kind = {"corruption": CorruptionRobustness, "natural": NaturalRobustness}[check_name]
    check = kind(perturbations=["gaussian_noise", "contrast", "saturate"], severities=[1, 3], max_samples=60)

    def run():
        d = check.run(stalwart.wrap(net.eval()), test, seed=0).to_dict()
        d.pop("time_s", None)
        return json.dumps(d, sort_keys=True, default=str)

    local = run()
    with use_executor(ProcessExecutor(workers=2)):
        pooled = run()
    assert local == pooled
    assert "saturate" in local  # the cell that fails (grey images) is reported the same way on both


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_model_files_pickle_refuses_travel_as_their_bytes(kind, tmp_path):
    """TorchScript modules and ONNX Runtime sessions cannot be pickled; they travel as saved models."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, size=(16, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 1.0).astype(int)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    if kind == "torchscript":
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still what users ship
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(net), tmp_path / "m.pt")
        model = stalwart.load_model(tmp_path / "m.pt")
    else:
        from skl2onnx import to_onnx
        from sklearn.linear_model import LogisticRegression

        onx = to_onnx(LogisticRegression().fit(x, y), x[:1], options={"zipmap": False})
        (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
        model = stalwart.load_model(tmp_path / "m.onnx")
    threat = ThreatModel("linf", 0.1, (0.0, 1.0))
    local = evaluate(model, x, y, threat, level="fast", seed=2, shard_size=8)
    pooled = evaluate(model, x, y, threat, level="fast", seed=2, shard_size=8, executor=ProcessExecutor(workers=1))
    _same(local, pooled)


@pytest.mark.slow
def test_streamed_drift_tests_columns_in_parallel_with_the_same_result(tmp_path):
    """One task per column: the exact streamed test gives the same result on a process pool, spilled
    runs included (window < rows), and flags the planted columns."""
    import pandas as pd

    from stalwart.shift.drift import detect_drift_parquet

    rng = np.random.default_rng(0)
    n = 3000

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame({"steady": rng.normal(size=n), "moved": rng.normal(shift, 1.0, size=n),
                             "count": rng.poisson(3.0, size=n),
                             "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2]),
                             "grade": rng.choice(["a", "b"], size=n, p=[0.5 + shift / 2, 0.5 - shift / 2])})

    frame(0.0).to_parquet(tmp_path / "ref.parquet")
    frame(0.4).to_parquet(tmp_path / "cur.parquet")
    runs = [detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet", window=2000, batch_size=500,
                                 executor=ex).to_dict() for ex in ("local", ProcessExecutor(workers=2))]
    assert json.dumps(runs[0], sort_keys=True, default=str) == json.dumps(runs[1], sort_keys=True, default=str)
    assert set(runs[0]["drifted_features"]) == {"moved", "grade"}
    assert runs[0]["details"]["chunked"] and runs[0]["details"]["exact"]


# -- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [LocalExecutor(retries=2), ProcessExecutor(workers=1, retries=2)],
                         ids=["local", "process"])
def test_a_failing_shard_is_retried(executor, flaky, tmp_path):
    counters = [tmp_path / f"c{i}" for i in range(3)]
    items = [(str(counters[0]), 0, 1), (str(counters[1]), 2, 2), (str(counters[2]), 1, 3)]
    assert executor.map(flaky.flaky, items, shared=10) == [10, 20, 30]
    assert [int(c.read_text()) for c in counters] == [1, 3, 2]  # attempts: first try, two retries, one retry


def test_a_shard_whose_worker_dies_is_run_again(flaky, tmp_path):
    items = [(str(tmp_path / "a"), 1), (str(tmp_path / "b"), 2)]
    assert ProcessExecutor(workers=1, retries=1).map(flaky.dies, items, shared=5) == [5, 10]
    assert int((tmp_path / "a").read_text()) == 2  # killed its worker once, then ran in a fresh pool


@pytest.mark.parametrize("executor", [LocalExecutor(retries=1), ProcessExecutor(workers=1, retries=1)],
                         ids=["local", "process"])
def test_a_shard_that_keeps_failing_fails_the_run_with_its_own_error(executor, flaky, tmp_path):
    items = [(str(tmp_path / "a"), 0, 1), (str(tmp_path / "b"), 5, 2)]
    with pytest.raises(RuntimeError, match="shard 2 broke on attempt 2") as info:
        executor.map(flaky.flaky, items, shared=1)
    assert "shard 2 of 2 failed 2 time(s)" in "".join(info.value.__notes__)
    assert int((tmp_path / "b").read_text()) == 2


class _BreaksOnAMarkedRow(nn.Module):
    """Attacks (gradients) on a batch holding the marked row (first feature < 0.2, within any eps < 0.1 of
    it) raise; predictions work."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        if x.requires_grad and bool((x[:, 0] < 0.2).any()):
            self.calls += 1
            raise RuntimeError("the marked row broke the attack")
        return self.net(x)


def test_evaluate_surfaces_a_failing_shards_error_after_its_retries(linear_problem):
    net, x, _, _ = linear_problem(n=30)
    x[17, 0] = 0.05  # in the second of three shards; every other row's first feature is >= 0.3
    y = net(torch.as_tensor(x)).argmax(dim=1).numpy()
    model = _BreaksOnAMarkedRow(net)
    with pytest.raises(ModelError, match="RuntimeError: the marked row broke the attack") as info:
        evaluate(model, x, y, ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast", sanity=False, shard_size=10,
                 executor=LocalExecutor(retries=2))
    assert "shard 2 of 3 failed 3 time(s)" in "".join(info.value.__notes__)
    assert model.calls == 3


def _probabilities(x):  # a function model defined at module level travels to workers by name
    return np.stack([1.0 - x[:, 0], x[:, 0]], axis=1)


def test_an_unpicklable_model_is_refused_with_what_to_do():
    x = np.random.default_rng(0).uniform(0.2, 0.8, size=(12, 3)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    lam = stalwart.wrap(lambda a: np.stack([1.0 - a[:, 0], a[:, 0]], axis=1), classes=[0, 1])
    with pytest.raises(ModelError, match="cannot be pickled.*module level.*executor='local'"):
        evaluate(lam, x, y, ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast", shard_size=4,
                 executor="process")
    with pytest.raises(ModelError, match="cannot be pickled"):
        ProcessExecutor().map(_probabilities, [x], shared=threading.Lock())
    # the same lambda runs locally, and a module-level function is accepted by the pool's check
    assert evaluate(lam, x, y, ThreatModel("linf", 0.05, (0.0, 1.0)), level="fast", sanity=False,
                    shard_size=4).n == 12


# -- choosing an executor ----------------------------------------------------------------------------------


def test_executors_by_name_instance_or_context():
    assert isinstance(get_executor("local"), LocalExecutor)
    assert get_executor("process", workers=3, retries=0).workers == 3
    pool = ProcessExecutor(workers=2)
    assert resolve_executor(pool) is pool
    assert isinstance(resolve_executor(None), LocalExecutor)
    with use_executor(pool):
        assert resolve_executor(None) is pool
    assert isinstance(resolve_executor(None), LocalExecutor)
    with pytest.raises(ConfigError, match="executor must be one of local, process, ray; got 'dask'"):
        get_executor("dask")
    with pytest.raises(ConfigError, match="'spawn' or 'forkserver'"):
        ProcessExecutor(context="fork")
    with pytest.raises(ConfigError, match="retries=...\\) must be an integer >= 0"):
        LocalExecutor(retries=-1)
    with pytest.raises(ConfigError, match="takes workers, retries, context; got threads"):
        get_executor("process", threads=2)


def test_ray_missing_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'stalwart\[ray\]'"):
        get_executor("ray")
    with pytest.raises(MissingDependencyError, match=r"pip install 'stalwart\[ray\]'"):
        evaluate(nn.Linear(3, 2), np.zeros((4, 3), np.float32), np.zeros(4, int),
                 ThreatModel("linf", 0.1, (0.0, 1.0)), executor="ray")


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    d = tmp_path_factory.mktemp("exec")
    train, test = stalwart.datasets.load_split("breast_cancer", seed=0)
    dump(LogisticRegression(max_iter=3000).fit(train.x, train.y), d / "bc.skops")
    test.x.assign(label=test.y).to_csv(d / "test.csv", index=False)
    return d


@pytest.mark.parametrize("args, message", [
    (["--executor", "ray"], r"pip install 'stalwart\[ray\]'"),
    (["--executor", "dask"], "--executor must be one of local, process, ray"),
    (["--address", "auto"], "--address is for --executor ray"),
])
def test_cli_executor_errors_exit_2(cli_files, monkeypatch, args, message):
    import re

    from typer.testing import CliRunner

    from stalwart.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)
    out = cli_files / "adv.npz"
    result = CliRunner().invoke(app, ["attack", str(cli_files / "bc.skops"), str(cli_files / "test.csv"),
                                      "--target", "label", "--attack", "evaluate", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split()))
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_scan_reports_are_identical_on_the_local_and_process_executors(cli_files, tmp_path):
    from typer.testing import CliRunner

    from stalwart.cli import app
    from stalwart.report import drop_timings

    reports = []
    for executor in ("local", "process"):
        out = tmp_path / executor
        result = CliRunner().invoke(app, ["scan", str(cli_files / "bc.skops"), str(cli_files / "test.csv"),
                                          "--target", "label", "--out", str(out), "--executor", executor])
        assert result.exit_code in (0, 1), result.output
        reports.append(drop_timings(json.loads((out / "report.json").read_text())))
    assert reports[0] == reports[1]
    assert any(r["check"] == "natural_robustness" for r in reports[0]["results"])


# -- Ray ---------------------------------------------------------------------------------------------------


# a Ray process that outlives a slow start (its dashboard timed out once on a loaded CI machine) warns as it is
# collected: Ray's clean-up, not stalwart's, and with warnings as errors it would fail the test
@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning",
                            "ignore:Exception ignored in.*Popen:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
def test_ray_gives_the_local_answer_and_surfaces_a_failing_task(digits_logreg, flaky, tmp_path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray runtime is already running in this process")
    model, x, y = digits_logreg
    threat = ThreatModel("linf", 0.05, (0.0, 1.0))
    local = evaluate(model, x, y, threat, level="fast", seed=1, shard_size=8)
    executor = RayExecutor(num_cpus=2, retries=1)
    try:
        executor.start()
    except ConfigError as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    with executor:
        _same(local, evaluate(model, x, y, threat, level="fast", seed=1, shard_size=8, executor=executor))
        ray.cloudpickle.register_pickle_by_value(sys.modules["stalwart_flaky_helper"])
        # a shard that fails once is retried and its answer kept (alone: beside a shard that keeps failing,
        # the run stops at that failure, before this one's retry need have finished)
        assert executor.map(flaky.flaky, [(str(tmp_path / "a"), 1, 3)], shared=2) == [6]
        assert int((tmp_path / "a").read_text()) == 2
        items = [(str(tmp_path / "c"), 0, 1), (str(tmp_path / "b"), 5, 2)]
        with pytest.raises(RuntimeError, match="shard 2 broke on attempt 2") as info:
            executor.map(flaky.flaky, items, shared=1)
        assert "shard 2 of 2 failed 2 time(s)" in "".join(info.value.__notes__)
        with pytest.raises(ModelError, match="cannot be pickled.*executor='local'"):
            executor.map(_probabilities, [x], shared=threading.Lock())
    assert not ray.is_initialized()
