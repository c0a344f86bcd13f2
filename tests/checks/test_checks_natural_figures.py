"""NaturalRobustness figures: heatmap, families, image/text examples, column sensitivity."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stalwart import datasets
from stalwart.checks.natural import FAMILIES, NaturalRobustness, family_of
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError
from stalwart.models import wrap

IMAGE_SET = ["gaussian_noise", "impulse_noise", "gaussian_blur", "fog", "contrast", "rotation", "flip",
             "brightness", "pixelation", "occlusion"]


@pytest.fixture(scope="module")
def digits():
    train, test = datasets.load_split("digits", seed=0)
    clf = LogisticRegression(max_iter=300).fit(train.x.reshape(len(train), -1), train.y)
    model = wrap(lambda a: clf.predict_proba(np.asarray(a).reshape(len(a), -1)), classes=clf.classes_)
    return model, test


@pytest.fixture(scope="module")
def image_result(digits):
    model, test = digits
    return NaturalRobustness(perturbations=IMAGE_SET, severities=[1, 3], max_samples=150).run(model, test, seed=0)


def test_every_builtin_image_perturbation_has_one_of_the_five_families():
    from stalwart import perturb

    fams = {family_of(n) for n in perturb.names("image")}
    assert fams == {"noise", "blur", "weather", "digital", "geometric"}
    assert family_of("motion_blur") == "blur" and FAMILIES["image"]["occlusion"] == "geometric"


def test_heatmap_matches_table_and_groups_families(image_result):
    heat = image_result.figures["heatmap"]
    assert heat["kind"] == "heatmap" and heat["cols"] == [1, 3]
    acc = {(r["perturbation"], r["severity"]): r["accuracy"] for r in image_result.tables["perturbations"]}
    for name, line in zip(heat["rows"], heat["values"]):
        assert line == [acc[(name, 1)], acc[(name, 3)]]
    fams = [family_of(n) for n in heat["rows"]]
    # each family is one contiguous block of rows
    assert len(list(dict.fromkeys(fams))) == sum(1 for i, f in enumerate(fams) if i == 0 or f != fams[i - 1])
    assert sorted(heat["rows"]) == sorted(IMAGE_SET)
    assert {r["family"] for r in image_result.tables["perturbations"]} == {"noise", "blur", "weather", "digital",
                                                                           "geometric"}


def test_family_curve_is_mean_of_member_accuracies(image_result):
    series = {s["name"]: s for s in image_result.curves["accuracy_by_family"]["series"]}
    rows = image_result.tables["perturbations"]
    noise3 = [r["accuracy"] for r in rows if r["family"] == "noise" and r["severity"] == 3]
    assert series["noise"]["x"] == [0, 1, 3]
    assert series["noise"]["y"][2] == pytest.approx(np.mean(noise3))
    assert series["noise"]["y"][0] == image_result.metrics["clean_accuracy"].value


def test_image_examples_are_the_images_the_model_saw(digits, image_result):
    model, test = digits
    fig = image_result.figures["examples"]
    assert fig["kind"] == "image_examples" and fig["value_range"] == [0.0, 1.0]
    items = fig["items"]
    assert len(items) == 8
    # one family after another: the first five cover all five families
    assert {family_of(i["perturbation"]) for i in items[:5]} == {"noise", "blur", "weather", "digital", "geometric"}
    before = np.array(items[0]["before"])
    assert before.shape == (1, 8, 8)
    assert all(np.array(i["before"]).tolist() == before.tolist() for i in items)
    noisy = next(i for i in items if i["perturbation"] == "gaussian_noise")
    after = np.array(noisy["after"])
    assert after.shape == (1, 8, 8) and 0.02 < np.abs(after - before).mean() < 0.5
    # the caption's predictions are the model's on these very images (rounded to 1e-3)
    pred_after = model.predict(after[None].astype(np.float32))[0]
    assert noisy["caption"].endswith(f"-> {pred_after}")
    assert "@ 3" in noisy["caption"]
    assert len(json.dumps(image_result.to_dict())) < 100_000


def test_no_image_examples_for_large_images():
    x = np.random.default_rng(0).random((40, 1, 70, 70)).astype(np.float32)
    x[::2] *= 0.5  # darker images are class 1
    model = wrap(lambda a: np.stack([np.asarray(a).mean(axis=(1, 2, 3)), 1 - np.asarray(a).mean(axis=(1, 2, 3))],
                                    axis=1), classes=[0, 1])
    data = Dataset.from_arrays(x, np.array([1, 0] * 20))
    res = NaturalRobustness(perturbations=["gaussian_noise"], severities=[3]).run(model, data)
    assert "examples" not in res.figures and "heatmap" in res.figures


def test_text_failures_are_real_failures():
    data = datasets.load("sentiment")
    positive = ("love", "great", "excellent", "wonderful", "amazing", "good", "fantastic")

    def keyword_model(texts):
        s = np.array([any(w in t.lower() for w in positive) for t in texts], dtype=float)
        return np.stack([1 - s, s], axis=1)

    model = wrap(keyword_model, classes=[0, 1])
    res = NaturalRobustness(perturbations=["keyboard_typos", "case_change", "char_swap"],
                            severities=[2, 4]).run(model, data, seed=0)
    items = res.figures["failures"]["items"]
    assert 0 < len(items) <= 10
    assert {i["perturbation"] for i in items} <= {"keyboard_typos", "char_swap"}  # case never flips this model
    for i in items:
        before, after = model.predict([i["original"], i["perturbed"]])
        assert (before, after) == (i["pred_before"], i["pred_after"]) and before != after
        assert i["original"] in data.x
    assert "severity 2" in res.figures["failures"]["title"]  # 2 and 4 are equally near 3: the milder one


@pytest.fixture(scope="module")
def sensitivity_problem():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"ignored_a": rng.normal(size=300), "used": rng.normal(size=300),
                      "ignored_b": rng.normal(size=300), "weak": rng.normal(size=300)})
    y = (x["used"] + 0.05 * x["weak"] > 0).astype(int).to_numpy()

    def model_fn(a):
        a = np.asarray(a, dtype=float)
        z = 4.0 * (a[:, 1] + 0.05 * a[:, 3])
        p = 1 / (1 + np.exp(-z))
        return np.stack([1 - p, p], axis=1)

    return wrap(model_fn, classes=[0, 1]), Dataset.from_arrays(x, y)


def test_column_sensitivity_ranks_the_used_column_first_and_ignored_ones_at_zero(sensitivity_problem):
    model, data = sensitivity_problem
    res = NaturalRobustness(perturbations=["feature_noise"], severities=[3]).run(model, data, seed=0)
    rows = {r["column"]: r for r in res.tables["column_sensitivity"]}
    assert res.tables["column_sensitivity"][0]["column"] == "used"
    assert rows["used"]["accuracy_drop"] > 0.03 and rows["used"]["flip_rate"] >= rows["used"]["accuracy_drop"]
    for col in ("ignored_a", "ignored_b"):
        assert rows[col]["flip_rate"] == 0.0 and rows[col]["accuracy_drop"] == 0.0
        assert rows[col]["changed_rows"] > 250  # the noise did change the column; the model ignores it
    assert rows["weak"]["flip_rate"] < rows["used"]["flip_rate"]
    bars = res.figures["column_sensitivity"]
    assert bars["kind"] == "bars" and bars["labels"][0] == "used"
    assert bars["values"][0] == pytest.approx(rows["used"]["accuracy_drop"])


def test_column_sensitivity_can_be_turned_off(sensitivity_problem):
    model, data = sensitivity_problem
    res = NaturalRobustness(perturbations=["feature_noise"], severities=[3],
                            column_sensitivity=False).run(model, data)
    assert "column_sensitivity" not in res.tables and "column_sensitivity" not in res.figures
    with pytest.raises(ConfigError, match=r"NaturalRobustness\(column_sensitivity=\.\.\.\) must be True or False"):
        NaturalRobustness(column_sensitivity="yes")
