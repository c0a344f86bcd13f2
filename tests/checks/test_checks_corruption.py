"""CorruptionRobustness: CE / relative mCE against hand computations and self-comparison."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from stalwart import datasets
from stalwart._stats import wilson_interval
from stalwart.checks.base import Status
from stalwart.checks.corruption import CorruptionRobustness, corruption_errors
from stalwart.checks.natural import family_of
from stalwart.errors import ConfigError
from stalwart.models import wrap
from stalwart.suite import Suite

CORRUPTIONS = ["gaussian_noise", "gaussian_blur", "contrast", "rotation"]


def test_corruption_errors_by_hand():
    # two corruptions, three severities; model and baseline errors
    e = np.array([[0.10, 0.20, 0.30], [0.05, 0.05, 0.20]])
    b = np.array([[0.20, 0.40, 0.60], [0.10, 0.10, 0.10]])
    ce, rel = corruption_errors(e, 0.05, b, 0.10, n=100)
    # CE_1 = 0.6 / 1.2, CE_2 = 0.3 / 0.3
    assert ce == pytest.approx([0.5, 1.0])
    # rel CE_1 = (0.6 - 3 * 0.05) / (1.2 - 3 * 0.10) = 0.45 / 0.9; baseline not hurt by corruption 2: undefined
    assert rel[0] == pytest.approx(0.5) and np.isnan(rel[1])
    # a baseline with no error at all: its sum is raised to half a sample's error, 1 / (2 n)
    ce0, _ = corruption_errors(np.array([[0.01, 0.02]]), 0.0, np.zeros((1, 2)), 0.0, n=50)
    assert ce0[0] == pytest.approx(0.03 / 0.01)


def test_corruption_errors_broadcast_over_bootstrap_axis():
    e = np.random.default_rng(0).random((3, 5, 7))
    b = np.random.default_rng(1).random((3, 5, 7))
    ce, rel = corruption_errors(e, np.full(7, 0.1), b, np.full(7, 0.05), n=10)
    ce1, rel1 = corruption_errors(e[..., 2], 0.1, b[..., 2], 0.05, n=10)
    assert ce.shape == (3, 7) and ce[:, 2] == pytest.approx(ce1) and rel[:, 2] == pytest.approx(rel1)


@pytest.fixture(scope="module")
def digits():
    train, test = datasets.load_split("digits", seed=0)
    flat = train.x.reshape(len(train), -1)
    clf = LogisticRegression(max_iter=200).fit(flat, train.y)
    model = wrap(lambda a: clf.predict_proba(np.asarray(a).reshape(len(a), -1)), classes=clf.classes_)
    # a weaker baseline: nearest class mean on the pixels
    means = np.stack([flat[train.y == k].mean(axis=0) for k in range(10)])

    def nearest_mean(a):
        d = ((np.asarray(a).reshape(len(a), 1, -1) - means[None]) ** 2).sum(axis=2)
        return np.exp(-(d - d.min(axis=1, keepdims=True)))
    return model, wrap(nearest_mean, classes=list(range(10))), test


def test_model_against_itself_has_ce_one(digits):
    model, _, test = digits
    res = CorruptionRobustness(perturbations=CORRUPTIONS, severities=[1, 3, 5], max_samples=120,
                               baseline=model).run(model, test, seed=0)
    assert res.metrics["mce"].value == pytest.approx(1.0)
    assert res.metrics["relative_mce"].value == pytest.approx(1.0)
    assert all(r["ce"] == pytest.approx(1.0) for r in res.tables["corruptions"])
    assert res.headline_metric == "mce"
    assert [c["condition"] for c in res.conditions] == ["mce <= 1 warn 0.9"]
    assert res.status is Status.WARN  # exactly as good as the baseline: not better by 10%


def test_against_a_weaker_baseline_matches_the_cells_table(digits):
    model, weak, test = digits
    res = CorruptionRobustness(perturbations=CORRUPTIONS, severities=[1, 3, 5], max_samples=150,
                               baseline=weak).run(model, test, seed=0)
    cells = res.tables["cells"]
    n = res.metrics["clean_error"].n
    e_clean = res.metrics["clean_error"].value
    weak_clean = res.metrics["baseline_clean_error"].value
    ces, rels = [], []
    for c in CORRUPTIONS:
        mine = [r for r in cells if r["corruption"] == c]
        assert [r["severity"] for r in mine] == [1, 3, 5]
        e = sum(r["error"] for r in mine)
        b = sum(r["baseline_error"] for r in mine)
        ces.append(e / b)
        if b - 3 * weak_clean > 1e-12:  # else undefined: the corruption does not hurt the baseline
            rels.append((e - 3 * e_clean) / (b - 3 * weak_clean))
        k = round(mine[1]["error"] * n)
        assert (mine[1]["low"], mine[1]["high"]) == pytest.approx(wilson_interval(k, n))
    assert res.metrics["mce"].value == pytest.approx(np.mean(ces))
    assert len(rels) >= 3 and res.metrics["relative_mce"].value == pytest.approx(np.mean(rels))
    assert 0 < weak_clean and res.metrics["mce"].value != pytest.approx(1.0)
    m = res.metrics["mce"]
    assert m.low <= m.value <= m.high
    assert res.metrics["mean_corruption_error"].value == pytest.approx(np.mean([r["error"] for r in cells]))


def test_clean_error_baseline_divides_by_the_clean_error(digits):
    model, _, test = digits
    res = CorruptionRobustness(perturbations=CORRUPTIONS, severities=[2, 4], max_samples=150).run(model, test)
    e_clean = res.metrics["clean_error"].value
    assert e_clean > 0
    for row in res.tables["corruptions"]:
        assert row["ce"] == pytest.approx(row["mean_error"] / e_clean)
        assert row["relative_ce"] is None
    assert "relative_mce" not in res.metrics
    assert res.metrics["mean_accuracy_drop"].value == pytest.approx(
        res.metrics["mean_corruption_error"].value - e_clean)
    assert res.headline_metric == "mean_accuracy_drop"
    # per family: the mean CE of the family's corruptions
    blur = [r["ce"] for r in res.tables["corruptions"] if r["family"] == "blur"]
    assert res.metrics["mce_blur"].value == pytest.approx(np.mean(blur))


def test_figures_and_curve(digits):
    model, _, test = digits
    res = CorruptionRobustness(perturbations=CORRUPTIONS + ["saturate"], severities=[1, 5],
                               max_samples=100).run(model, test)
    heat = res.figures["heatmap"]
    assert heat["kind"] == "heatmap" and heat["cols"] == [1, 5] and sorted(heat["rows"]) == sorted(CORRUPTIONS)
    err = {(r["corruption"], r["severity"]): r["error"] for r in res.tables["cells"]}
    assert heat["values"][0] == [err[(heat["rows"][0], 1)], err[(heat["rows"][0], 5)]]
    series = {s["name"]: s for s in res.curves["accuracy_by_family"]["series"]}
    assert set(series) == {family_of(c) for c in CORRUPTIONS}
    assert series["noise"]["x"] == [0, 1, 5]
    assert series["noise"]["y"][2] == pytest.approx(1 - err[("gaussian_noise", 5)])
    # saturate needs RGB: left out of the mCE, said so
    assert res.tables["not_scored"][0]["corruption"] == "saturate"
    assert "left out of the mCE: saturate" in res.message and res.status is not Status.PASS


def test_bad_parameters():
    with pytest.raises(ConfigError, match=r"names unknown perturbation\(s\) \['feature_noise'\]; known \(modality='image'\)"):
        CorruptionRobustness(perturbations=["feature_noise"])
    with pytest.raises(ConfigError, match=r"CorruptionRobustness\(baseline=\.\.\.\) must be a Model or the path"):
        CorruptionRobustness(baseline="no/such/model.skops")
    with pytest.raises(ConfigError, match=r"CorruptionRobustness\(severities=\.\.\.\)"):
        CorruptionRobustness(severities=[])
    with pytest.raises(ConfigError, match=r"runs on image data; the data is tabular"):
        CorruptionRobustness().run(wrap(lambda a: np.tile([0.5, 0.5], (len(a), 1)), classes=[0, 1]),
                                   datasets.load("breast_cancer"))


def test_yaml_round_trip_with_a_saved_baseline(tmp_path, digits):
    model, _, _ = digits
    path = tmp_path / "base.skops"
    path.write_bytes(b"placeholder")  # only its existence is checked until the check runs
    suite = Suite([CorruptionRobustness(perturbations=["fog"], severities=[1, 2], baseline=str(path),
                                        conditions=["mce <= 1.2"])], name="c")
    back = Suite.from_yaml(suite.to_yaml())
    assert back.to_dict() == suite.to_dict()
    check = back.checks[1]  # after the clean-performance gate
    assert check.baseline == str(path) and check.severities == [1, 2]
    # an in-memory baseline is named in the params but cannot come back from YAML
    in_memory = CorruptionRobustness(baseline=model)
    assert in_memory.params()["baseline"].startswith("<in-memory model")
    with pytest.raises(ConfigError, match=r"baseline=\.\.\.\) must be a Model or the path"):
        Suite.from_yaml(Suite([in_memory]).to_yaml())
