"""Evidence mapping from check categories to regulatory and standards requirements.

This says which measurements in a report bear on which requirement. It is *not* a conformity
assessment: a passing check is evidence an assessor may use, never a claim of compliance.

Sources (requirement wording is paraphrased, not quoted):

- EU AI Act, Regulation (EU) 2024/1689, Article 15 "Accuracy, robustness and cybersecurity":
  15(1) appropriate accuracy, robustness and cybersecurity, performing consistently over the life
  cycle; 15(3) accuracy levels and metrics declared in the instructions for use; 15(4) resilience
  to errors, faults and inconsistencies; 15(5) resilience against unauthorised third parties
  exploiting vulnerabilities, naming data poisoning, model poisoning, adversarial examples / model
  evasion and confidentiality attacks.
- NIST AI 100-1, AI Risk Management Framework 1.0: MEASURE 2.5 (valid and reliable, limits of
  generalisation documented), 2.6 (safety, failing safely beyond knowledge limits), 2.7 (security
  and resilience), 2.11 (fairness and bias); MANAGE 4.1 (post-deployment monitoring plans).
- ISO/IEC 42001:2023 Annex A. Control numbers and names were checked against published control
  statements: A.6.2.4 "AI system verification and validation", A.6.2.6 "AI system operation and
  monitoring", A.7.4 "Quality of data for AI systems".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from stalwart.checks.base import CheckResult, Status, worst_status
from stalwart.errors import InputError

__all__ = ["CATEGORIES", "FRAMEWORKS", "DISCLAIMER", "Requirement", "Framework", "compliance_map"]

#: the check categories stalwart knows (see DESIGN.md)
CATEGORIES = ("natural", "adversarial", "ood", "drift", "subgroup", "stability", "certified", "security")

DISCLAIMER = ("Evidence mapping, not a conformity assessment: it shows which checks in this report bear on "
              "each requirement and how they came out; it does not establish compliance with any of them.")


class Requirement(NamedTuple):
    id: str
    title: str
    categories: tuple[str, ...]


class Framework(NamedTuple):
    name: str
    scope: str
    requirements: tuple[Requirement, ...]


FRAMEWORKS: tuple[Framework, ...] = (
    Framework("EU AI Act", "Regulation (EU) 2024/1689, Art. 15 (accuracy, robustness and cybersecurity)", (
        Requirement("Art. 15(1)", "Appropriate level of accuracy, robustness and cybersecurity, performing "
                    "consistently throughout the life cycle", CATEGORIES),
        # the report supplies measured values with intervals; declaring them is the provider's act
        Requirement("Art. 15(3)", "Levels of accuracy and the relevant accuracy metrics, to be declared in "
                    "the instructions for use", ("natural", "subgroup")),
        Requirement("Art. 15(4)", "Resilience to errors, faults or inconsistencies within the system or its "
                    "environment", ("natural", "ood", "drift", "stability")),
        Requirement("Art. 15(5)", "Resilience against attempts to alter use, outputs or performance by "
                    "exploiting vulnerabilities (adversarial examples / model evasion, data poisoning)",
                    ("adversarial", "certified", "security")),
        Requirement("Annex IV(3)", "Technical documentation: capabilities and limitations in performance, "
                    "including the degrees of accuracy for specific persons or groups of persons on which the "
                    "system is intended to be used; foreseeable sources of discrimination", ("subgroup",)),
    )),
    Framework("NIST AI RMF 1.0", "NIST AI 100-1, MEASURE and MANAGE functions", (
        Requirement("MEASURE 2.5", "The AI system is demonstrated to be valid and reliable; limits of "
                    "generalisation are documented", ("natural", "ood", "drift", "stability")),
        Requirement("MEASURE 2.6", "The AI system is evaluated for safety risks and can fail safely, "
                    "particularly beyond its knowledge limits", ("natural", "ood", "certified")),
        Requirement("MEASURE 2.7", "AI system security and resilience are evaluated and documented",
                    ("adversarial", "certified", "security")),
        Requirement("MEASURE 2.11", "Fairness and bias are evaluated and results are documented", ("subgroup",)),
        Requirement("MANAGE 4.1", "Post-deployment monitoring plans are implemented", ("drift", "ood")),
    )),
    Framework("ISO/IEC 42001:2023", "Annex A reference controls", (
        Requirement("A.6.2.4", "AI system verification and validation",
                    ("natural", "adversarial", "ood", "subgroup", "stability", "certified", "security")),
        Requirement("A.6.2.6", "AI system operation and monitoring", ("drift", "ood")),
        Requirement("A.7.4", "Quality of data for AI systems", ("drift", "subgroup")),
    )),
)


def _field(r: Any, name: str) -> Any:
    value = r.get(name) if isinstance(r, Mapping) else getattr(r, name)
    return value.value if isinstance(value, Status) else value


def compliance_map(results: Iterable[Any]) -> dict[str, Any]:
    """Per framework and requirement: the checks of ``results`` that give evidence, and their status.

    ``results`` are :class:`~stalwart.checks.base.CheckResult` objects or their dicts. Evidence
    entries carry the check's 1-based position in the report (``index``), so a page can link to
    it. A requirement is ``covered`` only when at least one of its checks ran (SKIP is not
    evidence); its ``status`` is then the worst status among those checks, else ``None``.
    Categories the mapping does not know are listed under ``unmapped_categories``.
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Iterable):
        raise InputError(f"compliance_map(results=...) needs a list of check results; got {type(results).__name__}. "
                         "Pass Report.results or the 'results' of a report dict (Report.to_dict()['results']).")
    results = list(results)
    odd = sorted({type(r).__name__ for r in results if not isinstance(r, (Mapping, CheckResult))})
    if odd:
        raise InputError(f"compliance_map(results=...) holds {', '.join(odd)} items; each must be a CheckResult or "
                         "its dict. Pass Report.results or the 'results' of a report dict.")
    entries = [{"index": i, "check": str(_field(r, "check")), "category": str(_field(r, "category")),
                "status": str(_field(r, "status"))} for i, r in enumerate(results, start=1)]
    frameworks = []
    for fw in FRAMEWORKS:
        reqs = []
        for req in fw.requirements:
            evidence = [e for e in entries if e["category"] in req.categories]
            ran = [e["status"] for e in evidence if e["status"] != Status.SKIP.value]
            reqs.append({"id": req.id, "title": req.title, "categories": list(req.categories),
                         "evidence": evidence, "covered": bool(ran),
                         "status": worst_status(ran).value if ran else None})
        frameworks.append({"framework": fw.name, "scope": fw.scope, "requirements": reqs})
    known = set(CATEGORIES)
    unmapped = list(dict.fromkeys(e["category"] for e in entries if e["category"] not in known))
    return {"disclaimer": DISCLAIMER, "frameworks": frameworks, "unmapped_categories": unmapped}
