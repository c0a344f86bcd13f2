"""Same answer everywhere: scans, evaluate, single attacks and drift give the same JSON on the local,
process and Ray executors (timings aside), and on 1, 2, 3 or 4 shards where the seeds make that a promise.

The Ray tests start Ray on this machine with 2 CPUs, once for the module, and are marked slow.
"""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

import stalwart
from stalwart.attacks import FGSM, PGD, Square, ThreatModel, evaluate, run_sharded
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.execute import LocalExecutor, ProcessExecutor, RayExecutor, shard_seeds, shard_slices

#: every key stripped before two runs' JSON are compared, each for a stated reason; nothing else is
#: dropped, so any other difference between executors fails the comparison
VOLATILE_KEYS = {
    "created": "the report's wall-clock timestamp",
    "timings": "per-stage wall-clock seconds of a report",
    "time_s": "wall-clock seconds (a report, each check, each attack record, an evaluation)",
}


def comparable(d):
    """``d`` (plain JSON values) without the :data:`VOLATILE_KEYS`, as sorted JSON text."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in VOLATILE_KEYS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(d), sort_keys=True, default=str)


def test_comparable_drops_exactly_the_listed_keys():
    d = {"created": "2026", "a": {"time_s": 1.0, "timing": 2, "n_time": 3}, "b": [{"timings": {}, "elapsed": 4}]}
    assert json.loads(comparable(d)) == {"a": {"timing": 2, "n_time": 3}, "b": [{"elapsed": 4}]}


#: a check whose measurement always raises, and a model whose attacks fail on their first tries;
#: a real module file, so spawned workers import them by name
HELPERS = '''
from pathlib import Path

import torch
from torch import nn

from stalwart.checks.base import Check


class BrokenCheck(Check):
    name = "broken_on_purpose"
    category = "stability"

    def _measure(self, model, data, rng):
        raise RuntimeError(f"broken on purpose after {len(data)} rows")


class FailsAtFirst(nn.Module):
    """Gradient passes over a batch holding a marked row (first feature < 0.2) raise until ``counter``
    (a file, counted across processes) has seen ``fail_times`` of them; predictions always work."""

    def __init__(self, net, counter, fail_times):
        super().__init__()
        self.net, self.counter, self.fail_times = net, counter, fail_times

    def forward(self, x):
        if x.requires_grad and bool((x[:, 0] < 0.2).any()):
            p = Path(self.counter)
            n = int(p.read_text()) if p.exists() else 0
            p.write_text(str(n + 1))
            if n < self.fail_times:
                raise RuntimeError(f"the marked row broke the attack (attempt {n + 1})")
        return self.net(x)
'''


@pytest.fixture()
def helpers(tmp_path, monkeypatch):
    (tmp_path / "stalwart_equivalence_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("stalwart_equivalence_helpers")
    yield module
    sys.modules.pop("stalwart_equivalence_helpers", None)


@pytest.mark.parametrize("shard_size", [48, 24, 16, 12])  # 1, 2, 3 and 4 shards
def test_a_sharded_attack_finds_the_closed_form_answer_on_any_number_of_shards(shard_size, linear_problem):
    net, x, y, dist = linear_problem()
    eps = float(np.median(dist))
    attack = PGD(ThreatModel("linf", eps, None), steps=20, seed=4)
    res = run_sharded(attack, net, x, y, shard_size=shard_size)
    clear = (dist < eps / 1.05) | (dist > eps * 1.05)
    assert clear.sum() > 30 and res.y.size == 48
    np.testing.assert_array_equal(res.success[clear], dist[clear] < eps)
    np.testing.assert_array_equal(res.y, y)
    assert np.all(res.distance <= eps * (1 + 1e-5))
    assert res.params["seed"] == 4 and attack.seed == 4  # the run's seed, not a shard's; the attack is untouched


def test_same_success_and_robust_accuracy_with_1_and_3_shards(linear_problem):
    net, x, y, dist = linear_problem(n=60, seed=1)
    eps = float(np.quantile(dist, 0.4))
    y = np.where(np.abs(dist - eps) < eps * 0.05, 1 - y, y)  # rows too close to call are misclassified: success
    one = run_sharded(FGSM(ThreatModel("linf", eps, None)), net, x, y, shard_size=60)
    three = run_sharded(FGSM(ThreatModel("linf", eps, None)), net, x, y, shard_size=20)
    np.testing.assert_array_equal(one.success, three.success)
    assert one.robust_accuracy == three.robust_accuracy
    assert one.robust_accuracy == pytest.approx(np.mean(~((dist < eps) | (np.abs(dist - eps) < eps * 0.05))))
    np.testing.assert_allclose(one.x_adv, three.x_adv)


def test_a_sharded_random_attack_is_each_shard_run_with_its_derived_seed(digits_logreg):
    """The merge is exact: every per-sample array of a 3-shard run is that of running each shard on its own
    with the seed derived from the run seed and its index; one shard is the plain run."""
    model, x, y = digits_logreg
    attack = Square(ThreatModel("linf", 0.05, (0.0, 1.0)), queries=60, seed=9)
    merged = run_sharded(attack, model, x, y, shard_size=8)
    parts = [Square(attack.threat, queries=60, seed=sd).run(model, x[s], y[s])
             for s, sd in zip(shard_slices(len(y), 8), shard_seeds(9, 3))]
    for name in ("x_adv", "success", "distance", "queries", "pred_adv", "pred_clean"):
        np.testing.assert_array_equal(getattr(merged, name), np.concatenate([getattr(p, name) for p in parts]))
    plain = attack.run(model, x, y)
    single = run_sharded(attack, model, x, y)
    assert comparable(single.to_dict()) == comparable(plain.to_dict())
    np.testing.assert_array_equal(single.x_adv, plain.x_adv)


def test_a_budget_in_range_units_is_sharded_like_any_other():
    """eps as a fraction of each feature's range (tabular): each shard rescales its rows the same way."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = stalwart.datasets.load_split("breast_cancer", seed=0)
    x, y = np.asarray(test.x, dtype=np.float32)[:60], np.asarray(test.y)[:60]
    model = stalwart.wrap(make_pipeline(StandardScaler(), LogisticRegression()).fit(train.x, train.y))
    threat = ThreatModel.from_schema(train.schema, "linf", 0.05)
    assert threat.needs_rescaling
    attack = PGD(threat, steps=10, seed=2)
    merged = run_sharded(attack, model, x, y, shard_size=25)
    parts = [PGD(threat, steps=10, seed=sd).run(model, x[s], y[s])
             for s, sd in zip(shard_slices(60, 25), shard_seeds(2, 3))]
    np.testing.assert_array_equal(merged.x_adv, np.concatenate([p.x_adv for p in parts]))
    np.testing.assert_array_equal(merged.success, np.concatenate([p.success for p in parts]))
    assert 0 < merged.success.sum() < 60 and merged.threat is threat


