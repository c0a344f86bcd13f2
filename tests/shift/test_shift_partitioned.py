"""detect_drift_partitioned: directories of Parquet files summarised per partition and merged give
the in-memory result (categorical columns and integer columns exactly, the others within the
interval each statistic reports), whatever the partitioning or the executor."""

import numpy as np
import pandas as pd
import pytest

from stalwart.errors import ConfigError, InputError
from stalwart.shift.drift import detect_drift
from stalwart.shift.partitioned import (
    compare_labels_partitioned,
    detect_drift_partitioned,
    parquet_files,
    summarise_partition,
)

pytest.importorskip("pyarrow")

N = 12_000
KS = {"a": "ks", "b": "ks", "j": "ks"}


def _table(rng, shift):
    return pd.DataFrame({
        "a": rng.normal(shift, size=N), "b": rng.exponential(1 + shift, N), "i": rng.integers(0, 4, N),
        "j": rng.integers(0, 100, N) + (rng.random(N) < shift).astype(int),
        "c": rng.choice(list("xyzw"), N, p=[0.3, 0.3, 0.3 - shift / 2, 0.1 + shift / 2]),
        "t": rng.random(N) < 0.3 + shift})


def _write(df, d, parts, row_group_size=1500):
    d.mkdir()
    for k, idx in enumerate(np.array_split(np.arange(len(df)), parts)):
        df.iloc[idx].to_parquet(d / f"part-{k:03d}.parquet", index=False, row_group_size=row_group_size)
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    ref, cur = _table(rng, 0.0), _table(rng, 0.1)
    ref.loc[::7, "a"] = np.nan
    cur.loc[::5, "c"] = None
    d = tmp_path_factory.mktemp("parts")
    return ref, cur, _write(ref, d / "ref", 3), _write(cur, d / "cur", 2)


def _check_against_memory(got, want):
    assert [(f.feature, f.test, f.kind) for f in got.features] == [(f.feature, f.test, f.kind) for f in want.features]
    approx = got.details["approximation"]
    for g, w in zip(got.features, want.features):
        a = approx[g.feature]
        assert g.drifted == w.drifted, g.feature
        if a["exact"]:
            assert g.statistic == pytest.approx(w.statistic, rel=1e-9, abs=1e-15), g.feature
            if w.p_value is not None:
                assert g.p_value == pytest.approx(w.p_value, rel=1e-9, abs=1e-300)
        elif a["statistic"] is not None:
            lo, hi = a["statistic"]
            assert lo - 1e-12 <= w.statistic <= hi + 1e-12, g.feature
            if a["p_value"] is not None:
                assert a["p_value"][0] - 1e-12 <= w.p_value <= a["p_value"][1] + 1e-12
        else:  # histogram measure on other bins than in memory: bin_error says how far
            assert 0 < a["bin_error"] < 0.01 and abs(g.statistic - w.statistic) < 0.01
    assert (got.details["n_reference"], got.details["n_current"]) == (want.details["n_reference"],
                                                                       want.details["n_current"])
    for col, shares in want.details["missing_share"].items():
        assert got.details["missing_share"][col] == pytest.approx(shares)


@pytest.mark.parametrize("method", ["auto", KS, "psi", "jensen_shannon", "hellinger", {"a": "wasserstein"}])
def test_partitioned_equals_in_memory_within_the_reported_error(data, method):
    ref, cur, ref_dir, cur_dir = data
    got = detect_drift_partitioned(ref_dir, cur_dir, method=method, batch_size=1000)
    want = detect_drift(ref, cur, method=method)
    _check_against_memory(got, want)
    assert got.details["path"] == "sketch"
    assert got.details["sketch"]["partitions"] == {"reference": 3, "current": 2}
    few = {"i"} if isinstance(method, dict) or method == "auto" else set()  # 4 distinct numbers: categories
    assert set(got.details["categorical"]) == {"c", "t"} | few
    assert all(got.details["approximation"][c]["exact"] for c in ("c", "t", "i", "j"))


