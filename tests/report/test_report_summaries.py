"""Headlines name the cause, verdicts do not repeat the number, titles say what the report is."""

import re

import pytest

from stalwart.report.summaries import (
    HEADLINES,
    condition_detail,
    headline,
    number,
    register_headline,
    report_title,
    verdict,
)


def metric(value, low=None, high=None, n=100):
    return {"value": value, "low": low, "high": high, "n": n}


def row(perturbation, severity, drop, status="ok", **extra):
    return {"perturbation": perturbation, "severity": severity, "drop": drop, "status": status, **extra}


def natural(rows, *, name="accuracy_drop_s3", value=None, status="FAIL", conditions=None):
    value = value if value is not None else max(r["drop"] for r in rows if r["status"] == "ok"
                                                and (name != "accuracy_drop_s3" or r["severity"] <= 3))
    return {"check": "natural_robustness", "category": "natural", "status": status, "headline_metric": name,
            "metrics": {name: metric(value, value - 0.07, value + 0.08)},
            "conditions": conditions if conditions is not None else [
                {"condition": f"{name} <= 0.1 warn 0.05", "status": status,
                 "message": f"{name} = {value:.4g} violates <= 0.1"}],
            "tables": {"perturbations": rows}, "message": f"{name} = {value:.4g} violates <= 0.1"}


ROWS = [row("feature_noise", 1, 0.006), row("feature_noise", 3, 0.02), row("unit_scale", 1, 0.19),
        row("unit_scale", 3, 0.4035), row("unit_scale", 5, 0.53), row("outliers", 5, 0.61)]


def test_natural_headline_names_the_worst_cell_at_severity_3():
    text = headline(natural(ROWS))
    assert text == "accuracy drop 0.404 under unit_scale, severity 3 (lower is better)"


def test_natural_headline_number_appears_once_at_one_precision():
    r = natural(ROWS)
    text = headline(r)
    assert text.count("0.404") == 1 and "0.4035" not in text and "[" not in text
    assert verdict(r) == "fails accuracy_drop_s3 <= 0.1 warn 0.05"  # the verdict does not repeat it
    assert condition_detail(r, r["conditions"][0]) == "0.404 violates <= 0.1"  # same precision as the headline


def test_natural_headline_over_all_severities_and_errors_named():
    rows = [*ROWS, row("missing_values", 1, None, status="error", error="ValueError: Input X contains NaN")]
    text = headline(natural(rows, name="max_accuracy_drop", value=0.61))
    assert text.startswith("worst accuracy drop 0.610 under outliers, severity 5 (lower is better)")
    assert text.endswith("; the model raised an error on missing_values")


def test_natural_regression_headline():
    rows = [{"perturbation": "unit_scale", "severity": 3, "increase": 80.49, "status": "ok"},
            {"perturbation": "rounding", "severity": 3, "increase": 0.01, "status": "ok"}]
    r = {"check": "natural_robustness", "status": "FAIL", "headline_metric": "rmse_increase_s3",
         "metrics": {"rmse_increase_s3": metric(80.49)}, "tables": {"perturbations": rows}}
    assert headline(r) == "relative RMSE increase 80.490 under unit_scale, severity 3 (lower is better)"


def adversarial(white_box=1.0, **params):
    return {"check": "adversarial_robustness", "status": "FAIL", "headline_metric": "robust_accuracy_ratio",
            "params": {"norm": "linf", **params},
            "metrics": {"clean_accuracy": metric(0.96), "robust_accuracy_at_0.01": metric(0.6),
                        "robust_accuracy_at_0.03": metric(0.3), "robust_accuracy_ratio": metric(0.3125),
                        "reference_eps": metric(0.03), "white_box": metric(white_box)},
            "conditions": [{"condition": "robust_accuracy_ratio >= 0.5", "status": "FAIL", "message": "x"}]}


def test_adversarial_headline_gives_eps_unit_and_ratio():
    text = headline(adversarial())
    assert text == ("robust accuracy 0.300 at eps 0.03 (linf, fraction of the input range), 0.312 of clean "
                    "accuracy (higher is better)")
    assert "upper bound" in headline(adversarial(white_box=0.0))
    assert "linf, input units" in headline(adversarial(eps_unit="raw"))
    r = adversarial()
    r["tables"] = {"evaluation": [{"norm": "l2", "eps_unit": "fraction of each feature's range"}]}
    r["params"] = {}
    assert "(l2, fraction of each feature's range)" in headline(r)


