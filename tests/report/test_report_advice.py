"""What to do next: advice fits the finding and the model family, and names only real APIs."""

import importlib
import re

import numpy as np
import pytest

from stalwart.checks import CheckResult, Metric
from stalwart.models import wrap
from stalwart.report import Report
from stalwart.report.advice import ADVISORS, Context, advice, context_of, model_family, report_advice
from stalwart.report.core import model_family_of

FAMILIES = ("sklearn", "torch", "onnx", "function")
OTHER_FRAMEWORK = {"sklearn": ("torch", "softmax", "logits", "network"),
                   "torch": ("sklearn", "scikit", "Pipeline", "estimator"),
                   "onnx": ("torch", "sklearn", "scikit"), "function": ("torch", "sklearn", "scikit")}


def ctx(family="sklearn", task="classification", modality="tabular", differentiable=True,
        output_kind="probabilities"):
    return Context(family, task, modality, differentiable, output_kind)


def m(value):
    return {"value": value, "low": None, "high": None, "n": 100}


def natural(rows, status="FAIL", name="accuracy_drop_s3"):
    return {"check": "natural_robustness", "status": status, "headline_metric": name,
            "metrics": {name: m(0.4035)}, "tables": {"perturbations": rows},
            "conditions": [{"condition": f"{name} <= 0.1 warn 0.05", "status": status, "message": "x"}]}


MISSING_ERROR = {"perturbation": "missing_values", "severity": 3, "drop": None, "status": "error",
                 "error": "ValueError: Input X contains NaN. LogisticRegression does not accept missing values"}
UNIT = {"perturbation": "unit_scale", "severity": 3, "drop": 0.4035, "status": "ok"}
NOISE = {"perturbation": "feature_noise", "severity": 3, "drop": 0.01, "status": "ok"}

ADVERSARIAL = {"check": "adversarial_robustness", "status": "FAIL", "headline_metric": "robust_accuracy_ratio",
               "metrics": {"robust_accuracy_ratio": m(0.2), "reference_eps": m(0.03), "white_box": m(0.0)},
               "tables": {"sanity": [{"name": "more_steps", "passed": False, "detail": "d"}]},
               "conditions": [{"condition": "robust_accuracy_ratio >= 0.5", "status": "FAIL", "message": "x"}]}
DRIFT = {"check": "data_drift", "category": "drift", "status": "FAIL", "headline_metric": "share_drifted",
         "metrics": {"share_drifted": m(0.5)},
         "tables": {"columns": [{"column": "mean radius", "drifted": True}, {"column": "worst area", "drifted": True},
                                {"column": "texture", "drifted": False}]},
         "conditions": [{"condition": "share_drifted <= 0.2 warn 0", "status": "FAIL", "message": "x"}]}
OOD = {"check": "ood_detection", "status": "WARN", "headline_metric": "best_auroc", "metrics": {"best_auroc": m(0.85)},
       "tables": {"protocol": [{"best_detector": "knn_distance", "ood_source": "synthetic (far)"}],
                  "detectors": [{"detector": "max_softmax", "status": "ok"}, {"detector": "knn_distance", "status": "ok"}]},
       "conditions": [{"condition": "best_auroc >= 0.8 warn 0.9", "status": "WARN", "message": "x"}]}
CORRUPTION = {"check": "corruption_robustness", "status": "FAIL", "headline_metric": "mean_accuracy_drop",
              "metrics": {"mean_accuracy_drop": m(0.2)},
              "tables": {"corruptions": [{"corruption": "contrast", "mean_error": 0.45},
                                         {"corruption": "gaussian_noise", "mean_error": 0.14}]},
              "conditions": [{"condition": "mean_accuracy_drop <= 0.1", "status": "FAIL", "message": "x"}]}