def test_the_partitioning_does_not_change_the_result(data, tmp_path):
    ref, cur, ref_dir, cur_dir = data
    one = tmp_path / "ref.parquet"
    ref.to_parquet(one, index=False, row_group_size=4000)
    many = _write(ref, tmp_path / "many", 7, row_group_size=500)
    results = [detect_drift_partitioned(r, cur_dir, method=KS) for r in (ref_dir, one, many)]
    results.append(detect_drift_partitioned(many, cur_dir, method=KS, rows_per_task=1000))
    rows = [[(f.feature, f.statistic, f.p_value) for f in r.features] for r in results]
    assert rows[0] == rows[1] == rows[2] == rows[3]
    assert results[3].details["sketch"]["tasks"] > results[2].details["sketch"]["tasks"]


def test_process_executor_gives_the_local_result(data):
    _, _, ref_dir, cur_dir = data
    local = detect_drift_partitioned(ref_dir, cur_dir, method=KS)
    from stalwart.execute import ProcessExecutor

    with ProcessExecutor(workers=2) as ex:
        remote = detect_drift_partitioned(ref_dir, cur_dir, method=KS, executor=ex)
        labels = [compare_labels_partitioned(ref_dir, cur_dir, c, executor=ex, rows_per_task=2000) for c in "ib"]
    for got, c in zip(labels, "ib"):  # class counts and a float label's sketch: the local numbers
        want = compare_labels_partitioned(ref_dir, cur_dir, c)
        if c == "i":
            assert got["reference_counts"].equals(want["reference_counts"])
            assert got["current_counts"].equals(want["current_counts"])
        else:
            assert got == want
    assert [(f.feature, f.statistic, f.p_value) for f in remote.features] == \
        [(f.feature, f.statistic, f.p_value) for f in local.features]
    assert remote.details["sketch"]["executor"] == "process" and remote.details["sketch"]["worker_peak_rss_mb"] > 0


def test_planted_drift_is_flagged_and_a_type_change_reported(tmp_path):
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000), "z": rng.integers(0, 9, 5000)})
    cur = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(0.5, size=5000),
                        "z": rng.integers(0, 9, 5000).astype(str)})
    r, c = _write(ref, tmp_path / "r", 2), _write(cur, tmp_path / "c", 2)
    res = detect_drift_partitioned(r, c)
    assert res.drifted_features == ["y", "z"]
    z = next(f for f in res.features if f.feature == "z")
    assert z.test == "type_change" and z.statistic == 1.0


def test_a_partition_without_a_column_is_named(data, tmp_path):
    ref, cur, ref_dir, _ = data
    d = _write(cur, tmp_path / "cur", 2)
    cur.drop(columns=["b"]).iloc[:100].to_parquet(d / "part-009.parquet", index=False)
    with pytest.raises(InputError, match=r"part-009.parquet.*lacks columns \['b'\]"):
        detect_drift_partitioned(ref_dir, d)


