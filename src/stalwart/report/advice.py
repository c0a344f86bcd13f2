"""What to do next: advice for every check that failed, warned or errored, derived from what it found
and from the kind of model it ran on.

Advice is a pure function of the report dict. It never suggests a remedy for another framework
(no torch code for a scikit-learn pipeline), and every stalwart API it names is listed in
:attr:`Advice.apis`, which the tests import, so advice cannot point to something that does not exist.
A check without an entry in :data:`ADVISORS` gets one generic line; plug-in checks add theirs with
:func:`register_advice`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from stalwart._validation import param_error
from stalwart.checks.base import MIN_SAMPLES, Condition, first_sentence
from stalwart.errors import ConfigError
from stalwart.report._text import require_check_name, require_report, shorten
from stalwart.report.summaries import MAX_NAMED, metric_value

__all__ = ["Advice", "Context", "ADVISORS", "FAMILIES", "register_advice", "advice", "report_advice",
           "model_family", "context_of"]

#: model families a report names (``model["family"]``)
FAMILIES = ("sklearn", "torch", "onnx", "function", "none")
#: perturbations a remedy is given for: at most this many of the most harmful
MAX_REMEDIES = 3
_ACTION = ("FAIL", "WARN", "ERROR")
_MISSING = ("missing_values", "missing_not_at_random")


@dataclass(frozen=True)
class Advice:
    """One piece of advice: a sentence or two (code in backticks) and the APIs it names."""

    text: str
    apis: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise param_error(self, "text", "the advice as a non-empty string", self.text)
        if isinstance(self.apis, (str, bytes)) or not isinstance(self.apis, Sequence) \
                or not all(isinstance(a, str) for a in self.apis):
            raise param_error(self, "apis", "a tuple of the dotted names of the APIs the text names "
                              "(e.g. ('stalwart.perturb.get',))", self.apis)
        object.__setattr__(self, "apis", tuple(self.apis))


class Context(NamedTuple):
    """What advice depends on besides the result: the model family, task, data modality,
    whether the model gives gradients and what it outputs."""

    family: str
    task: str
    modality: str
    differentiable: bool
    output_kind: str


Advisor = Callable[[Mapping[str, Any], Context], list[Advice]]
#: advice builders by check name
ADVISORS: dict[str, Advisor] = {}


def register_advice(check: str) -> Callable[[Advisor], Advisor]:
    """Decorator: use the function for the advice on results of ``check``."""
    require_check_name("register_advice", check)

    def deco(fn: Advisor) -> Advisor:
        ADVISORS[check] = fn
        return fn
    return deco


# -- the model family ------------------------------------------------------------------------------
_NAME_FAMILIES = (("SklearnModel", "sklearn"), ("TorchModel", "torch"), ("OnnxModel", "onnx"),
                  ("FunctionModel", "function"))


def model_family(model: Mapping[str, Any] | None) -> str:
    """The family of the report's model: its ``family`` field, else read from its name
    (``"SklearnModel[Pipeline]"`` -> ``"sklearn"``, for reports written before the field).

    Examples
    --------
    >>> model_family({"name": "SklearnModel[Pipeline]"}), model_family({"name": "no model (data only)"})
    ('sklearn', 'none')
    """
    model = model or {}
    family = model.get("family")
    if family in FAMILIES:
        return str(family)
    name = str(model.get("name") or "")
    for prefix, fam in _NAME_FAMILIES:
        if name.startswith(prefix):
            return fam
    if not name or model.get("task") == "none" or name.startswith("no model"):
        return "none"
    return "function"  # a Model subclass of its own: treated as an opaque callable


def context_of(report: Mapping[str, Any]) -> Context:
    """The advice context of a report dict."""
    model, data = report.get("model") or {}, report.get("data") or {}
    return Context(model_family(model), str(model.get("task") or ""), str(data.get("modality") or ""),
                   bool(model.get("differentiable")), str(model.get("output_kind") or ""))


# -- entry points ----------------------------------------------------------------------------------
def advice(result: Mapping[str, Any], ctx: Context) -> list[Advice]:
    """Advice for one result dict; ``[]`` unless its status is FAIL, WARN or ERROR."""
    status = result.get("status")
    if status not in _ACTION:
        return []
    if status == "ERROR":
        return _error_advice(result)
    fn = ADVISORS.get(str(result.get("check")))
    try:
        items = fn(result, ctx) if fn is not None else []
    except (KeyError, TypeError, ValueError, IndexError):  # an odd table must not sink the report
        items = []
    if not items:
        failing = [str(c.get("condition")) for c in result.get("conditions") or [] if c.get("status") != "PASS"]
        cond = f" (`{failing[0]}`)" if failing else ""
        items = [Advice(f"No specific advice is known for this check: review what it measures and the "
                        f"condition it breaks{cond}, then scan again after a change.")]
    return items


def report_advice(report: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any], list[Advice]]]:
    """``(index, result, advice)`` for each result that needs action (index counts from 1, as the
    report's sections do)."""
    require_report(report, "report_advice")
    ctx = context_of(report)
    out = []
    for i, r in enumerate(report.get("results") or [], start=1):
        items = advice(r, ctx)
        if items:
            out.append((i, r, items))
    return out


def _error_advice(result: Mapping[str, Any]) -> list[Advice]:
    items = []
    for c in result.get("conditions") or []:
        if c.get("status") != "ERROR":
            continue
        try:
            metric = Condition.parse(str(c.get("condition"))).metric
        except ConfigError:
            metric = str(c.get("condition"))
        measured = ", ".join(f"`{k}`" for k in result.get("metrics") or {}) or "none"
        items.append(Advice(f"Fix the condition `{c.get('condition')}`: this check did not measure `{metric}`. "
                            f"It measured {measured}; name one of these, or remove the condition."))
    if not items:
        why = str(result.get("message") or "").removeprefix("the check failed: ")
        items.append(Advice(f"The check could not measure: {shorten(why, 240)} Fix that, then scan again."))
    return items


# -- shared pieces ---------------------------------------------------------------------------------
def _code_list(names: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def _level(result: Mapping[str, Any], metric: str | None, default: float) -> float:
    """The stricter level of the condition on ``metric`` (warn, else threshold), else ``default``."""
    for c in result.get("conditions") or []:
        try:
            cond = Condition.parse(str(c.get("condition")))
        except ConfigError:
            continue
        if cond.metric == metric:
            return cond.warn if cond.warn is not None else cond.threshold
    return default


def _augment(ctx: Context, names: Sequence[str]) -> Advice:
    """Train with the harmful perturbations as augmentation, the way this family trains."""
    listed = _code_list(names)
    if ctx.family == "torch" and ctx.modality == "image":
        return Advice(f"Train with these perturbations as augmentation: add `stalwart.defend.ImageAugment"
                      f"({listed})` to the training transforms (or call it on each batch).",
                      ("stalwart.defend.ImageAugment",))
    if ctx.family in ("sklearn", "torch") and ctx.modality == "text":
        return Advice(f"Add perturbed copies of the training texts: `stalwart.defend.TextAugmenter({listed})"
                      ".augment(texts)`, with the same labels, then refit.", ("stalwart.defend.TextAugmenter",))
    if ctx.family == "sklearn" and ctx.modality == "tabular" and ctx.task == "classification":
        return Advice(f"Train with these perturbations as augmentation: `stalwart.defend.AugmentedClassifier("
                      f"estimator, perturbations={listed})` fits the estimator on the training data plus "
                      "perturbed copies of it.", ("stalwart.defend.AugmentedClassifier",))
    make = (f"make perturbed copies of the training data with `stalwart.perturb.get(name).apply(x, severity, "
            f"rng)` for each name in `{listed}`")
    if ctx.family == "torch":
        return Advice(f"Train with augmentation: {make}, and mix them into the training batches.",
                      ("stalwart.perturb.get",))
    if ctx.family == "sklearn":
        return Advice(f"Train with augmentation: {make}, append them (with the same targets) to the training "
                      "set and refit.", ("stalwart.perturb.get",))
    # an ONNX graph or a function cannot be trained here: the source model is, in its own framework
    what, after = ("ONNX graph", "export it again") if ctx.family == "onnx" else ("function", "scan again")
    return Advice(f"Retrain the model behind the {what} with augmentation ({make}), then {after}.",
                  ("stalwart.perturb.get",))


def _missing_values(ctx: Context) -> Advice | None:
    if ctx.family == "sklearn":
        hgb = "HistGradientBoostingRegressor" if ctx.task == "regression" else "HistGradientBoostingClassifier"
        return Advice("Add an imputer to the pipeline: `sklearn.impute.SimpleImputer(add_indicator=True)` as "
                      f"its first step (the indicator keeps the fact that a value was missing), or use an "
                      f"estimator that accepts NaN, such as `sklearn.ensemble.{hgb}`.",
                      ("sklearn.impute.SimpleImputer", f"sklearn.ensemble.{hgb}"))
    if ctx.family == "torch":
        return Advice("Handle NaN before the network: impute missing values in the input pipeline (for "
                      "example `torch.nan_to_num` with the training mean, plus a missing-indicator input); "
                      "one NaN reaching the first layer makes the whole output NaN.", ("torch.nan_to_num",))
    if ctx.family == "onnx":
        return Advice("Impute missing values before calling the ONNX session, or export the model together "
                      "with its imputer so the graph accepts them.")
    if ctx.family == "function":
        return Advice("Impute missing values before calling the model function (or inside it), so a "
                      "missing field gives a prediction instead of an error.")
    return None


def _clip_extremes(ctx: Context) -> Advice:
    if ctx.family == "sklearn":
        return Advice("Keep extreme values from dominating: clip each column to its training range before "
                      "the estimator (`sklearn.preprocessing.FunctionTransformer` around `numpy.clip`), or "
                      "scale with `sklearn.preprocessing.RobustScaler` instead of a mean/std scaler.",
                      ("sklearn.preprocessing.FunctionTransformer", "numpy.clip",
                       "sklearn.preprocessing.RobustScaler"))
    if ctx.family == "torch":
        return Advice("Keep extreme values from dominating: clamp each input feature to its training range "
                      "before the network (`torch.clamp` with per-feature bounds).", ("torch.clamp",))
    return Advice("Keep extreme values from dominating: clip each input column to its training range before "
                  "the model sees it.")


def _ingestion_check() -> Advice:
    return Advice("Validate units at ingestion: compare each incoming batch with the training data "
                  "(`stalwart.shift.detect_drift(reference_df, batch_df)` flags a column that arrives in other "
                  "units at once) and reject or convert such batches before prediction.",
                  ("stalwart.shift.detect_drift",))


def _pipeline_guard() -> Advice:
    return Advice("Guard the input pipeline: select columns by name, never by position, and alert on a "
                  "column that stops changing; `stalwart.shift.detect_drift(reference_df, batch_df)` on each "
                  "batch flags both.", ("stalwart.shift.detect_drift",))


def _categories(ctx: Context) -> Advice:
    if ctx.family == "sklearn":
        return Advice("Make unseen or swapped categories harmless: encode with `sklearn.preprocessing."
                      "OneHotEncoder(handle_unknown=\"ignore\")` and check category values "
                      "against the training set at ingestion.", ("sklearn.preprocessing.OneHotEncoder",))
    return Advice("Check category values against the training set at ingestion, and map unseen ones to an "
                  "explicit 'other' value the model was trained with.")


@register_advice("clean_performance")
def _clean(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    n = next((m.get("n") for m in (r.get("metrics") or {}).values() if isinstance(m, Mapping) and m.get("n")), None)
    if isinstance(n, int) and n < MIN_SAMPLES:
        return [Advice(f"Pass more labelled data: {n} sample(s) cannot show that the model beats a constant "
                       "guess, and every robustness number rests on that.")]
    return [Advice("The model does no better than a constant guess on this data. Check that the labels are the "
                   "ones it was trained on (same classes and encoding), that the features arrive in the training "
                   "columns, order and units, and that the right model was loaded; robustness numbers mean "
                   "nothing until this passes.")]


# -- natural robustness ---------------------------------------------------------------------------
def _harmful(rows: list[Mapping[str, Any]], key: str, col: str, cut: int | None, level: float) -> list[str]:
    """Perturbations whose worst ``col`` (at severities up to ``cut``) exceeds ``level``, worst first."""
    worst: dict[str, float] = {}
    for row in rows:
        v, sev = row.get(col), row.get("severity")
        if row.get("status") != "ok" or not _finite(v) or (cut is not None and not (_finite(sev) and sev <= cut)):
            continue
        name = str(row.get(key))
        worst[name] = max(worst.get(name, -math.inf), float(v))
    ranked = sorted((n for n, v in worst.items() if v > level), key=lambda n: -worst[n])
    return ranked[:MAX_REMEDIES]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@register_advice("natural_robustness")
def _natural(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    items: list[Advice] = []
    rows = [row for row in (r.get("tables") or {}).get("perturbations") or [] if isinstance(row, Mapping)]
    # the errors table (reports from 1.2 on) holds each error once; older reports carry it per row
    errors: dict[str, str] = {str(e.get("perturbation")): str(e.get("error") or "")
                              for e in (r.get("tables") or {}).get("errors") or [] if isinstance(e, Mapping)}
    for row in rows:
        if row.get("status") == "error":
            errors.setdefault(str(row.get("perturbation")), str(row.get("error") or ""))
    metric = str(r.get("headline_metric") or "")
    m = re.search(r"_s(\d+)$", metric)
    col = "increase" if "rmse" in metric else "drop"
    harmful = _harmful(rows, "perturbation", col, int(m.group(1)) if m else None,
                       _level(r, metric, 0.10 if col == "increase" else 0.05))
    if any(p in errors or p in harmful for p in _MISSING):
        fix = _missing_values(ctx)
        if fix is not None:
            items.append(fix)
    others = [p for p in errors if p not in _MISSING]
    if others:
        why = "; ".join(f"{p}: {first_sentence(str(errors[p] or ''), 160)}" for p in others[:MAX_NAMED])
        items.append(Advice(f"The model raised an error on {', '.join(others[:MAX_NAMED])} ({why}). Decide what "
                            "such inputs should do, and make the code before the model clean them or reject "
                            "them with a clear message."))
    if "unit_scale" in harmful:
        items.append(_ingestion_check())
    if any(p in harmful for p in ("outliers", "rare_event")):
        items.append(_clip_extremes(ctx))
    if any(p in harmful for p in ("category_swap", "category_swap_frequency")):
        items.append(_categories(ctx))
    if any(p in harmful for p in ("stuck_sensor", "column_swap")):
        items.append(_pipeline_guard())
    if ctx.modality == "text" and ctx.family == "sklearn" and any(
            p in harmful for p in ("keyboard_typos", "char_swap", "char_delete", "char_insert")):
        items.append(Advice("Typos break word features: add character n-grams "
                            "(`sklearn.feature_extraction.text.TfidfVectorizer(analyzer=\"char_wb\", "
                            "ngram_range=(2, 4))`) next to the word features.",
                            ("sklearn.feature_extraction.text.TfidfVectorizer",)))
    trainable = [p for p in harmful if p not in _MISSING]
    if trainable:
        items.append(_augment(ctx, trainable))
    return items


@register_advice("corruption_robustness")
def _corruption(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    rows = [row for row in (r.get("tables") or {}).get("corruptions") or [] if isinstance(row, Mapping)]
    ranked = sorted((row for row in rows if _finite(row.get("mean_error"))), key=lambda row: -row["mean_error"])
    worst = [str(row.get("corruption")) for row in ranked[:MAX_REMEDIES]]
    return [_augment(ctx, worst)] if worst else []


@register_advice("behavioural_tests")
def _behaviour(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    level = _level(r, "worst_failure_rate", 0.1)
    failing = [row for row in (r.get("tables") or {}).get("tests") or []
               if isinstance(row, Mapping) and _finite(row.get("failure_rate")) and row["failure_rate"] > level]
    failing.sort(key=lambda row: -row["failure_rate"])
    items = []
    inv = [str(row.get("test", "")).removeprefix("inv_") for row in failing if row.get("kind") == "INV"]
    if inv:
        items.append(_augment(ctx, inv[:MAX_REMEDIES]))
    other = [str(row.get("name") or row.get("test")) for row in failing if row.get("kind") in ("DIR", "MFT")]
    if other:
        items.append(Advice(f"Add labelled training examples like the failing sentences of {', '.join(other)} "
                            "(the failures figure lists them), then refit and run the tests again."))
    return items


# -- adversarial robustness ------------------------------------------------------------------------
def _adversarial_training(ctx: Context, eps: float | None) -> Advice:
    budget = f" at the reference budget (eps {eps:g})" if eps is not None else ""
    if ctx.family == "torch":
        return Advice("Train adversarially: in each training step, replace part of the batch by "
                      "`stalwart.attacks.PGD(stalwart.attacks.ThreatModel(\"linf\", eps, bounds), steps=10)"
                      f".run(stalwart.wrap(net), x, y).x_adv`{budget}, with the true labels.",
                      ("stalwart.attacks.PGD", "stalwart.attacks.ThreatModel", "stalwart.wrap"))
    if ctx.family == "sklearn":
        if ctx.differentiable:
            atk, apis = "`stalwart.attacks.PGD` on `stalwart.wrap(estimator)`", ("stalwart.attacks.PGD",
                                                                                 "stalwart.wrap")
        elif ctx.modality == "tabular":
            atk, apis = "`stalwart.attacks.TabularSearch` (black-box, keeps integer and categorical columns " \
                        "valid)", ("stalwart.attacks.TabularSearch",)
        else:
            atk, apis = "`stalwart.attacks.Square` (black-box)", ("stalwart.attacks.Square",)
        return Advice(f"Refit on adversarial examples: generate them with {atk}{budget}, add them to the "
                      "training set with their true labels, refit, and scan again.", apis)
    if ctx.family == "onnx":
        return Advice(f"Train the source model adversarially{budget} in its own framework and export it to "
                      "ONNX again; the exported graph cannot be retrained.")
    return Advice(f"Retrain the model behind the function on adversarial examples from "
                  f"`stalwart.attacks.Square` (black-box){budget}, with their true labels.",
                  ("stalwart.attacks.Square",))


@register_advice("adversarial_robustness")
def _adversarial(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    tables = r.get("tables") or {}
    items = []
    if metric_value(r, "white_box") == 0.0:
        items.append(Advice("Read robust accuracy as an upper bound: the model gives no gradients, so only "
                            "black-box attacks ran, and a stronger attack may find more adversarial examples."))
    failed = [str(row.get("name")) for row in tables.get("sanity") or []
              if isinstance(row, Mapping) and row.get("passed") is False]
    if failed:
        text = (f"The evaluation's sanity checks failed ({', '.join(failed)}): the attacks may be blocked by "
                "gradient masking, so robust accuracy may be overestimated.")
        if ctx.family == "torch" and ctx.output_kind == "probabilities":
            text += " Return logits from the network rather than softmax probabilities, and scan again."
        items.append(Advice(text))
    items.append(_adversarial_training(ctx, metric_value(r, "reference_eps")))
    if ctx.modality == "tabular":
        items.append(Advice("Constrain inputs to what is possible: reject values outside each column's valid "
                            "range at ingestion, and mark columns a user cannot change (age, ID) immutable "
                            "with `stalwart.data.Schema.with_immutable`, so the threat model matches the real one.",
                            ("stalwart.data.Schema.with_immutable",)))
    elif ctx.modality == "image":
        items.append(Advice("Clip inputs to the valid pixel range before the model; input transforms alone "
                            "(blur, JPEG) are weak against attacks that know them, so rely on training."))
    return items


@register_advice("group_metrics")
def _groups(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("Look at the worst group's rows first: collect more labelled data like them, or check whether "
                   "their labels are noisier; a gap whose interval excludes 0 is real, one whose interval "
                   "contains 0 may be noise at this sample size."),
            Advice("Report per-group accuracy with its interval to the people the model affects (EU AI Act "
                   "Annex IV asks for accuracy per group of persons); measure the same groups again after "
                   "every retraining.")]


@register_advice("group_robustness")
def _group_robustness(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    items = [Advice("Train with the perturbation that hurts the worst group most, on that group's rows above all: "
                    "the drops table names both; then measure the same groups again.")]
    if ctx.family == "sklearn":
        items.append(Advice("Refit with `stalwart.defend.AugmentedClassifier`, which adds perturbed copies of the "
                            "training rows, and compare the per-group drops before and after.",
                            ("stalwart.defend.AugmentedClassifier",)))
    return items


@register_advice("membership_inference")
def _membership(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("If the true-positive rate at low false-positive rate is above the rate itself, the model "
                   "remembers its training rows: regularise it (fewer leaves or epochs, weight decay, early "
                   "stopping), train on more data, or train with differential privacy; return labels or rounded "
                   "probabilities rather than full scores, and measure again with the LiRA attack."),
            ]


@register_advice("extraction")
def _extraction(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("A copy that agrees with the model on most rows from a few hundred queries means the model's "
                   "behaviour is cheap to steal, and its adversarial examples transfer: rate-limit and monitor "
                   "queries per client, return labels rather than probabilities, and do not rely on keeping the "
                   "model secret for robustness.")]


@register_advice("poisoning")
def _poisoning(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("A backdoor learnt from a small share of rows means training data must be trusted: check the "
                   "provenance of training rows, look for rare feature values paired with one label, and screen "
                   "torch models with stalwart.security's backdoor detectors; compare clean accuracy and attack "
                   "success before every retraining on new data.")]


@register_advice("mitigation")
def _mitigation(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("Weigh the disparity reduction against the accuracy it costs (both on the same out-of-fold rows); "
                   "if the reduction's interval excludes 0 and the accuracy loss is acceptable, ship the mitigated "
                   "model and measure its groups again on fresh data.",
                   ("stalwart.groups.ReweighedClassifier", "stalwart.groups.GroupThresholdClassifier"))]


@register_advice("weak_slices")
def _weak_slices(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    rows = [row for row in (r.get("tables") or {}).get("slices") or [] if isinstance(row, Mapping)]
    if not rows:
        return [Advice("No slice stood out after correcting for every slice examined; keep the search in the suite "
                       "so a new weak slice is caught after retraining.")]
    first = str(rows[0].get("slice", ""))
    items = [Advice(f"Start with the slice with the largest effect ({first}): collect or label more rows like "
                    "it, check its labels and features for errors, and weight it up in training "
                    "(`sample_weight`); a slice with low stability may not hold on new data, so confirm it on a "
                    "fresh sample first.")]
    if ctx.modality == "tabular":
        items.append(Advice("Turn each stable slice into a monitored group: pass its columns to "
                            "`stalwart scan --sensitive` so the group checks track it with intervals from now on."))
    return items


@register_advice("stability")
def _stability(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("Fix the seeds of training and report the fold spread beside the accuracy; a large churn "
                   "means individual decisions depend on the seed: average several seeds (an ensemble, "
                   "`stalwart.defend.Ensemble`) or regularise the model.", ("stalwart.defend.Ensemble",))]


@register_advice("certified_robustness")
def _certified(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    items = []
    gap = metric_value(r, "gap")
    if gap is not None and gap > 0.1:
        items.append(Advice("Read the gap as undecided, not as robust: neither the certificate nor the attacks "
                            "settle those samples. Run the check with method='crown' rather than 'ibp', or an "
                            "attack at level='standard', to narrow it."))
    if ctx.family == "torch":
        items.append(Advice("Train for certifiable robustness: adversarial training "
                            "(`stalwart.defend.adversarial_training`, method='pgd' or 'trades') raises both "
                            "bounds; check the result with this check again.",
                            ("stalwart.defend.adversarial_training",)))
    else:
        items.append(Advice("Certify the model that is deployed as it is with randomized smoothing "
                            "(`stalwart.certify.RandomizedSmoothing`), which needs only predictions.",
                            ("stalwart.certify.RandomizedSmoothing",)))
    return items


@register_advice("hardening_tradeoff")
def _hardening_tradeoff(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    return [Advice("Pick an option on the Pareto front whose clean-accuracy cost you can accept, harden the model "
                   "you ship with it (`stalwart.defend.adversarial_training`, or `stalwart harden`) and measure the "
                   "result again with the adversarial check at a stronger level.",
                   ("stalwart.defend.adversarial_training",))]


@register_advice("text_adversarial_robustness")
def _text_adversarial(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    if ctx.family in ("sklearn", "torch"):
        return [Advice("Add adversarial texts to the training data: run `stalwart.attacks.WordSubstitution` "
                       "on the training texts, keep the ones it fooled with their true labels, and refit.",
                       ("stalwart.attacks.WordSubstitution",)),
                _augment(ctx, ["synonym_swap"])]
    what = "ONNX graph" if ctx.family == "onnx" else "function"
    return [Advice(f"Retrain the model behind the {what} with adversarial texts from "
                   "`stalwart.attacks.WordSubstitution` (with their true labels) in its training data.",
                   ("stalwart.attacks.WordSubstitution",))]


# -- OOD and drift ---------------------------------------------------------------------------------
_DETECTORS = {"max_softmax": "MaxSoftmax", "max_logit": "MaxLogit", "energy": "Energy",
              "mahalanobis": "Mahalanobis", "knn_distance": "KNNDistance", "isolation_forest": "IsolationForestOOD"}


@register_advice("ood_detection")
def _ood(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    tables = r.get("tables") or {}
    proto = next(iter(tables.get("protocol") or []), {})
    best = proto.get("best_detector")
    ran = {row.get("detector") for row in tables.get("detectors") or [] if row.get("status") == "ok"}
    items = []
    if best in _DETECTORS:
        cls = f"stalwart.shift.{_DETECTORS[best]}"
        items.append(Advice(f"Of the detectors tried, {best} separates unfamiliar inputs best: deploy it as a "
                            f"guard (`{cls}`: fit on training inputs, `score(x)` each batch) and route inputs "
                            "above a threshold chosen on held-out data to a fallback.", (cls,)))
    untried = []
    if ctx.family == "torch":
        untried = [d for d in ("energy", "mahalanobis") if d not in ran]
    if ctx.modality == "tabular":
        untried += [d for d in ("knn_distance", "isolation_forest") if d not in ran]
    if untried:
        apis = tuple(f"stalwart.shift.{_DETECTORS[d]}" for d in untried)
        items.append(Advice("Try the detectors that did not run: " + ", ".join(f"`{a}`" for a in apis)
                            + " (`stalwart.checks.OODDetection(detectors=[...])` runs them).",
                            (*apis, "stalwart.checks.OODDetection")))
    if str(proto.get("ood_source", "")).startswith("synthetic"):
        items.append(Advice("These OOD inputs are synthetic and easy by design; judge the detectors on real "
                            "unfamiliar data: `stalwart.checks.OODDetection(ood_data=...)` or `stalwart ood "
                            "MODEL IN_DATA OUT_DATA`.", ("stalwart.checks.OODDetection",)))
    return items


def _retrain(ctx: Context) -> Advice:
    if ctx.task == "regression":
        return Advice("If the shift is real and lasting, retrain on recent labelled data (or weight the training "
                      "rows toward the current distribution) and compare the error on both windows.")
    target = "the model" if ctx.family != "none" else "a model that consumes this data"
    return Advice(f"Estimate how accurate {target} still is without new labels: "
                  "`stalwart.shift.ConfidenceEstimator(model).fit(x_reference, y_reference).estimate(x_current)` "
                  "(trust it when `reliable` is True; `stalwart.shift.ImportanceWeightedEstimator(model, "
                  "domain_classifier=\"hgb\")` is a second opinion that does not rely on the model's confidence). "
                  "If accuracy dropped, retrain on recent labelled data, or weight the training rows toward the "
                  "current distribution and refit.",
                  ("stalwart.shift.ConfidenceEstimator", "stalwart.shift.ImportanceWeightedEstimator"))


def _monitor() -> Advice:
    return Advice("Keep watching: run `stalwart.shift.detect_drift(reference_df, batch_df)` on every new batch, "
                  "or feed a key column to a streaming detector such as `stalwart.shift.PageHinkley`.",
                  ("stalwart.shift.detect_drift", "stalwart.shift.PageHinkley"))


@register_advice("data_drift")
def _data_drift(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    rows = [row for row in (r.get("tables") or {}).get("columns") or [] if isinstance(row, Mapping)]
    drifted = [str(row.get("column")) for row in rows if row.get("drifted") is True]
    items = []
    if drifted:
        more = f" and {len(drifted) - MAX_NAMED} more" if len(drifted) > MAX_NAMED else ""
        items.append(Advice(f"Start with the drifted columns: {', '.join(drifted[:MAX_NAMED])}{more}. A change of "
                            "units, a new upstream source or a broken pipeline shows up here before it shows "
                            "in accuracy; fix those at the source."))
    drop, share = metric_value(r, "accuracy_drop"), metric_value(r, "share_drifted")
    if drop is not None and drop > 0.05 and (share or 0.0) <= 0.2:
        items.append(Advice("Accuracy fell while few inputs drifted: the relation between inputs and labels "
                            "changed (concept drift). Retrain on recent labelled data; reweighting old data "
                            "cannot fix this."))
    items += [_retrain(ctx), _monitor()]
    return items


@register_advice("multivariate_drift")
def _multivariate(r: Mapping[str, Any], ctx: Context) -> list[Advice]:
    imp = [row for row in (r.get("tables") or {}).get("importances") or []
           if isinstance(row, Mapping) and _finite(row.get("auc_drop")) and row["auc_drop"] > 0]
    items = []
    if imp:
        names = ", ".join(str(row.get("column")) for row in imp[:MAX_REMEDIES])
        items.append(Advice(f"Start with the columns that give the change away most: {names}. Compare their "
                            "joint values (not only each one alone) between the two samples."))
    items += [_retrain(ctx), _monitor()]
    return items