def test_drift_headline_names_the_columns():
    cols = [{"column": c, "drifted": c in ("a", "b")} for c in ["a", "b", *(f"c{i}" for i in range(28))]]
    r = {"check": "data_drift", "category": "drift", "status": "WARN", "headline_metric": "share_drifted",
         "metrics": {"share_drifted": metric(2 / 30)}, "tables": {"columns": cols}}
    assert headline(r) == "2 of 30 columns drifted: a, b"
    many = [{"column": f"c{i}", "drifted": True} for i in range(13)]
    assert headline({**r, "tables": {"columns": many}}).endswith("c9 and 3 more")
    none = [{"column": "a", "drifted": False}]
    assert headline({**r, "tables": {"columns": none}}) == "0 of 1 column drifted"


def test_other_checks_headlines():
    ood = {"check": "ood_detection", "status": "WARN", "headline_metric": "best_auroc",
           "metrics": {"best_auroc": metric(0.871)},
           "tables": {"protocol": [{"best_detector": "energy", "ood_source": "synthetic (noise)"}]}}
    assert headline(ood) == "best AUROC 0.871 with energy against synthetic (noise) OOD inputs (higher is better)"
    corr = {"check": "corruption_robustness", "status": "FAIL", "headline_metric": "mean_accuracy_drop",
            "metrics": {"mean_accuracy_drop": metric(0.2067)},
            "tables": {"corruptions": [{"corruption": "gaussian_noise", "mean_error": 0.14},
                                       {"corruption": "contrast", "mean_error": 0.455}]}}
    assert headline(corr) == "mean accuracy drop 0.207 over 2 corruptions, worst contrast (lower is better)"
    beh = {"check": "behavioural_tests", "status": "FAIL", "headline_metric": "worst_failure_rate",
           "metrics": {"worst_failure_rate": metric(1.0)},
           "tables": {"tests": [{"name": "INV typos@3", "failure_rate": 0.1}, {"name": "MFT 1", "failure_rate": 1.0}]}}
    assert headline(beh) == "worst failure rate 1.000 in MFT 1 (lower is better)"
    text_adv = {"check": "text_adversarial_robustness", "status": "PASS", "headline_metric": "robust_accuracy_ratio",
                "params": {"max_change": 0.2}, "metrics": {"robust_accuracy": metric(0.73),
                                                           "robust_accuracy_ratio": metric(0.7849)}}
    assert headline(text_adv) == ("robust accuracy 0.730 under word substitution (up to 20% of the words), "
                                  "0.785 of clean accuracy (higher is better)")
    mv = {"check": "multivariate_drift", "status": "FAIL", "headline_metric": "classifier_auc",
          "metrics": {"classifier_auc": metric(0.9995)},
          "tables": {"importances": [{"column": "mean radius", "auc_drop": 0.48}]}}
    assert headline(mv).startswith("domain-classifier AUC 1.000") and "most telling column: mean radius" in headline(mv)
    gate = {"check": "clean_performance", "status": "PASS", "headline_metric": "clean_accuracy",
            "metrics": {"clean_accuracy": metric(0.959), "majority_rate": metric(0.626)}}
    assert headline(gate) == "accuracy 0.959 against 0.626 for always answering the majority class (higher is better)"


def test_skip_error_and_unjudged_conditions():
    skip = {"check": "ood_detection", "status": "SKIP", "message": "not applicable: the data has 5 sample(s)"}
    assert headline(skip) == "not applicable: the data has 5 sample(s)" and verdict(skip) == ""
    assert headline({**skip, "message": "black-box model"}) == "skipped: black-box model"
    err = {"check": "natural_robustness", "status": "ERROR", "metrics": {},
           "message": "the check failed: ValueError: " + "word " * 80}
    text = headline(err)
    assert text.startswith("error: ValueError: word") and text.endswith("word…") and len(text) <= 200
    unjudged = natural(ROWS, status="ERROR", conditions=[
        {"condition": "nonexistent <= 1", "status": "ERROR", "message": "nonexistent was not measured"}])
    assert headline(unjudged).endswith("; cannot judge nonexistent <= 1")
    assert verdict(unjudged) == "cannot judge nonexistent <= 1: nonexistent was not measured"


