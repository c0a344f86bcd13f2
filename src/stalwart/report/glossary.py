"""What every metric in a report means, which way is better, and how its number is written.

One entry per metric name, or per family of names (``robust_accuracy_at_<eps>``,
``<detector>_auroc``); :func:`lookup` resolves a concrete name such as ``robust_accuracy_at_0.03``.
Reports list the entries their metrics use (:func:`entries_for`) plus the condition syntax, and
format each number with :func:`format_value`, so a number reads the same wherever it appears.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Entry", "METRICS", "PATTERNS", "TERMS", "CONDITION_SYNTAX", "lookup", "term", "format_value",
           "direction", "entries_for", "metric_names"]

#: number styles: fixed decimals, whole counts, p-values (significant digits: 1e-30 is not "0.000"),
#: budgets (as written in the check's parameters) and 0/1 flags
STYLES = ("fixed", "count", "pvalue", "eps", "flag")


@dataclass(frozen=True)
class Entry:
    """One glossary line.

    Attributes
    ----------
    key : the name as listed, with a placeholder for families (``robust_accuracy_at_<eps>``)
    label : a short phrase for sentences (``robust accuracy``)
    meaning : one sentence
    better : ``"higher"``, ``"lower"`` or ``""`` (a setting or context, not a score)
    style : one of :data:`STYLES`
    digits : decimals (``fixed``) or significant digits (``pvalue``)
    """

    key: str
    label: str
    meaning: str
    better: str = ""
    style: str = "fixed"
    digits: int = 3


def _e(key: str, label: str, better: str, meaning: str, style: str = "fixed", digits: int = 3) -> Entry:
    return Entry(key, label, meaning, better, style, digits)


_ENTRIES = [
    # clean performance (the suite's gate)
    _e("accuracy", "accuracy", "higher", "Share of the data the model classifies correctly."),
    _e("majority_rate", "majority-class rate", "",
       "Accuracy of always answering the most frequent label: the bar a working classifier must clear."),
    _e("accuracy_lift", "accuracy lift", "higher", "Accuracy minus the majority-class rate."),
    _e("chance_p_value", "chance p-value", "lower",
       "One-sided p-value of 'the model does no better than the trivial baseline' (majority class, or "
       "predicting the mean); small = it clearly beats it.", "pvalue"),
    _e("rmse", "RMSE", "lower", "Root mean squared error of a regressor on the data."),
    _e("baseline_rmse", "baseline RMSE", "", "RMSE of always predicting the mean target: the bar a working "
       "regressor must clear."),
    _e("r2", "R²", "higher", "One minus the MSE over the MSE of predicting the mean (1 = perfect, 0 = no better "
       "than the mean)."),
    # natural robustness
    _e("clean_accuracy", "clean accuracy", "higher", "Share of unperturbed inputs the model classifies correctly."),
    _e("max_accuracy_drop", "worst accuracy drop", "lower",
       "Largest drop in accuracy (clean minus perturbed) over every perturbation and severity."),
    _e("mean_flip_rate", "mean flip rate", "lower",
       "Share of predictions that change from the clean prediction, averaged over every perturbation "
       "(corruption) and severity."),
    _e("clean_rmse", "clean RMSE", "lower", "Root mean squared error of a regressor on unperturbed inputs."),
    _e("max_rmse_increase", "worst relative RMSE increase", "lower",
       "Largest relative RMSE increase (perturbed RMSE / clean RMSE - 1) over every perturbation and severity."),
    # adversarial robustness
    _e("robust_accuracy_ratio", "robust accuracy ratio", "higher",
       "Robust accuracy at the reference budget divided by clean accuracy (1 = no accuracy lost to the attack)."),
    _e("auc", "robustness AUC", "higher",
       "Area under robust accuracy against eps from 0 to the largest eps, divided by that eps (1 = no "
       "accuracy lost at any budget)."),
    _e("reference_eps", "reference eps", "",
       "The attack budget the headline and the default condition use, in the unit of eps.", "eps"),
    _e("white_box", "white-box", "higher",
       "Whether gradient (white-box) attacks ran (1) or, the model giving no gradients, only black-box "
       "attacks could (0): then robust accuracy is an upper bound a stronger attack may lower.", "flag"),
    _e("plain_robust_accuracy", "plain robust accuracy", "",
       "A defence's robust accuracy when attacked through its own gradients (non-adaptive), which far above "
       "the reported adaptive number shows that the defence masks gradients rather than resists attacks."),
    _e("plain_gradient_robust_accuracy", "plain gradient-attack robust accuracy", "",
       "A defence's robust accuracy after the gradient attacks alone (APGD) through its own gradients, before "
       "the black-box attack: what a gradient-only evaluation of the defence would report."),
    _e("median_minimal_perturbation", "median minimal perturbation", "higher",
       "Median over correctly classified samples of the smallest perturbation found that changes the "
       "prediction, in the unit of eps."),
    # certified robustness
    _e("certified_accuracy", "certified accuracy", "higher",
       "Share of samples proven correct for every input within the reference budget (a lower bound of robust "
       "accuracy; smoothing: of the smoothed model, at that L2 radius)."),
    _e("gap", "certified-attacked gap", "lower",
       "Robust accuracy under attack minus certified accuracy at the reference budget: the share of samples "
       "neither proven robust nor broken (the true robust accuracy lies in between)."),
    _e("abstain_rate", "abstain rate", "lower",
       "Share of samples on which randomized smoothing could not decide a class (the top class's probability "
       "under noise was not provably above 1/2)."),
    _e("smoothed_accuracy", "smoothed accuracy", "higher",
       "Share of samples the smoothed model classifies correctly without abstaining (certified at radius 0)."),
    # groups
    _e("demographic_parity_difference", "demographic parity difference", "lower",
       "Largest minus smallest share of positive predictions over the groups (fairlearn's definition)."),
    _e("equalized_odds_difference", "equalized odds difference", "lower",
       "The larger of the between-group gaps in true-positive and in false-positive rate (fairlearn's "
       "definition)."),
    _e("cv_accuracy", "cross-validated accuracy", "higher",
       "Mean accuracy over stratified folds, each a model refitted without that fold, with a t-interval over "
       "the folds."),
    _e("cv_accuracy_spread", "spread over folds", "lower",
       "Highest minus lowest fold accuracy: how much the number depends on which rows were held out."),
    _e("churn", "prediction churn", "lower",
       "Share of held-out predictions that differ between two refits on the same data with different seeds "
       "(averaged over pairs of seeds)."),
    _e("accuracy_drop_gap", "gap in accuracy drop between groups", "lower",
       "Largest minus smallest group accuracy drop under the perturbation where that gap is largest, with a "
       "bootstrap interval (groups resampled separately)."),
    _e("worst_group_accuracy_drop", "worst-group accuracy drop", "lower",
       "The largest accuracy drop of any group under any of the perturbations, with Newcombe's paired interval."),
    _e("worst_group_robust_accuracy", "worst-group robust accuracy", "higher",
       "The lowest robust accuracy (correct and not broken by the attack at eps) of any group, with a Wilson "
       "interval."),
    _e("robust_accuracy_gap", "gap in robust accuracy between groups", "lower",
       "Highest minus lowest group robust accuracy under the same attack, with a bootstrap interval (groups "
       "resampled separately)."),
    _e("disparity_before", "disparity before mitigation", "lower",
       "The disparity the mitigation targets, for the plain model refitted out of fold, with a bootstrap interval."),
    _e("disparity_after", "disparity after mitigation", "lower",
       "The same disparity for the mitigated model on the same out-of-fold rows, with a bootstrap interval."),
    _e("accuracy_before", "accuracy before mitigation", "higher",
       "Accuracy of the plain model refitted out of fold, with a Wilson interval."),
    _e("accuracy_after", "accuracy after mitigation", "higher",
       "Accuracy of the mitigated model on the same out-of-fold rows, with a Wilson interval."),
    _e("disparity_reduction", "disparity reduction", "higher",
       "Disparity before minus after on the same rows, with a paired bootstrap interval."),
    _e("baseline_clean_accuracy", "clean accuracy before hardening", "higher",
       "Accuracy of the undefended model on the held-out rows of the trade-off, with a Wilson interval."),
    _e("baseline_robust_accuracy", "robust accuracy before hardening", "higher",
       "Robust accuracy of the undefended model on the held-out rows under the trade-off's budget, with a Wilson "
       "interval."),
    _e("best_robust_accuracy", "best robust accuracy after hardening", "higher",
       "The highest robust accuracy any hardening option reached on the same rows and budget, with a Wilson "
       "interval."),
    _e("best_option_clean_accuracy", "clean accuracy of the most robust option", "higher",
       "Accuracy of the hardening option with the highest robust accuracy, with a Wilson interval."),
    _e("robust_gain", "robust accuracy gained by hardening", "higher",
       "Robust accuracy of the most robust option minus that of the undefended model."),
    _e("clean_cost", "clean accuracy lost to hardening", "lower",
       "Clean accuracy of the undefended model minus that of the most robust option."),
    _e("fidelity", "extraction fidelity", "lower",
       "Share of held-out rows on which a copy trained from the model's answers predicts what the model does."),
    _e("transfer_rate", "transfer rate", "lower",
       "Share of adversarial examples crafted on the extracted copy that also fool the model."),
    _e("extraction_queries", "queries for extraction", "",
       "Rows sent to the model to train the copy whose fidelity is reported (the largest budget)."),
    _e("attack_success", "poisoning attack success", "lower",
       "At the largest poison rate: other-class rows answered as the attacker's class (with the trigger, for a "
       "backdoor), or the accuracy lost to random label flips."),
    _e("poisoned_accuracy", "accuracy after poisoning", "higher",
       "Accuracy on clean held-out rows of the model retrained with the largest share of poisoned rows."),
    _e("n_weak_slices", "weak slices", "lower",
       "Slices (conjunctions of column conditions) significantly worse than the rest, after Benjamini-Hochberg "
       "over every slice examined and merging of overlapping ones."),
    _e("worst_slice_effect", "worst slice effect", "lower",
       "The largest excess of a weak slice's error (or other target) over the rest of the rows, with a Newcombe "
       "interval; 0 when no slice is significant."),
    _e("worst_slice_metric", "worst slice value", "lower",
       "The error (or other target) inside the slice with the largest effect, with its interval."),
    _e("slices_examined", "slices examined", "",
       "How many slices the search tested: the count the false discovery rate is controlled over."),
    # membership inference (stalwart.security)
    _e("membership_auc", "membership-inference AUC", "lower",
       "Area under the ROC curve of an attack telling the model's training rows from unseen rows of the same "
       "distribution (0.5 = no leak, 1 = every training row recognised)."),
    _e("tpr_at_1pct_fpr", "TPR at 1% FPR", "lower",
       "Share of training rows a membership-inference attack identifies while wrongly flagging at most 1% of "
       "unseen rows, the measure of a leak Carlini and colleagues (2022) recommend."),
    _e("tpr_at_0.1pct_fpr", "TPR at 0.1% FPR", "lower",
       "Share of training rows a membership-inference attack identifies while wrongly flagging at most 0.1% of "
       "unseen rows (measurable with 1000 or more unseen rows)."),
    _e("membership_advantage", "membership advantage", "lower",
       "Largest gap between a membership-inference attack's true- and false-positive rates over its thresholds "
       "(0 = no leak, 1 = members and non-members fully separated)."),
    # text adversarial robustness
    _e("robust_accuracy", "robust accuracy", "higher",
       "Share of texts classified correctly and not fooled by word substitution within the word budget."),
    _e("attack_success_rate", "attack success rate", "lower",
       "Share of correctly classified inputs the attack fooled."),
    _e("mean_words_changed", "mean words changed", "higher",
       "Mean number of words the attack replaced in the texts it fooled (more = harder to fool).", digits=2),
    _e("median_fraction_changed", "median share of words changed", "higher",
       "Median share of a fooled text's words the attack replaced."),
    _e("unattackable_share", "unattackable share", "lower",
       "Share of correctly classified texts too short for any substitution within the budget; they count as "
       "robust, so a high share flatters robust accuracy."),
    # corruption robustness (Hendrycks & Dietterich, 2019)
    _e("clean_error", "clean error", "lower", "Share of unperturbed inputs the model misclassifies."),
    _e("baseline_clean_error", "baseline clean error", "",
       "Share of unperturbed inputs the baseline model misclassifies."),
    _e("mce", "mCE", "lower",
       "Mean corruption error: per corruption, the model's errors summed over severities divided by the "
       "baseline's, averaged over corruptions (1 = as good as the baseline; without a baseline model, how "
       "many times corruption multiplies the clean error)."),
    _e("relative_mce", "relative mCE", "lower",
       "Mean over corruptions of the model's error increase over its clean error, divided by the baseline's "
       "increase (1 = loses as much as the baseline)."),
    _e("mean_corruption_error", "mean corruption error", "lower",
       "Error rate averaged over every corruption and severity (not normalised)."),
    _e("mean_accuracy_drop", "mean accuracy drop", "lower",
       "Mean corruption error minus the clean error: the accuracy corruption costs on average."),
    # behavioural tests
    _e("worst_failure_rate", "worst failure rate", "lower", "Highest failure rate over the behavioural tests."),
    # OOD detection
    _e("best_auroc", "best AUROC", "higher",
       "AUROC of the detector that separates held-out in-distribution inputs from OOD inputs best "
       "(0.5 = chance, 1 = perfect)."),
    _e("best_fpr95", "best FPR95", "lower",
       "FPR95 of the detector with the best AUROC: the share of in-distribution inputs flagged when 95% of "
       "OOD inputs are caught."),
    # data drift
    _e("share_drifted", "share of columns drifted", "lower",
       "Share of the tested columns whose two-sample drift test rejects 'same distribution' (after the "
       "multiple-testing correction)."),
    _e("drifted_columns", "drifted columns", "lower", "Number of columns whose drift test rejects.", "count"),
    _e("prediction_drift_p_value", "prediction drift p-value", "higher",
       "p-value of the test that the model's predictions are distributed alike on reference and current data "
       "(small = the predictions shifted).", "pvalue"),
    _e("prediction_drift_js", "prediction drift (Jensen-Shannon)", "lower",
       "Jensen-Shannon distance between the predicted-class distributions (0 = identical, 1 = disjoint)."),
    _e("prediction_drift_wasserstein", "prediction drift (Wasserstein)", "lower",
       "Normalised Wasserstein distance between the predicted values on reference and current data."),
    _e("label_drift_p_value", "label drift p-value", "higher",
       "p-value of the test that the labels are distributed alike on reference and current data.", "pvalue"),
    _e("label_drift_js", "label drift (Jensen-Shannon)", "lower",
       "Jensen-Shannon distance between the label distributions (0 = identical, 1 = disjoint)."),
    _e("label_drift_wasserstein", "label drift (Wasserstein)", "lower",
       "Normalised Wasserstein distance between the target values on reference and current data."),
    _e("accuracy_reference", "reference accuracy", "higher", "Accuracy of the model on the reference data."),
    _e("accuracy_current", "current accuracy", "higher", "Accuracy of the model on the current data."),
    _e("accuracy_drop", "accuracy drop", "lower",
       "Reference accuracy minus current accuracy; a drop with little input drift points to concept drift."),
    _e("rmse_reference", "reference RMSE", "lower", "RMSE of the regressor on the reference data."),
    _e("rmse_current", "current RMSE", "lower", "RMSE of the regressor on the current data."),
    # multivariate drift
    _e("mmd2", "MMD²", "lower",
       "Squared maximum mean discrepancy between the standardised reference and current samples (RBF kernel)."),
    _e("mmd_p_value", "MMD p-value", "higher",
       "Permutation p-value of the MMD test (small = the joint distribution shifted).", "pvalue"),
    _e("classifier_auc", "domain-classifier AUC", "lower",
       "Out-of-fold AUC of a classifier trained to tell reference rows from current rows (0.5 = the samples "
       "are indistinguishable)."),
    _e("classifier_p_value", "domain-classifier p-value", "higher",
       "p-value of the domain classifier's AUC under 'no difference'.", "pvalue"),
]

#: exact metric names
METRICS: dict[str, Entry] = {e.key: e for e in _ENTRIES}

#: families of names: (pattern, entry with ``{0}`` in its label for the captured part)
PATTERNS: list[tuple[re.Pattern[str], Entry]] = [
    (re.compile(r"^robust_accuracy_at_(.+)$"), _e(
        "robust_accuracy_at_<eps>", "robust accuracy at eps {0}", "higher",
        "Share of samples classified correctly and not fooled by any attack with a budget up to eps (by "
        "default a fraction of each feature's range).")),
    (re.compile(r"^certified_accuracy_at_(.+)$"), _e(
        "certified_accuracy_at_<eps>", "certified accuracy at eps {0}", "higher",
        "Share of samples proven correct for every input within the budget (smoothing: the L2 radius), a lower "
        "bound of robust accuracy.")),
    (re.compile(r"^worst_group_(\w+)$"), _e(
        "worst_group_<metric>", "worst-group {0}", "",
        "The metric in the group where it is worst (the lowest, or the highest for error, fpr and fnr), with "
        "that group's interval.")),
    (re.compile(r"^(\w+)_difference$"), _e(
        "<metric>_difference", "between-group gap in {0}", "lower",
        "Largest minus smallest group value of the metric, with a bootstrap interval (groups resampled "
        "separately).")),
    (re.compile(r"^(\w+)_ratio$"), _e(
        "<metric>_ratio", "between-group ratio of {0}", "higher",
        "Smallest over largest group value of the metric (1 = equal across groups).")),
    (re.compile(r"^gap_at_(.+)$"), _e(
        "gap_at_<eps>", "certified-attacked gap at eps {0}", "lower",
        "Robust accuracy under attack minus certified accuracy at that budget: the undecided share.")),
    (re.compile(r"^accuracy_drop_s(\d+)$"), _e(
        "accuracy_drop_s<k>", "accuracy drop", "lower",
        "Largest drop in accuracy (clean minus perturbed) over every perturbation at severities up to k.")),
    (re.compile(r"^rmse_increase_s(\d+)$"), _e(
        "rmse_increase_s<k>", "relative RMSE increase", "lower",
        "Largest relative RMSE increase (perturbed RMSE / clean RMSE - 1) over every perturbation at "
        "severities up to k.")),
    (re.compile(r"^mce_(\w+)$"), _e(
        "mce_<family>", "mCE of the {0} corruptions", "lower",
        "Mean corruption error over the corruptions of one family (noise, blur, weather, digital, geometric).")),
    (re.compile(r"^inv_(\w+)$"), _e(
        "inv_<perturbation>", "invariance failure rate under {0}", "lower",
        "Share of sentences whose predicted label changes under the perturbation (CheckList INV test).")),
    (re.compile(r"^dir_(\d+)$"), _e(
        "dir_<i>", "directional failure rate of test {0}", "lower",
        "Share of sentences whose class probability moves the wrong way when the phrase is added "
        "(CheckList DIR test).")),
    (re.compile(r"^mft_(\d+)$"), _e(
        "mft_<i>", "minimum-functionality failure rate of test {0}", "lower",
        "Share of template-generated sentences that do not get the expected label (CheckList MFT test).")),
    (re.compile(r"^(\w+)_auroc$"), _e(
        "<detector>_auroc", "AUROC of {0}", "higher",
        "AUROC: area under the ROC curve of the detector's score separating in-distribution from OOD inputs "
        "(0.5 = chance, 1 = perfect).")),
    (re.compile(r"^(\w+)_aupr$"), _e(
        "<detector>_aupr", "AUPR of {0}", "higher",
        "Area under the precision-recall curve of the detector, OOD as the positive class.")),
    (re.compile(r"^(\w+)_fpr95$"), _e(
        "<detector>_fpr95", "FPR95 of {0}", "lower",
        "Share of in-distribution inputs the detector flags at the threshold that catches 95% of OOD inputs.")),
]

#: words used in tables and conditions rather than as metric names
TERMS: dict[str, Entry] = {e.key: e for e in [
    _e("flip_rate", "flip rate", "lower", "Share of predictions that differ from the clean prediction."),
    _e("severity", "severity", "", "Strength of a natural perturbation, 1 (mild) to 5 (severe)."),
    _e("eps", "eps", "", "Attack budget: how far an input may move; by default a fraction of each feature's "
       "range (images: the value range; tables: each column's range), else in the data's own units.", "eps"),
    _e("ce", "CE", "lower", "Corruption error of one corruption: the model's errors summed over severities "
       "divided by the baseline's."),
    _e("relative_ce", "relative CE", "lower", "The model's error increase over its clean error under one "
       "corruption, divided by the baseline's increase."),
    _e("p_value", "p-value", "", "Probability of a difference at least this large if there were none: small is "
       "evidence of drift (between reference and current data) or of a weak slice (between a slice and the rest).",
       "pvalue"),
    _e("residual_p_value", "residual p-value", "", "The slice against the rest on the rows no slice listed before "
       "it covers: small means it is weak beyond what those slices explain."),
]}

CONDITION_SYNTAX = Entry(
    "condition", "condition",
    "Written 'metric op threshold [warn level]', e.g. 'accuracy_drop_s3 <= 0.10 warn 0.05': op is <=, >=, < "
    "or >; the check FAILs when the metric breaks the threshold, WARNs when it holds but breaks the stricter "
    "warn level, and is ERROR when the metric was not measured.")


def lookup(name: str) -> Entry | None:
    """The glossary entry of a metric name (exact names first, then families), or None.

    Examples
    --------
    >>> lookup("robust_accuracy_at_0.03").label
    'robust accuracy at eps 0.03'
    >>> lookup("accuracy_drop_s3").better
    'lower'
    """
    if name in METRICS:
        return METRICS[name]
    for pattern, entry in PATTERNS:
        m = pattern.match(name)
        if m:
            return replace(entry, label=entry.label.format(*m.groups()))
    return None


def term(name: str) -> Entry | None:
    """A metric's entry, else a table word's (``flip_rate``, ``eps``), else None."""
    return lookup(name) or TERMS.get(name)


def direction(name: str) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``""`` for a metric name."""
    entry = lookup(name)
    return f"{entry.better} is better" if entry is not None and entry.better else ""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def format_value(name: str, value: Any, digits: int | None = None) -> str:
    """``value`` written the way the glossary says for metric ``name`` ("–" when missing).

    ``digits`` overrides the entry's decimals (used to tell a value from a nearby threshold).

    Examples
    --------
    >>> format_value("accuracy_drop_s3", 0.40351), format_value("mmd_p_value", 2.99e-62)
    ('0.404', '2.99e-62')
    >>> format_value("drifted_columns", 2.0), format_value("white_box", 0.0)
    ('2', 'no')
    """
    if not _finite(value):
        return "–"
    entry = term(name) or Entry(name, name, "")
    if entry.style == "count":
        return f"{value:.0f}"
    if entry.style == "flag":
        return "yes" if value else "no"
    if entry.style == "eps":
        return f"{value:g}"
    if entry.style == "pvalue":
        return f"{value:.{digits or entry.digits}g}"
    return f"{value:.{entry.digits if digits is None else digits}f}"


def entries_for(metric_names: Iterable[str], table_columns: Iterable[str] = ()) -> list[tuple[Entry, list[str]]]:
    """Glossary entries for the names a report uses, in first-use order, each with the concrete
    names it covers (a family lists every member that appeared)."""
    out: dict[str, tuple[Entry, list[str]]] = {}
    for name in metric_names:
        entry = lookup(name)
        if entry is None:
            continue
        generic = METRICS.get(entry.key) or next(e for p, e in PATTERNS if e.key == entry.key)
        names = out.setdefault(entry.key, (generic, []))[1]
        if name not in names:
            names.append(name)
    for col in table_columns:
        if col in TERMS and col not in out:
            out[col] = (TERMS[col], [col])
    return list(out.values())


def metric_names(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Metric names of a report's results, in order of first appearance."""
    return list(dict.fromkeys(k for r in results for k in (r.get("metrics") or {})))