BEHAVIOUR = {"check": "behavioural_tests", "status": "FAIL", "headline_metric": "worst_failure_rate",
             "metrics": {"worst_failure_rate": m(1.0)},
             "tables": {"tests": [{"test": "inv_keyboard_typos", "name": "INV keyboard_typos@3", "kind": "INV",
                                   "failure_rate": 0.4},
                                  {"test": "mft_1", "name": "MFT 1", "kind": "MFT", "failure_rate": 1.0}]},
             "conditions": [{"condition": "worst_failure_rate <= 0.2 warn 0.1", "status": "FAIL", "message": "x"}]}
TEXT_ADV = {"check": "text_adversarial_robustness", "status": "FAIL", "headline_metric": "robust_accuracy_ratio",
            "metrics": {"robust_accuracy_ratio": m(0.3)},
            "conditions": [{"condition": "robust_accuracy_ratio >= 0.5", "status": "FAIL", "message": "x"}]}
MULTI = {"check": "multivariate_drift", "status": "FAIL", "headline_metric": "classifier_auc",
         "metrics": {"classifier_auc": m(0.99)}, "tables": {"importances": [{"column": "a", "auc_drop": 0.4}]},
         "conditions": [{"condition": "classifier_auc <= 0.75", "status": "FAIL", "message": "x"}]}
GATE = {"check": "clean_performance", "status": "FAIL", "headline_metric": "clean_accuracy",
        "metrics": {"clean_accuracy": m(0.5)}, "conditions": [{"condition": "chance_p_value <= 0.01",
                                                               "status": "FAIL", "message": "x"}]}
ALL = [natural([MISSING_ERROR, UNIT, NOISE, {"perturbation": "outliers", "severity": 3, "drop": 0.2, "status": "ok"},
                {"perturbation": "keyboard_typos", "severity": 3, "drop": 0.3, "status": "ok"}]),
       ADVERSARIAL, DRIFT, OOD, CORRUPTION, BEHAVIOUR, TEXT_ADV, MULTI, GATE]


def text_of(items):
    return " ".join(a.text for a in items)


def test_missing_values_error_gets_an_imputer_for_sklearn_and_nan_handling_for_torch():
    r = natural([MISSING_ERROR, NOISE], status="WARN")
    sk = text_of(advice(r, ctx("sklearn")))
    assert "imputer" in sk and "sklearn.impute.SimpleImputer" in sk and "torch" not in sk
    th = text_of(advice(r, ctx("torch")))
    assert "NaN before the network" in th and "torch.nan_to_num" in th
    assert "sklearn" not in th and "scikit" not in th and "Pipeline" not in th
    reg = text_of(advice(r, ctx("sklearn", task="regression")))
    assert "HistGradientBoostingRegressor" in reg and "HistGradientBoostingClassifier" not in reg


def test_unit_scale_gets_ingestion_checks_and_augmentation():
    r = natural([UNIT, NOISE])
    sk = text_of(advice(r, ctx("sklearn")))
    assert "Validate units at ingestion" in sk and "stalwart.shift.detect_drift" in sk
    assert 'AugmentedClassifier(estimator, perturbations=["unit_scale"])' in sk
    assert "feature_noise" not in sk  # a harmless perturbation gets no remedy
    reg = text_of(advice(r, ctx("sklearn", task="regression")))
    assert "AugmentedClassifier" not in reg and "stalwart.perturb.get" in reg  # the meta-estimator classifies only
    th = text_of(advice(r, ctx("torch")))
    assert "AugmentedClassifier" not in th and "training batches" in th


def test_image_corruptions_train_with_image_augment_for_torch_only():
    th = text_of(advice(CORRUPTION, ctx("torch", modality="image")))
    assert 'stalwart.defend.ImageAugment(["contrast", "gaussian_noise"])' in th
    onnx = text_of(advice(CORRUPTION, ctx("onnx", modality="image")))
    assert "ImageAugment" not in onnx and "export it again" in onnx


