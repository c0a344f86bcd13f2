"""Suite: an ordered list of checks, presets per modality, YAML in and out.

YAML format::

    name: my-suite
    checks:
      - check: natural_robustness
        params: {severities: [1, 3, 5], max_samples: 200}
        conditions: ["accuracy_drop_s3 <= 0.05"]
      - check: adversarial_robustness
        params: {eps: [0.01, 0.03, 0.1], steps: 20}

``conditions`` replaces a check's default conditions (``[]``: measure only); leave it out to
keep the defaults. Every suite opens with the ``clean_performance`` gate (the model must beat a
constant guess, or its robustness means nothing); ``gate: false`` turns that off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stalwart._validation import check_labels, check_seed, param_error
from stalwart.checks import Check, build
from stalwart.checks.performance import CleanPerformance
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError

__all__ = ["Suite", "PRESETS", "QUICK_PERTURBATIONS", "resolve"]

PRESETS: tuple[str, ...] = ("quick", "standard", "thorough")

#: the quick preset's perturbations: two or three per family, chosen to differ in kind
QUICK_PERTURBATIONS: dict[str, tuple[str, ...]] = {
    "image": ("gaussian_noise", "impulse_noise", "defocus_blur", "motion_blur", "fog", "brightness",
              "contrast", "jpeg_compression", "rotation", "occlusion"),
    "tabular": ("feature_noise", "rounding", "missing_values", "outliers", "unit_scale", "category_swap",
                "stuck_sensor"),
    "text": ("keyboard_typos", "char_delete", "case_change", "punctuation_removal", "synonym_swap",
             "name_swap", "contract", "add_irrelevant"),
}
Progress = Callable[[str, int, int], None]


class Suite:
    """An ordered list of checks to run on one model and dataset.

    Parameters
    ----------
    checks : list of Check
    name : str, default "custom"
    gate : bool, default True
        Open with the :class:`~stalwart.checks.CleanPerformance` gate (unless ``checks`` has
        one): robustness numbers mean nothing for a model no better than a constant guess, so
        every suite first shows that the model beats the majority class (regression: the mean).
        YAML: ``gate: false``.

    Examples
    --------
    >>> suite = Suite.preset("quick", "tabular")
    >>> [c.name for c in suite.checks]
    ['clean_performance', 'natural_robustness', 'adversarial_robustness']
    """

    def __init__(self, checks: Sequence[Check], name: str = "custom", *, gate: bool = True) -> None:
        if isinstance(checks, Check) or not isinstance(checks, Sequence) or not all(
                isinstance(c, Check) for c in checks):
            raise param_error(self, "checks", "a list of Check instances (see stalwart.checks.get)", checks)
        if not isinstance(name, str) or not name:
            raise param_error(self, "name", "a non-empty string", name)
        if not isinstance(gate, (bool, np.bool_)):
            raise param_error(self, "gate", "True or False", gate)
        self.checks = list(checks)
        self.name = name
        self.gate = bool(gate)
        if self.gate and not any(isinstance(c, CleanPerformance) for c in self.checks):
            # robustness is meaningless for a model that has not learned the task: check that first
            self.checks.insert(0, CleanPerformance())

    # -- presets -------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, modality: str) -> Suite:
        """A built-in suite for ``modality`` ("tabular", "image" or "text").

        ========  ==============================  ==========================  =========================
        preset    natural robustness              extra checks                adversarial
        ========  ==============================  ==========================  =========================
        quick     2-3 perturbations per family    -                           ``evaluate`` fast, eps
                  (:data:`QUICK_PERTURBATIONS`),                              0.01 0.03 0.1, 100
                  severities 1 3 5, 200 samples                               samples; text: word
                                                                              substitution, 200
        standard  every perturbation, 1-5,        image: corruption           ``evaluate`` standard, eps
                  500 samples                     robustness (mCE), 500       0.01 0.03 0.05 0.1 0.2,
                                                                              minimal perturbations,
                                                                              200; text: 500
        thorough  every perturbation, 1-5, 2000   image: corruption           as standard, 500
                  samples; tabular: per-column    robustness, 2000; text:     samples; text: 2000
                  sensitivity                     behavioural tests, 2000
        ========  ==============================  ==========================  =========================

        Per-column sensitivity (tabular) is on in ``thorough`` only: it costs one predict call per
        column. eps are fractions of the input range (see
        :class:`~stalwart.checks.AdversarialRobustness`); the reference eps of the default
        condition is 0.03 in every preset, so their verdicts are comparable.
        """
        from stalwart.checks import AdversarialRobustness, NaturalRobustness
        from stalwart.checks.behaviour import BehaviouralTests
        from stalwart.checks.corruption import CorruptionRobustness
        from stalwart.checks.text_adversarial import TextAdversarialRobustness

        if name not in PRESETS:
            raise ConfigError(f"unknown suite preset {name!r}; presets are {list(PRESETS)}, or pass a YAML file")
        if modality not in ("tabular", "image", "text"):
            raise ConfigError(f"Suite.preset(modality=...) must be one of ['tabular', 'image', 'text']; "
                              f"got {modality!r}")
        all_sev = (1, 2, 3, 4, 5)
        if name == "quick":
            checks: list[Check] = [NaturalRobustness(perturbations=QUICK_PERTURBATIONS[modality],
                                                     severities=(1, 3, 5), max_samples=200,
                                                     column_sensitivity=False)]
            if modality == "text":
                checks.append(TextAdversarialRobustness(max_samples=200))
            else:
                checks.append(AdversarialRobustness(eps=(0.01, 0.03, 0.1), level="fast", minimal=False,
                                                    max_samples=100))
            return cls(checks, name=f"{name}-{modality}")
        n = 500 if name == "standard" else 2000
        checks = [NaturalRobustness(severities=all_sev, max_samples=n, column_sensitivity=name == "thorough")]
        if modality == "image":
            checks.append(CorruptionRobustness(severities=all_sev, max_samples=n))
        if modality == "text" and name == "thorough":
            checks.append(BehaviouralTests(max_samples=n))
        if modality == "text":
            checks.append(TextAdversarialRobustness(max_samples=n))
        else:
            checks.append(AdversarialRobustness(eps=(0.01, 0.03, 0.05, 0.1, 0.2), level="standard", minimal=True,
                                                max_samples=200 if name == "standard" else 500))
        return cls(checks, name=f"{name}-{modality}")

    # -- configuration -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        entries = []
        for c in self.checks:
            entry: dict[str, Any] = {"check": c.name, "params": c.params()}
            if c.conditions is not None:
                entry["conditions"] = [str(k) if k.description is None else k.to_dict() for k in c.conditions]
            entries.append(entry)
        out: dict[str, Any] = {"name": self.name, "checks": entries}
        if not self.gate:
            out["gate"] = False
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suite:
        if not isinstance(d, Mapping):
            raise ConfigError(f"a suite must be a mapping with 'name' and 'checks'; got {type(d).__name__}")
        unknown = sorted(set(d) - {"name", "checks", "gate"})
        if unknown:
            raise ConfigError(f"suite has unknown key(s) {unknown}; use 'name', 'checks' and 'gate'")
        entries = d.get("checks")
        if not isinstance(entries, list) or not entries:
            raise ConfigError("suite 'checks' must be a non-empty list of {check: name, params: {...}} entries")
        gate = d.get("gate", True)
        if not isinstance(gate, bool):
            raise ConfigError(f"suite 'gate' must be true or false; got {gate!r}")
        return cls([build(e) for e in entries], name=str(d.get("name") or "custom"), gate=gate)

    def to_yaml(self) -> str:
        """The suite as YAML text; :meth:`from_yaml` reads it back."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> Suite:
        """A suite from a YAML file path or YAML text."""
        text = _read_yaml_source(path_or_text)
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"the suite YAML does not parse: {_yaml_problem(exc)}; check the YAML syntax there "
                              "(a suite is a mapping such as 'checks: [{check: clean_performance}]').") from None
        return cls.from_dict(d)

    # -- running -------------------------------------------------------------------------------
    def run(self, model: Any, data: Dataset, *, seed: int = 0, progress: Progress | None = None,
            executor: Any = None):
        """Run every check on ``model`` and ``data``; return a :class:`~stalwart.report.Report`.

        Model and data are validated once, up front (:func:`~stalwart.models.compat.check_compatible`):
        columns are matched to the model's by name, a probe batch goes through the model, the data
        needs labels the model knows and every check must accept the data's modality. Each check gets ``seed``, so a check run on
        its own with the same seed reproduces its result in the suite.

        ``progress(check_name, i, n)`` is called before check ``i`` (0-based) and once at the
        end with ``i == n``.

        ``executor`` ("local", "process", "ray", an :class:`~stalwart.execute.Executor`, or None for
        the one :func:`~stalwart.execute.use_executor` set): on a parallel executor the checks,
        which do not depend on each other, run as tasks at the same time (the model and data travel
        to each worker once); the report is the sequential one, checks in suite order, and a check
        that fails to measure is ERROR in it as it is sequentially. Progress then counts finished
        checks (``progress("checks", k, n)``). Inside a worker a check's own shards run in that worker,
        or as further Ray tasks on Ray.
        """
        from stalwart.execute import resolve_executor, use_executor
        from stalwart.models import Model, wrap
        from stalwart.models.compat import check_compatible
        from stalwart.report import Report

        check_seed("Suite.run", seed)
        runner = resolve_executor(executor)
        model = model if isinstance(model, Model) else wrap(model)
        if not isinstance(data, Dataset):
            raise InputError(f"data must be a stalwart Dataset; got {type(data).__name__}. "
                             "Build one with stalwart.Dataset.from_arrays(x, y).")
        if data.y is None:
            raise InputError("the data has no labels; the checks measure accuracy, so pass y (or --target).")
        for check in self.checks:
            check.validate(model, data)
        data = check_compatible(model, data)
        if model.task == "classification":
            check_labels(data.y, model.known_classes(data.x), "y")

        start = time.perf_counter()
        results = []
        n = len(self.checks)
        if runner.parallel and n > 1:
            if progress is not None:
                progress("checks", 0, n)
            nested = runner.retries if runner.name == "ray" else None
            try:
                results = runner.map(_run_check, [(check, int(seed), nested) for check in self.checks],
                                     shared=(model, data),
                                     on_done=None if progress is None else (lambda k: progress("checks", k, n)))
            finally:
                if isinstance(executor, str):  # made here, for this run: a Ray runtime it started is shut down
                    runner.close()
        else:  # one after the other here; a check's own shards (a perturbation grid) go to the executor
            try:
                with use_executor(runner):
                    for i, check in enumerate(self.checks):
                        if progress is not None:
                            progress(check.name, i, n)
                        results.append(check.run(model, data, seed=int(seed)))
            finally:
                if isinstance(executor, str):
                    runner.close()
        if progress is not None:
            progress("done", n, n)
        return Report.from_run(model=model, data=data, results=results, suite=self.to_dict(), seed=int(seed),
                               total_s=time.perf_counter() - start)

    def __repr__(self) -> str:
        return f"Suite(name={self.name!r}, checks={[c.name for c in self.checks]})"


