"""detect_drift_parquet: the exact streamed test gives the in-memory numbers (to the last bit where
a column is read whole, to rounding where it is merged from sorted runs on disk); the binned one
agrees within its resolution."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from stalwart.errors import ConfigError, InputError
from stalwart.shift import _chunked as chunked
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


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Small files with every kind of column: NaN, ties, integers with and without missing values,
    booleans, text with missing values, pandas categories, a low-cardinality number."""
    rng = np.random.default_rng(3)

    def table(n, shift):
        df = pd.DataFrame({
            "x": rng.normal(shift, size=n), "t": rng.normal(size=n).round(1) + shift,
            "k": rng.integers(0, 40, n), "m": rng.integers(0, 9, n).astype(float),
            "flag": rng.random(n) < 0.3 + shift, "txt": rng.choice(["a", "b", "c", None], n, p=[.4, .3, .2, .1]),
            "cat": pd.Categorical(rng.choice(["u", "v", "w"], n, p=[.5, .3 - shift, .2 + shift])),
            "few": rng.choice([1.0, 2.0, 3.0], n)})
        df.loc[::7, "x"] = np.nan
        df["m"] = df["m"].astype("Int64")
        df.loc[::11, "m"] = pd.NA
        return df

    ref, cur = table(3000, 0.0), table(2500, 0.1)
    d = tmp_path_factory.mktemp("mixed")
    ref.to_parquet(d / "ref.parquet", index=False, row_group_size=700)
    cur.to_parquet(d / "cur.parquet", index=False, row_group_size=700)
    return pd.read_parquet(d / "ref.parquet"), pd.read_parquet(d / "cur.parquet"), d / "ref.parquet", d / "cur.parquet"


def _rows(res):
    return [(f.feature, f.test, f.kind, f.current_kind, f.statistic, f.p_value, f.threshold, f.drifted)
            for f in res.features]


METHODS = ["auto", {"x": "ks", "t": "anderson", "k": "psi", "m": "hellinger", "few": "chi2"},
           {c: "ks" for c in ("x", "t", "k", "m", "few")}, {c: "jensen_shannon" for c in ("x", "t", "k", "txt", "cat")},
           {c: "chi2" for c in ("t", "k", "flag", "txt", "few")}]


@pytest.mark.parametrize("method", METHODS)
def test_exact_streamed_equals_in_memory_to_the_last_bit(mixed, method):
    ref, cur, ref_path, cur_path = mixed
    want = detect_drift(ref, cur, method=method)
    got = detect_drift_parquet(ref_path, cur_path, method=method, batch_size=333)
    assert _rows(got) == _rows(want)
    for key in ("missing_share", "type_changes", "too_few_samples", "n_reference", "n_current", "p_value_cutoff"):
        assert got.details[key] == want.details[key]
    assert got.details["exact"] and got.details["chunked"]


@pytest.mark.parametrize("method", [m for m in METHODS if "anderson" not in str(m)])
def test_columns_merged_from_sorted_runs_on_disk_agree_with_in_memory(mixed, method, tmp_path):
    """A window smaller than a column: its sorted runs go to a temporary file and are merged by
    value range. Counts, KS and order statistics are exact; Wasserstein and the std are sums."""
    ref, cur, ref_path, cur_path = mixed
    want = detect_drift(ref, cur, method=method)
    got = detect_drift_parquet(ref_path, cur_path, method=method, window=900, batch_size=250, tmp_dir=tmp_path)
    for w, g in zip(want.features, got.features):
        assert (g.feature, g.test, g.kind, g.drifted) == (w.feature, w.test, w.kind, w.drifted)
        if g.test == "wasserstein":
            assert g.statistic == pytest.approx(w.statistic, rel=1e-12)
        else:
            assert (g.statistic, g.p_value) == (w.statistic, w.p_value)
    assert list(tmp_path.iterdir()) == []  # the runs are deleted


