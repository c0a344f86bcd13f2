"""Glossary: every metric the built-in checks produce has an entry, a direction and a number style."""

import doctest
import re
from pathlib import Path

import pytest

import stalwart.report._text
import stalwart.report.advice
import stalwart.report.glossary
import stalwart.report.summaries
from stalwart.checks import CheckResult, Metric, Status
from stalwart.report import Report
from stalwart.report.glossary import (
    CONDITION_SYNTAX,
    METRICS,
    PATTERNS,
    TERMS,
    direction,
    entries_for,
    format_value,
    lookup,
)


@pytest.mark.parametrize("module", [stalwart.report.glossary, stalwart.report.summaries, stalwart.report.advice,
                                    stalwart.report._text])
def test_docstring_examples_run(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


@pytest.mark.parametrize("name, key, label, better", [
    ("robust_accuracy_at_0.03", "robust_accuracy_at_<eps>", "robust accuracy at eps 0.03", "higher"),
    ("robust_accuracy_at_1e-05", "robust_accuracy_at_<eps>", "robust accuracy at eps 1e-05", "higher"),
    ("accuracy_drop_s3", "accuracy_drop_s<k>", "accuracy drop", "lower"),
    ("accuracy_drop_s1", "accuracy_drop_s<k>", "accuracy drop", "lower"),
    ("rmse_increase_s3", "rmse_increase_s<k>", "relative RMSE increase", "lower"),
    ("mce_noise", "mce_<family>", "mCE of the noise corruptions", "lower"),
    ("inv_keyboard_typos", "inv_<perturbation>", "invariance failure rate under keyboard_typos", "lower"),
    ("dir_2", "dir_<i>", "directional failure rate of test 2", "lower"),
    ("mft_1", "mft_<i>", "minimum-functionality failure rate of test 1", "lower"),
    ("energy_auroc", "<detector>_auroc", "AUROC of energy", "higher"),
    ("knn_distance_fpr95", "<detector>_fpr95", "FPR95 of knn_distance", "lower"),
    ("isolation_forest_aupr", "<detector>_aupr", "AUPR of isolation_forest", "higher"),
    # exact names win over the families they would also match
    ("best_auroc", "best_auroc", "best AUROC", "higher"),
    ("mce", "mce", "mCE", "lower"),
    ("accuracy_drop", "accuracy_drop", "accuracy drop", "lower"),
])
def test_lookup_resolves_names_and_families(name, key, label, better):
    entry = lookup(name)
    assert entry is not None and (entry.key, entry.label, entry.better) == (key, label, better)


def test_lookup_unknown_is_none_and_direction_text():
    assert lookup("no_such_metric") is None and direction("no_such_metric") == ""
    assert direction("share_drifted") == "lower is better" and direction("robust_accuracy_ratio") == "higher is better"
    assert direction("reference_eps") == ""  # a setting, not a score


def test_every_entry_is_one_sentence_with_a_direction():
    entries = [*METRICS.values(), *(e for _, e in PATTERNS), *TERMS.values()]
    for e in entries:
        assert e.better in ("higher", "lower", ""), e.key
        assert e.meaning.endswith(".") and (e.meaning[0].isupper() or e.meaning.startswith("p-value")), e.key
        assert e.meaning.count(". ") == 0, e.key  # one sentence
        assert e.style in ("fixed", "count", "pvalue", "eps", "flag"), e.key
    # the words the issue asks the glossary to explain
    for required in ("white_box", "flip_rate", "mce", "relative_mce", "share_drifted", "best_auroc", "best_fpr95"):
        assert lookup(required) or TERMS.get(required), required
    assert "AUROC" in lookup("energy_auroc").meaning and "95%" in lookup("best_fpr95").meaning
    assert "upper bound" in METRICS["white_box"].meaning
    assert all(w in CONDITION_SYNTAX.meaning for w in ("metric op threshold [warn level]", "FAIL", "WARN", "ERROR"))


def test_format_value_follows_the_glossary():
    assert format_value("accuracy_drop_s3", 0.40351) == "0.404"
    assert format_value("mmd_p_value", 2.99e-62) == "2.99e-62"  # never "0.000" for a tiny p-value
    assert format_value("prediction_drift_p_value", 0.0476) == "0.0476"
    assert format_value("drifted_columns", 2.0) == "2"
    assert (format_value("white_box", 1.0), format_value("white_box", 0.0)) == ("yes", "no")
    assert format_value("reference_eps", 0.03) == "0.03"
    assert format_value("mean_words_changed", 1.15) == "1.15"
    assert format_value("anything", None) == "–" and format_value("anything", float("nan")) == "–"
    assert format_value("accuracy_drop_s3", 0.0504, digits=4) == "0.0504"


def _metric_names_in_source() -> tuple[set[str], set[str]]:
    """Metric names written in the built-in checks' source: literals, and f-string templates."""
    import stalwart.checks as checks

    literals, templates = set(), set()
    for path in Path(checks.__file__).parent.glob("*.py"):
        for m in re.finditer(r'Metric\(\s*(f?)"([^"]+)"', path.read_text()):
            (templates if m.group(1) else literals).add(m.group(2))
    return literals, templates


def test_every_metric_name_in_the_checks_source_has_an_entry():
    literals, templates = _metric_names_in_source()
    assert {"share_drifted", "mce", "white_box", "robust_accuracy_ratio"} <= literals
    assert {n for n in literals if lookup(n) is None} == set()
    # a template such as f"{name}_auroc" or f"best_{key}" must match an entry's name or a family
    known = [*METRICS, *(re.sub(r"<[^>]+>", "x", e.key) for _, e in PATTERNS)]
    assert {"{name}_auroc", "best_{key}"} <= templates
    for t in templates:
        pattern = re.escape(t)
        pattern = re.sub(r"\\\{[^}]*\\\}", r"\\w+", pattern)
        assert any(re.fullmatch(pattern, k) for k in known), t


def test_every_metric_of_a_demo_scan_has_an_entry(demo_tabular_report, demo_image_report):
    names = {k for rep in (demo_tabular_report, demo_image_report) for r in rep.results for k in r.metrics}
    assert any(n.startswith("robust_accuracy_at_") for n in names) and "accuracy_drop_s3" in names
    assert {n for n in names if lookup(n) is None} == set()


MODEL = {"name": "M", "task": "classification", "classes": [0, 1], "fingerprint": "f", "differentiable": False,
         "output_kind": "probabilities"}
DATA = {"name": "D", "modality": "tabular", "n_samples": 10, "fingerprint": "g"}


def _report(metrics: dict[str, float], conditions=()) -> Report:
    res = CheckResult("adversarial_robustness", "adversarial", Status.PASS,
                      {k: Metric(k, v) for k, v in metrics.items()},
                      conditions=[{"condition": c, "status": "PASS", "message": "ok"} for c in conditions],
                      tables={"perturbations": [{"perturbation": "a", "flip_rate": 0.1}]})
    return Report(results=[res], model=MODEL, data=DATA)


def test_entries_for_groups_families_in_first_use_order():
    entries = entries_for(["robust_accuracy_at_0.01", "white_box", "robust_accuracy_at_0.03", "zzz"], ["flip_rate"])
    assert [e.key for e, _ in entries] == ["robust_accuracy_at_<eps>", "white_box", "flip_rate"]
    assert entries[0][1] == ["robust_accuracy_at_0.01", "robust_accuracy_at_0.03"]


def test_html_and_markdown_glossaries_list_the_metrics_of_the_report():
    rep = _report({"robust_accuracy_at_0.03": 0.8, "white_box": 0.0}, ["robust_accuracy_at_0.03 >= 0.5"])
    html, md = rep.to_html(), rep.to_markdown()
    section = html[html.index('<h2 id="glossary">'):html.index('<h2 id="compliance">')]
    assert "robust_accuracy_at_&lt;eps&gt;" in section and "Here: robust_accuracy_at_0.03." in section
    assert "white_box" in section and "upper bound" in section and "flip_rate" in section
    assert "metric op threshold [warn level]" in section  # the condition syntax, since there is a condition
    assert "share_drifted" not in section and "best_auroc" not in section  # not in this report
    assert '<a href="#glossary">Glossary</a>' in html
    md_section = md[md.index("## Glossary"):md.index("## Compliance evidence")]
    assert "robust\\_accuracy\\_at\\_&lt;eps&gt;" in md_section and "white\\_box" in md_section
    assert "metric op threshold" in md_section and "share_drifted" not in md_section


def test_no_glossary_without_metrics():
    rep = Report(results=[CheckResult("x", "natural", Status.SKIP, message="not applicable: no data")],
                 model=MODEL, data=DATA)
    assert 'id="glossary"' not in rep.to_html() and "## Glossary" not in rep.to_markdown()