def test_one_progress_report_across_attack_shards(linear_problem):
    net, x, y, _ = linear_problem(n=30)
    seen = []
    run_sharded(FGSM(ThreatModel("linf", 0.05, None)), net, x, y, shard_size=10,
                progress=lambda stage, i, n: seen.append((stage, i, n)))
    assert [i for _, i, _ in seen] == [0, 1, 2, 3, 3] and {n for _, _, n in seen} == {3}
    assert seen[0][0] == "fgsm (3 shards of <= 10 samples)" and seen[-1][0] == "done"


def test_a_failing_attack_shard_is_retried_then_surfaces_its_error(helpers, tmp_path, linear_problem):
    net, x, _, _ = linear_problem(n=30)
    x[17, 0] = 0.05  # in the second of three shards; every other row's first feature is >= 0.3
    y = net(torch.as_tensor(x)).argmax(dim=1).numpy()
    attack = FGSM(ThreatModel("linf", 0.05, (0.0, 1.0)))
    counter = tmp_path / "tries"
    flaky = helpers.FailsAtFirst(net, str(counter), fail_times=2)
    res = run_sharded(attack, flaky, x, y, shard_size=10, executor=LocalExecutor(retries=2))
    assert res.y.size == 30 and int(counter.read_text()) == 3  # two failures, then the shard ran
    np.testing.assert_array_equal(res.success, attack.run(net, x, y).success)
    counter.unlink()
    broken = helpers.FailsAtFirst(net, str(counter), fail_times=5)
    with pytest.raises(ModelError, match="the marked row broke the attack") as info:
        run_sharded(attack, broken, x, y, shard_size=10, executor=LocalExecutor(retries=2))
    assert "shard 2 of 3 failed 3 time(s)" in "".join(info.value.__notes__)
    assert int(counter.read_text()) == 3


def test_bad_input_in_a_shard_is_raised_once_not_retried(linear_problem):
    net, x, y, _ = linear_problem(n=30)
    x[25, 3] = 1.5  # outside the bounds, in the third shard
    with pytest.raises(InputError, match="outside the threat model's bounds") as info:
        run_sharded(FGSM(ThreatModel("linf", 0.05, (0.0, 1.0))), net, x, y, shard_size=10,
                    executor=LocalExecutor(retries=2))
    assert not getattr(info.value, "__notes__", None)
    with pytest.raises(ConfigError, match="numeric Attack"):
        run_sharded(stalwart.attacks.get("word_substitution"), net, x, y)


# -- the same JSON on every executor ------------------------------------------------------------------------


def _scan_json(executor, broken_check):
    from sklearn.linear_model import LogisticRegression

    from stalwart.checks import AdversarialRobustness, CleanPerformance, NaturalRobustness
    from stalwart.suite import Suite

    train, test = stalwart.datasets.load_split("breast_cancer", seed=0)
    model = LogisticRegression(max_iter=3000).fit(train.x, train.y)
    suite = Suite([CleanPerformance(),
                   NaturalRobustness(perturbations=["feature_noise", "rounding", "outliers"], severities=[1, 3],
                                     max_samples=80, column_sensitivity=False),
                   broken_check,
                   AdversarialRobustness(eps=[0.03], level="fast", minimal=False, max_samples=40)], name="small")
    seen = []
    report = stalwart.scan(model, test, suite=suite, seed=3, executor=executor,
                           progress=lambda name, i, n: seen.append((name, i, n)))
    return report.to_dict(), seen


