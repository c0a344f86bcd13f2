"""Text helpers shared by the renderers: shortening at word boundaries, mending texts a check cut,
and the part of a check's message that its conditions do not already say."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stalwart._validation import check_param
from stalwart.errors import InputError

__all__ = ["shorten", "mend_cut", "CHECK_TEXT_CAP", "ERROR_COLUMNS", "notes_of", "report_problem", "require_report",
           "require_result", "require_check_name"]

#: where a report dict comes from, for the messages that ask for one
REPORT_SOURCES = "Report.to_dict() or a loaded report.json (json.load of the file, or Report.load(path).to_dict())"

#: checks store error texts cut to this many characters, possibly mid-word
CHECK_TEXT_CAP = 300
#: table columns that hold error or explanation texts (mended and shortened for display)
ERROR_COLUMNS = frozenset({"error", "reason", "detail", "note"})
_ELLIPSIS = "…"


def shorten(text: Any, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary with "…".

    Examples
    --------
    >>> shorten("Input X contains NaN values everywhere", 24)
    'Input X contains NaN…'
    >>> shorten("short", 24)
    'short'
    """
    s = " ".join(str(text or "").split())
    if len(s) <= limit:
        return s
    head = s[: max(limit - 1, 1)]
    cut = head.rfind(" ")
    if cut > 0:
        head = head[:cut]
    return head.rstrip(" ,;:-(") + _ELLIPSIS


def mend_cut(text: Any, cap: int = CHECK_TEXT_CAP) -> str:
    """A text a check cut at exactly ``cap`` characters, ended at its last whole word with "…".

    A text of another length was not cut and comes back unchanged.

    Examples
    --------
    >>> mend_cut("it is po", cap=8)
    'it is…'
    """
    s = str(text)
    if len(s) != cap or s.endswith((".", "!", "?", ")", _ELLIPSIS)):
        return s
    cut = s.rfind(" ")
    return (s[:cut] if cut > 0 else s).rstrip(" ,;:-(") + _ELLIPSIS


def notes_of(result: Mapping[str, Any], said: str = "") -> str:
    """A result's message without the condition verdicts it repeats (they have their own table)
    and without parts already ``said`` (the headline): what is left are the check's own warnings
    and notes, "" when none."""
    message = str(result.get("message") or "")
    for c in result.get("conditions") or []:
        text = str(c.get("message") or "")
        if text:
            message = message.replace(text, "")
    parts = [p.strip() for p in message.split("; ")]
    return "; ".join(p for p in parts if p and p not in said)


def report_problem(report: Any) -> str:
    """What keeps ``report`` from being a report dict, in a few words; ``""`` when it is one."""
    if not isinstance(report, Mapping):
        return f"an object of type {type(report).__name__}, not a dict"
    missing = [repr(k) for k in ("results", "model") if k not in report]
    if missing:
        return f"a dict without {' and '.join(missing)}"
    results = report["results"]
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence) \
            or not all(isinstance(r, Mapping) for r in results):
        return "a dict whose 'results' is not a list of check result dicts"
    if not isinstance(report["model"], Mapping):
        return "a dict whose 'model' is not a dict"
    return ""


def require_report(report: Any, owner: str) -> Mapping[str, Any]:
    """``report`` when it is a report dict, else an :class:`InputError` that says where one comes from."""
    problem = report_problem(report)
    if problem:
        raise InputError(f"{owner}(report=...) needs a stalwart report dict; got {problem}. Pass {REPORT_SOURCES}.")
    return report


def require_result(result: Any, owner: str) -> Mapping[str, Any]:
    """``result`` when it is a check result dict, else an :class:`InputError` that says where one comes from."""
    if not isinstance(result, Mapping):
        raise InputError(f"{owner}(result=...) needs one check result dict; got {type(result).__name__}. Pass "
                         "CheckResult.to_dict() or an entry of the 'results' of a report dict.")
    return result


def require_check_name(owner: str, check: Any) -> str:
    """``check`` when it is a check name (a non-empty string), else a :class:`~stalwart.errors.ConfigError`."""
    return check_param(owner, "check", check, isinstance(check, str) and bool(check.strip()),
                       "the name of a check (a non-empty string, e.g. 'natural_robustness')")