def _run_check(shared: tuple[Any, Dataset], item: tuple[Check, int, int | None]) -> Any:
    """One check of a suite as a task: ``check.run(model, data, seed)`` (in a worker).

    A check's own sharded work (a perturbation grid) runs in this worker, or, when the suite runs on
    Ray, as further Ray tasks (``item[2]`` is then the driver's retries; Ray is already running in
    its workers, so nothing is started or shut down here).
    """
    from stalwart.execute import LocalExecutor, RayExecutor, use_executor

    model, data = shared
    check, seed, ray_retries = item
    with use_executor(LocalExecutor() if ray_retries is None else RayExecutor(retries=ray_retries)):
        return check.run(model, data, seed=seed)


def _yaml_problem(exc: Exception) -> str:
    """A YAML parse error on one line: what is wrong and where (PyYAML's text spans several lines)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _read_yaml_source(path_or_text: str | Path) -> str:
    if isinstance(path_or_text, Path):
        try:
            return path_or_text.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read suite file {str(path_or_text)!r}: {exc.strerror or exc}; check the "
                              "path and that the file is readable.") from None
    if not isinstance(path_or_text, str):
        raise ConfigError(f"a suite must be YAML text or a path to a YAML file; got {type(path_or_text).__name__}")
    if "\n" not in path_or_text and path_or_text.strip().endswith((".yaml", ".yml")):
        return _read_yaml_source(Path(path_or_text.strip()))
    return path_or_text


def resolve(spec: str | Path | Suite, modality: str) -> Suite:
    """A Suite from ``"quick"``, ``"standard"``, ``"thorough"``, a YAML file path or a Suite."""
    if isinstance(spec, Suite):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return Suite.preset(spec, modality)
    if isinstance(spec, Path) or (isinstance(spec, str) and (spec.endswith((".yaml", ".yml")) or Path(spec).is_file())):
        return Suite.from_yaml(Path(spec))
    raise ConfigError(f"suite must be one of {list(PRESETS)}, a path to a suite YAML file or a Suite; got {spec!r}")