def test_adversarial_advice_notes_the_upper_bound_and_stays_in_framework():
    sk = text_of(advice(ADVERSARIAL, ctx("sklearn", differentiable=False)))
    assert "upper bound" in sk and "stalwart.attacks.TabularSearch" in sk and "sanity checks failed" in sk
    assert not any(w in sk for w in ("torch", "softmax", "logits"))
    th = text_of(advice(ADVERSARIAL, ctx("torch", modality="image", output_kind="probabilities")))
    assert "stalwart.attacks.PGD" in th and "Return logits" in th and "sklearn" not in th
    white = dict(ADVERSARIAL, metrics={**ADVERSARIAL["metrics"], "white_box": m(1.0)}, tables={})
    assert "upper bound" not in text_of(advice(white, ctx("torch", modality="image")))


def test_drift_advice_names_columns_and_the_estimator():
    items = advice(DRIFT, ctx("none", task="none"))
    text = text_of(items)
    assert "mean radius, worst area" in text and "texture" not in text
    # the more accurate label-free estimator first, the importance-weighted one as a second opinion
    assert "stalwart.shift.ConfidenceEstimator" in text and "a model that consumes this data" in text
    assert text.index("ConfidenceEstimator") < text.index("ImportanceWeightedEstimator")
    reg = text_of(advice(DRIFT, ctx("sklearn", task="regression")))
    assert "Estimator" not in reg and "retrain" in reg


def test_ood_advice_names_the_best_detector():
    text = text_of(advice(OOD, ctx("sklearn")))
    assert "knn_distance separates unfamiliar inputs best" in text and "stalwart.shift.KNNDistance" in text
    assert "stalwart.shift.IsolationForestOOD" in text  # tabular data: the forest was not tried
    assert "synthetic" in text and "Mahalanobis" not in text  # a feature-space detector needs a torch model


def test_passing_and_skipped_checks_get_no_advice_errors_do():
    passing = dict(DRIFT, status="PASS")
    assert advice(passing, ctx()) == [] and advice(dict(DRIFT, status="SKIP"), ctx()) == []
    err = {"check": "natural_robustness", "status": "ERROR", "metrics": {"a": m(1)},
           "conditions": [{"condition": "nonexistent <= 1", "status": "ERROR", "message": "x"}]}
    assert "Fix the condition `nonexistent <= 1`" in text_of(advice(err, ctx()))
    crashed = {"check": "natural_robustness", "status": "ERROR", "message": "the check failed: disk full"}
    assert text_of(advice(crashed, ctx())).startswith("The check could not measure: disk full")
    unknown = {"check": "plugin", "status": "FAIL", "conditions": [{"condition": "x <= 1", "status": "FAIL"}]}
    assert "`x <= 1`" in text_of(advice(unknown, ctx()))


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", ["tabular", "image", "text"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_advice_names_only_real_apis_and_no_other_framework(family, modality, task):
    c = ctx(family, task, modality, differentiable=family == "torch")
    for r in ALL:
        for a in advice(r, c):
            for api in a.apis:
                assert _resolve(api) is not None, api
            # every stalwart name in the text is one of the checked APIs
            for name in re.findall(r"`(stalwart\.[\w.]+)", a.text):
                assert any(name == api or name.startswith(api + ".") for api in a.apis), (name, a.apis)
            assert not any(w in a.text for w in OTHER_FRAMEWORK[family]), (family, r["check"], a.text)


def test_every_built_in_check_has_an_advisor():
    from stalwart.checks import names

    assert set(names()) <= set(ADVISORS)


def test_model_family_from_field_and_from_older_names():
    assert model_family({"family": "torch", "name": "SklearnModel[X]"}) == "torch"
    assert model_family({"name": "SklearnModel[Pipeline]"}) == "sklearn"
    assert model_family({"name": "TorchModel"}) == "torch"
    assert model_family({"name": "OnnxModel"}) == "onnx"
    assert model_family({"name": "FunctionModel[f]"}) == "function"
    assert model_family({"name": "no model (data only)", "task": "none"}) == "none"
    assert model_family(None) == "none" and model_family({"name": "MyModel", "task": "classification"}) == "function"