def test_generic_headline_for_unknown_checks():
    r = {"check": "my_plugin", "status": "PASS", "headline_metric": "share_drifted",
         "metrics": {"share_drifted": metric(0.1)}}
    assert headline(r) == "share of columns drifted 0.100 (lower is better)"
    r = {"check": "my_plugin", "status": "PASS", "headline_metric": "weird", "metrics": {"weird": metric(0.123456)}}
    assert headline(r) == "weird 0.123"


def test_a_plugin_registers_its_headline():
    @register_headline("my_check_for_test")
    def _mine(r):
        return "mine says hello"

    try:
        assert headline({"check": "my_check_for_test", "status": "PASS"}) == "mine says hello"
    finally:
        del HEADLINES["my_check_for_test"]


def test_a_value_close_to_its_threshold_gets_the_digits_to_tell_them_apart():
    r = natural([row("unit_scale", 3, 0.0504)], status="WARN", conditions=[
        {"condition": "accuracy_drop_s3 <= 0.1 warn 0.05", "status": "WARN", "message": "m"}])
    assert number(r, "accuracy_drop_s3") == "0.0504"
    assert "0.0504" in headline(r) and condition_detail(r, r["conditions"][0]).startswith("0.0504 is within")
    assert verdict(r) == "passes accuracy_drop_s3 <= 0.1, not the warn level 0.05"


def test_verdict_for_a_warning_without_failing_condition():
    r = natural(ROWS, status="WARN", value=0.02, conditions=[
        {"condition": "accuracy_drop_s3 <= 0.1 warn 0.05", "status": "PASS", "message": "ok"}])
    r["message"] = "the model could not handle 1 perturbation(s): missing_values (ValueError); ok"
    assert verdict(r) == "warning: the model could not handle 1 perturbation(s): missing_values (ValueError)"
    r["status"] = "PASS"
    r["message"] = "ok"
    assert verdict(r) == "passes accuracy_drop_s3 <= 0.1 warn 0.05"


def test_report_title():
    assert report_title({"results": [{"category": "drift"}, {"category": "drift"}]}) == "Drift report"
    assert report_title({"results": [{"category": "drift"}, {"category": "natural"}]}) == "Robustness report"
    assert report_title({"results": []}) == "Robustness report"


def test_headlines_of_a_real_scan_match_their_tables(demo_tabular_report):
    d = demo_tabular_report.to_dict()
    nat = next(r for r in d["results"] if r["check"] == "natural_robustness")
    cells = [c for c in nat["tables"]["perturbations"] if c["status"] == "ok" and c["severity"] <= 3]
    worst = max(cells, key=lambda c: c["drop"])
    text = headline(nat)
    assert f"under {worst['perturbation']}, severity {worst['severity']}" in text
    value = f"{nat['metrics']['accuracy_drop_s3']['value']:.3f}"
    assert text.count(value) == 1 and "(lower is better)" in text
    adv = next(r for r in d["results"] if r["check"] == "adversarial_robustness")
    assert re.search(r"at eps 0\.03 \(linf, .+\)", headline(adv))
    # the scorecard in the JSON carries the same headline
    assert d["scorecard"]["natural"]["headline"] == text


@pytest.fixture
def wide_console():
    from stalwart.cli import out_console

    old = out_console.width
    out_console.width = 300
    yield out_console
    out_console.width = old


def test_terminal_scorecard_prints_headline_and_verdict(wide_console):
    from stalwart.cli import print_scorecard

    report = {"status": "FAIL", "model": {"name": "M"}, "data": {"name": "D"}, "results": [natural(ROWS)]}
    with wide_console.capture() as cap:
        print_scorecard(report)
    out = cap.get()
    assert "accuracy drop 0.404 under unit_scale, severity 3 (lower is better)" in out
    assert "fails accuracy_drop_s3 <= 0.1 warn 0.05" in out and "0.4035" not in out
