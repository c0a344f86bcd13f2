"""detect_drift_parquet: streamed counts agree with the in-memory tests within the binning resolution."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from stalwart.errors import ConfigError, InputError
from stalwart.shift._chunked import _frame_to_parquet
from stalwart.shift.drift import detect_drift, detect_drift_parquet

pytest.importorskip("pyarrow")

N = 200_000
METHOD = {"a": "ks", "b": "wasserstein", "e": "psi", "f": "hellinger", "g": "jensen_shannon"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(0)

    def table(shift):
        return pd.DataFrame({
            "a": rng.normal(shift, size=N), "b": rng.exponential(1 + shift, size=N),
            "e": rng.normal(size=N) * (1 + shift), "f": rng.gamma(2.0, size=N) + shift,
            "g": rng.normal(shift, size=N), "i": rng.integers(0, 4, N),
            "c": rng.choice(list("xyzw"), N, p=[0.3, 0.3, 0.3 - shift / 2, 0.1 + shift / 2])})

    ref, cur = table(0.0), table(0.08)
    ref.loc[::9, "a"] = np.nan
    cur.loc[::5, "c"] = None
    d = tmp_path_factory.mktemp("pq")
    _frame_to_parquet(ref, d / "ref.parquet", row_group_size=25_000)
    _frame_to_parquet(cur, d / "cur.parquet", row_group_size=25_000)
    return ref, cur, d / "ref.parquet", d / "cur.parquet"


def test_chunked_equals_in_memory_within_resolution_and_memory_is_bounded(files):
    ref, cur, ref_path, cur_path = files
    want = detect_drift(ref, cur, method=METHOD)
    tracemalloc.start()
    got = detect_drift_parquet(ref_path, cur_path, method=METHOD, batch_size=20_000, sample_size=50_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    data_bytes = ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()
    assert peak < 0.25 * data_bytes  # one batch plus a fixed-size sample, never whole columns
    w = {f.feature: f for f in want.features}
    g = {f.feature: f for f in got.features}
    res = got.details["ks_resolution"]
    assert 0 < res < 3 / 2000
    assert abs(g["a"].statistic - w["a"].statistic) <= res
    assert g["b"].statistic == pytest.approx(w["b"].statistic, rel=0.03)
    for col in ("e", "f", "g"):
        assert g[col].statistic == pytest.approx(w[col].statistic, rel=0.05, abs=2e-3)
    for col in ("i", "c"):  # categorical counts are exact
        assert g[col].test == w[col].test == "jensen_shannon"
        assert g[col].statistic == pytest.approx(w[col].statistic, rel=1e-12)
    assert [f.drifted for f in got.features] == [f.drifted for f in want.features]
    assert got.details["missing_share"] == want.details["missing_share"]
    assert got.details["chunked"] and got.details["n_reference"] == N


def test_chunked_auto_and_errors(files, tmp_path):
    ref, cur, ref_path, cur_path = files
    got = detect_drift_parquet(ref_path, cur_path, columns=["a", "c"], batch_size=50_000)
    assert [f.test for f in got.features] == ["wasserstein", "jensen_shannon"]
    with pytest.raises(InputError, match="does not exist"):
        detect_drift_parquet(tmp_path / "nope.parquet", cur_path)
    with pytest.raises(ConfigError, match="anderson"):
        detect_drift_parquet(ref_path, cur_path, method={"a": "anderson"}, columns=["a"])
    with pytest.raises(InputError, match=r"columns \['q'\] are not in the reference"):
        detect_drift_parquet(ref_path, cur_path, columns=["q"])
    _frame_to_parquet(cur[["a"]], tmp_path / "small.parquet")
    with pytest.raises(InputError, match=r"current lacks columns \['b'\]"):
        detect_drift_parquet(ref_path, tmp_path / "small.parquet", columns=["a", "b"])
    with pytest.raises(ConfigError, match="batch_size"):
        detect_drift_parquet(ref_path, cur_path, batch_size=0)


def test_csv_paths_are_refused_with_what_to_call_instead(files, tmp_path):
    ref, cur, ref_path, cur_path = files
    ref.iloc[:100].to_csv(tmp_path / "ref.csv", index=False)
    with pytest.raises(InputError, match=r"reference_path '.*ref.csv' is a CSV file, but detect_drift_parquet reads "
                                         r"Parquet files only. For CSV files, load both tables .* call "
                                         r"stalwart.shift.detect_drift\(reference, current\)"):
        detect_drift_parquet(tmp_path / "ref.csv", cur_path)
    (tmp_path / "fake.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"current_path '.*fake.parquet' could not be read as Parquet \(.*\); "
                                         r"detect_drift_parquet reads Parquet files only"):
        detect_drift_parquet(ref_path, tmp_path / "fake.parquet")


def test_chunked_type_change_and_too_few_values(tmp_path):
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=300), "t": rng.normal(size=300), "s": rng.normal(size=300)})
    cur = pd.DataFrame({"x": rng.normal(size=200), "t": rng.choice(["lo", "hi"], 200), "s": rng.normal(size=200)})
    cur.loc[4:, "s"] = np.nan
    _frame_to_parquet(ref, tmp_path / "ref.parquet")
    _frame_to_parquet(cur, tmp_path / "cur.parquet")
    got = detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet")
    f = {x.feature: x for x in got.features}
    assert (f["t"].test, f["t"].drifted, f["t"].kind, f["t"].current_kind) == ("type_change", True, "numeric",
                                                                               "categorical")
    assert (f["s"].test, f["s"].statistic, f["s"].drifted) == ("too_few_samples", 4.0, False)
    # the same as in memory, where the tables agree
    want = {x.feature: x for x in detect_drift(ref, cur).features}
    assert [(k, v.test) for k, v in want.items()] == [(k, v.test) for k, v in f.items()]
    assert abs(f["x"].statistic - want["x"].statistic) <= got.details["ks_resolution"]
    with pytest.raises(InputError, match="too few values to test for drift"):
        detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet", columns=["s"])