def test_large_columns_keep_memory_to_a_window(files):
    ref, cur, ref_path, cur_path = files
    want = detect_drift(ref, cur, method=METHOD)
    tracemalloc.start()
    got = detect_drift_parquet(ref_path, cur_path, method=METHOD, window=40_000, batch_size=20_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    one_column = 2 * N * 8  # both files' values of one numeric column: the windows hold a tenth of it
    assert peak < one_column + 2**20  # (plus the fixed cost of a KS p-value)
    for w, g in zip(want.features, got.features):
        assert g.statistic == pytest.approx(w.statistic, rel=1e-12) and g.drifted == w.drifted
        assert g.p_value == w.p_value


def test_quantile_edges_from_runs_are_numpy_quantiles(tmp_path):
    rng = np.random.default_rng(5)
    for x in (rng.normal(size=7777), rng.integers(0, 20, 5000).astype(float), np.arange(3.0)):
        runs = chunked._Runs(tmp_path / "runs.bin")
        for part in np.array_split(x, 4):
            runs.add(np.sort(part))
        for n_bins in (2, 10, 13):
            got = chunked._quantile_edges(runs, n_bins, target=300)
            want = np.unique(np.quantile(np.sort(x), np.arange(1, n_bins) / n_bins))
            assert got.tobytes() == want.tobytes()
        assert [runs.count_lt(v) for v in (-1e9, 0.0, 1.0, 1.5, 1e9)] == [int((x < v).sum()) for v in (-1e9, 0, 1, 1.5, 1e9)]
        runs.close()


def test_binned_equals_in_memory_within_resolution_and_memory_is_bounded(files):
    ref, cur, ref_path, cur_path = files
    want = detect_drift(ref, cur, method=METHOD)
    tracemalloc.start()
    got = detect_drift_parquet(ref_path, cur_path, method=METHOD, exact=False, batch_size=20_000, sample_size=50_000)
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
    assert got.details["chunked"] and not got.details["exact"] and got.details["n_reference"] == N


def test_chunked_auto_and_errors(files, tmp_path):
    ref, cur, ref_path, cur_path = files
    got = detect_drift_parquet(ref_path, cur_path, columns=["a", "c"], batch_size=50_000)
    assert [f.test for f in got.features] == ["wasserstein", "jensen_shannon"]
    with pytest.raises(InputError, match="does not exist"):
        detect_drift_parquet(tmp_path / "nope.parquet", cur_path)
    with pytest.raises(ConfigError, match="anderson"):
        detect_drift_parquet(ref_path, cur_path, method={"a": "anderson"}, columns=["a"], exact=False)
    with pytest.raises(ConfigError, match=r"method 'anderson' \(column 'a'\) needs every value at once.*window=1,000"):
        detect_drift_parquet(ref_path, cur_path, method={"a": "anderson"}, columns=["a"], window=1000)
    with pytest.raises(InputError, match=r"columns \['q'\] are not in the reference"):
        detect_drift_parquet(ref_path, cur_path, columns=["q"])
    _frame_to_parquet(cur[["a"]], tmp_path / "small.parquet")
    with pytest.raises(InputError, match=r"current lacks columns \['b'\]"):
        detect_drift_parquet(ref_path, tmp_path / "small.parquet", columns=["a", "b"])
    for bad in ({"batch_size": 0}, {"window": 2}, {"exact": "yes"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            detect_drift_parquet(ref_path, cur_path, **bad)


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


@pytest.mark.parametrize("exact", [True, False])
def test_chunked_type_change_and_too_few_values(tmp_path, exact):
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=300), "t": rng.normal(size=300), "s": rng.normal(size=300)})
    cur = pd.DataFrame({"x": rng.normal(size=200), "t": rng.choice(["lo", "hi"], 200), "s": rng.normal(size=200)})
    cur.loc[4:, "s"] = np.nan
    _frame_to_parquet(ref, tmp_path / "ref.parquet")
    _frame_to_parquet(cur, tmp_path / "cur.parquet")
    got = detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet", exact=exact)
    f = {x.feature: x for x in got.features}
    assert (f["t"].test, f["t"].drifted, f["t"].kind, f["t"].current_kind) == ("type_change", True, "numeric",
                                                                               "categorical")
    assert (f["s"].test, f["s"].statistic, f["s"].drifted) == ("too_few_samples", 4.0, False)
    # the same as in memory, where the tables agree
    want_res = detect_drift(ref, cur)
    want = {x.feature: x for x in want_res.features}
    assert [(k, v.test) for k, v in want.items()] == [(k, v.test) for k, v in f.items()]
    if exact:  # the whole table, including the example of the new type, is the in-memory one
        assert _rows(got) == _rows(want_res) and got.details["type_changes"] == want_res.details["type_changes"]
    else:
        assert abs(f["x"].statistic - want["x"].statistic) <= got.details["ks_resolution"]
    with pytest.raises(InputError, match="too few values to test for drift"):
        detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet", columns=["s"], exact=exact)


def test_a_few_unreadable_values_are_counted_over_all_batches(tmp_path):
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"v": rng.normal(size=500)})
    cur = pd.DataFrame({"v": [f"{v:.3f}" for v in rng.normal(size=500)]})
    cur.loc[[3, 250, 499], "v"] = ["N/A", "?", "N/A"]
    _frame_to_parquet(ref, tmp_path / "ref.parquet")
    _frame_to_parquet(cur, tmp_path / "cur.parquet")
    got = detect_drift_parquet(tmp_path / "ref.parquet", tmp_path / "cur.parquet", batch_size=100)
    want = detect_drift(ref, cur)
    assert _rows(got) == _rows(want) and got.features[0].statistic == pytest.approx(3 / 500)
    assert got.details["type_changes"] == want.details["type_changes"]


def test_labels_and_columns_read_for_figures(mixed, tmp_path):
    ref, cur, ref_path, cur_path = mixed
    for target in ("flag", "k", "cat"):  # classes: as the labels load_data gives (booleans, integers, text)
        got = chunked.compare_labels_parquet(ref_path, cur_path, target)
        want = cur[target].astype(str) if target == "cat" else cur[target]
        assert got["classification"] and got["current_counts"].to_dict() == want.value_counts().to_dict()
    for window in (10**6, 1000):  # float labels: the exact KS p-value and normalised Wasserstein
        got = chunked.compare_labels_parquet(ref_path, cur_path, "t", window=window, batch_size=500)
        from stalwart.shift.univariate import ks_test, wasserstein

        assert got["p_value"] == ks_test(ref["t"], cur["t"]).p_value
        assert got["wasserstein"] == pytest.approx(wasserstein(ref["t"], cur["t"]).statistic, rel=1e-12)
    with pytest.raises(InputError, match="target column 'x' in data file .* has 429 missing label"):
        chunked.compare_labels_parquet(ref_path, cur_path, "x")
    with pytest.raises(InputError, match="target column 'txt' in data file .* has 284 missing label"):
        chunked.compare_labels_parquet(ref_path, cur_path, "txt")
    x = chunked.read_column(ref_path, "x")
    assert np.array_equal(x, ref["x"].dropna().to_numpy())
    every = chunked.read_column(ref_path, "t", limit=1000, batch_size=333)
    assert np.array_equal(every, ref["t"].to_numpy()[::3])