def _evaluate_json(executor):
    torch.manual_seed(0)
    train, test = stalwart.datasets.load_split("digits", seed=0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    xt, yt = torch.as_tensor(np.asarray(train.x, dtype=np.float32)), torch.as_tensor(np.asarray(train.y))
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    x, y = np.asarray(test.x, dtype=np.float32)[:36], np.asarray(test.y)[:36]
    out = []
    for eps in (0.03, 0.1):  # two eps, three shards each
        ev = evaluate(net.eval(), x, y, ThreatModel("linf", eps, (0.0, 1.0)), level="fast", seed=5, shard_size=12,
                      executor=executor)
        out.append({**ev.to_dict(), "x_adv": ev.x_adv.round(6).tolist(), "broken_by": ev.broken_by.tolist()})
    return out


def _drift_json(executor, tmp_path):
    import pandas as pd

    from stalwart.shift.drift import detect_drift_parquet

    rng = np.random.default_rng(0)
    n = 2000

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame({"steady": rng.normal(size=n), "moved": rng.normal(shift, 1.0, size=n),
                             "count": rng.poisson(3.0, size=n),
                             "colour": rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])})

    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    if not ref.exists():
        frame(0.0).to_parquet(ref)
        frame(0.3).to_parquet(cur)
    return detect_drift_parquet(ref, cur, window=1500, batch_size=400, executor=executor).to_dict()


def _attack_json(executor, linear_problem):
    net, x, y, _ = linear_problem(n=45, seed=2)
    res = run_sharded(PGD(ThreatModel("linf", 0.02, (0.0, 1.0)), steps=10, seed=1), net, x, y, shard_size=15,
                      executor=executor)
    return {**res.to_dict(), "x_adv": res.x_adv.round(6).tolist(), "success": res.success.tolist()}


@pytest.fixture(scope="module")
def ray_executor():
    """Ray on this machine with 2 CPUs, for the whole module; shut down after it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray runtime is already running in this process")
    executor = RayExecutor(num_cpus=2, retries=1)
    try:
        executor.start()
    except ConfigError as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    yield executor
    executor.close()
    assert not ray.is_initialized()


def _executors(ray_executor):
    return [("process", ProcessExecutor(workers=2)), ("ray", ray_executor)]


# a Ray process that outlives a slow start (its dashboard timed out once on a loaded CI machine) warns as it is
# collected: Ray's clean-up, not stalwart's, and with warnings as errors it would fail the test
@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning",
                            "ignore:Exception ignored in.*Popen:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
def test_a_scan_gives_the_same_report_on_every_executor(helpers, ray_executor):
    """Checks run as parallel tasks on process and Ray: same report, same check order, the failing check
    ERROR with the same message, progress counted per finished check."""
    import ray

    ray.cloudpickle.register_pickle_by_value(helpers)
    local, seen = _scan_json("local", helpers.BrokenCheck())
    assert [r["check"] for r in local["results"]] == ["clean_performance", "natural_robustness",
                                                      "broken_on_purpose", "adversarial_robustness"]
    broken = local["results"][2]
    assert broken["status"] == "ERROR" and "RuntimeError: broken on purpose after" in broken["message"]
    assert [name for name, _, _ in seen] == ["clean_performance", "natural_robustness", "broken_on_purpose",
                                             "adversarial_robustness", "done"]
    for name, executor in _executors(ray_executor):
        report, progress = _scan_json(executor, helpers.BrokenCheck())
        assert comparable(report) == comparable(local), name
        counts = [i for stage, i, _ in progress if stage == "checks"]
        assert counts == [0, 1, 2, 3, 4] and progress[-1] == ("done", 4, 4), name


# a Ray process that outlives a slow start (its dashboard timed out once on a loaded CI machine) warns as it is
# collected: Ray's clean-up, not stalwart's, and with warnings as errors it would fail the test
@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning",
                            "ignore:Exception ignored in.*Popen:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
def test_evaluate_single_attacks_and_drift_give_the_same_json_on_every_executor(ray_executor, tmp_path,
                                                                                 linear_problem):
    local = {"evaluate": _evaluate_json("local"), "attack": _attack_json("local", linear_problem),
             "drift": _drift_json("local", tmp_path)}
    assert local["evaluate"][0]["shards"] == {"count": 3, "size": 12}
    assert set(local["drift"]["drifted_features"]) == {"moved"}
    for name, executor in _executors(ray_executor):
        assert comparable(_evaluate_json(executor)) == comparable(local["evaluate"]), name
        assert comparable(_attack_json(executor, linear_problem)) == comparable(local["attack"]), name
        assert comparable(_drift_json(executor, tmp_path)) == comparable(local["drift"]), name