def test_bad_input_names_the_way_out(data, tmp_path):
    ref, cur, ref_dir, cur_dir = data
    with pytest.raises(ConfigError, match="anderson.*not available"):
        detect_drift_partitioned(ref_dir, cur_dir, method="anderson")
    with pytest.raises(InputError, match="does not exist"):
        detect_drift_partitioned(tmp_path / "nope", cur_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without Parquet files"):
        parquet_files(tmp_path / "empty", "reference")
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(InputError, match="a.csv.*could not be read as Parquet"):
        detect_drift_partitioned(tmp_path / "a.csv", cur_dir)
    inf = _write(pd.DataFrame({"a": [1.0, np.inf] * 20}), tmp_path / "inf", 1)
    with pytest.raises(InputError, match="infinite values"):
        detect_drift_partitioned(inf, cur_dir, columns=["a"])
    with pytest.raises(ConfigError, match="bits"):
        detect_drift_partitioned(ref_dir, cur_dir, bits=99)
    mixed = _write(ref[["a"]], tmp_path / "mixed", 1)
    ref[["a"]].astype(str).iloc[:10].to_parquet(mixed / "part-900.parquet", index=False)
    with pytest.raises(InputError, match="different types in different partitions"):
        detect_drift_partitioned(mixed, cur_dir, columns=["a"])
    with pytest.raises(InputError, match="lacks columns"):
        summarise_partition((("zz",), {}, 10, 64, 100), (str(sorted(ref_dir.iterdir())[0]), (0,)))


# a Ray process that outlives a slow start (its dashboard timed out once on a loaded CI machine) warns as it is
# collected: Ray's clean-up, not stalwart's, and with warnings as errors it would fail the test
@pytest.mark.filterwarnings("ignore:subprocess .* is still running:ResourceWarning",
                            "ignore:Exception ignored in.*Popen:pytest.PytestUnraisableExceptionWarning")
@pytest.mark.slow
def test_ray_executor_gives_the_local_result(data):
    pytest.importorskip("ray")
    from stalwart.execute import RayExecutor

    _, _, ref_dir, cur_dir = data
    local = detect_drift_partitioned(ref_dir, cur_dir)
    with RayExecutor(num_cpus=2) as ex:
        remote = detect_drift_partitioned(ref_dir, cur_dir, executor=ex)
    assert [(f.feature, f.statistic) for f in remote.features] == [(f.feature, f.statistic) for f in local.features]


# -- label drift -------------------------------------------------------------------------------------
def _labels(tmp_path, name, values, parts=3):
    return _write(pd.DataFrame({"x": np.arange(len(values), dtype=float), "label": values}), tmp_path / name, parts,
                  row_group_size=700)


@pytest.mark.parametrize("kind", ["int", "text", "bool"])
def test_class_labels_are_counted_exactly(tmp_path, kind):
    rng = np.random.default_rng(5)
    make = {"int": lambda n, p: rng.choice([0, 3, 7], n, p=p),
            "text": lambda n, p: rng.choice(["cat", "dog", "eel"], n, p=p),
            "bool": lambda n, p: rng.random(n) < p[0]}[kind]
    ref, cur = make(5000, [0.5, 0.3, 0.2]), make(4000, [0.4, 0.3, 0.3])
    got = compare_labels_partitioned(_labels(tmp_path, "r", ref), _labels(tmp_path, "c", cur, 2), "label",
                                     rows_per_task=1000)
    assert got["classification"] is True
    for key, values in (("reference_counts", ref), ("current_counts", cur)):
        want = pd.Series(values).value_counts().sort_index()
        assert got[key].to_dict() == want.to_dict()


def test_float_labels_bracket_the_exact_ks_and_wasserstein(tmp_path):
    from scipy import stats

    from stalwart.shift import univariate as uv

    rng = np.random.default_rng(6)
    ref, cur = rng.normal(size=6000), rng.normal(0.05, 1.1, 5000)
    got = compare_labels_partitioned(_labels(tmp_path, "r", ref), _labels(tmp_path, "c", cur, 2), "label")
    a = got["approximation"]
    exact = stats.ks_2samp(ref, cur)
    w = uv.wasserstein(ref, cur).statistic
    assert got["classification"] is False and got["n_current"] == 5000
    assert a["ks"][0] - 1e-12 <= exact.statistic <= a["ks"][1] + 1e-12 and a["ks"][1] - a["ks"][0] < 1e-3
    assert a["p_value"][0] - 1e-12 <= exact.pvalue <= a["p_value"][1] + 1e-12
    assert a["wasserstein"][0] - 1e-12 <= w <= a["wasserstein"][1] + 1e-12 and abs(got["wasserstein"] - w) < 1e-3
    assert a["ks"][0] <= got["ks"] <= a["ks"][1] and abs(got["p_value"] - exact.pvalue) < 1e-3


def test_a_missing_or_changed_label_is_refused(tmp_path):
    ref = _labels(tmp_path, "r", np.arange(300) % 3)
    gap = _labels(tmp_path, "g", np.where(np.arange(300) == 7, np.nan, np.arange(300) % 3.0))
    with pytest.raises(InputError, match="'label' in the current.*1 missing label"):
        compare_labels_partitioned(ref, gap, "label")
    pd.DataFrame({"x": [0.0], "label": [0.5]}).to_parquet(ref / "part-900.parquet", index=False)
    with pytest.raises(InputError, match="class labels in the reference.*Arrow type double.*same label type"):
        compare_labels_partitioned(ref, ref, "label")
    with pytest.raises(InputError, match="target column 'nope' is not in the reference"):
        compare_labels_partitioned(ref, ref, "nope")