def test_from_run_records_the_family():
    import torch
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    assert model_family_of(wrap(LogisticRegression().fit(x, y))) == "sklearn"
    assert model_family_of(wrap(torch.nn.Linear(3, 2))) == "torch"
    assert model_family_of(wrap(lambda a: np.stack([1 - (a[:, 0] > 0), a[:, 0] > 0], 1).astype(float))) == "function"
    assert model_family_of(None) == "none"

    class Wrapper:  # a range-scaling wrapper holds the model in ``base``
        base = wrap(torch.nn.Linear(3, 2))

    assert model_family_of(Wrapper()) == "torch"


def test_onnx_family(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    onx = skl2onnx.to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    path = tmp_path / "m.onnx"
    path.write_bytes(onx.SerializeToString())
    assert model_family_of(wrap(str(path))) == "onnx"


def _report(results, model):
    named = [{"category": "natural", **r, "metrics": {k: {**v, "name": k} for k, v in r.get("metrics", {}).items()}}
             for r in results]
    res = [CheckResult.from_dict(r) for r in named]
    return Report(results=res, model=model, data={"name": "D", "modality": "tabular", "n_samples": 10,
                                                  "fingerprint": "g"})


MODEL = {"name": "SklearnModel[Pipeline]", "task": "classification", "classes": [0, 1], "fingerprint": "f",
         "differentiable": True, "output_kind": "probabilities"}


def test_html_and_markdown_render_what_to_do_next_for_failing_checks_only():
    passing = {"check": "adversarial_robustness", "status": "PASS", "headline_metric": "robust_accuracy_ratio",
               "metrics": {"robust_accuracy_ratio": Metric("robust_accuracy_ratio", 0.9).to_dict()}}
    rep = _report([natural([MISSING_ERROR, UNIT]), passing], MODEL)  # no "family": read from the name
    d = rep.to_dict()
    assert d["model"].get("family") is None and context_of(d).family == "sklearn"
    assert [r["check"] for _, r, _ in report_advice(d)] == ["natural_robustness"]
    html = rep.to_html()
    section = html[html.index('<h2 id="next">'):html.index('<section class="check"')]
    assert "natural_robustness" in section and "adversarial_robustness" not in section
    assert "<code>sklearn.impute.SimpleImputer(add_indicator=True)</code>" in section and "torch" not in section
    assert '<a href="#next">What to do next</a>' in html
    md = rep.to_markdown()
    md_section = md[md.index("## What to do next"):md.index("## natural_robustness")]
    assert "- Add an imputer to the pipeline: `sklearn.impute.SimpleImputer(add_indicator=True)` as" in md_section
    passing_only = _report([passing], MODEL)
    assert 'id="next"' not in passing_only.to_html() and "What to do next" not in passing_only.to_markdown()


def test_junit_failure_says_what_failed_and_what_to_do():
    import xml.etree.ElementTree as ET

    rep = _report([natural([MISSING_ERROR, UNIT])], MODEL)
    failure = ET.fromstring(rep.to_junit()).find(".//failure")
    assert failure.get("message").startswith("accuracy drop 0.404 under unit_scale, severity 3")
    assert "what to do: Add an imputer" in failure.text and "FAIL: accuracy_drop_s3 <= 0.1 warn 0.05 -- 0.404" \
        in failure.text


def test_advice_on_the_demo_scan_fits_a_sklearn_pipeline(demo_tabular_report):
    d = demo_tabular_report.to_dict()
    assert d["model"]["family"] == "sklearn" and d["schema_version"] == "1.2"
    todo = report_advice(d)
    assert todo, "the demo pipeline fails natural robustness"
    text = " ".join(a.text for _, _, items in todo for a in items)
    assert "torch" not in text and "softmax" not in text
