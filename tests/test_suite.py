"""Suite: presets, YAML round trip, config errors, validation and running."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from stalwart.checks import AdversarialRobustness, NaturalRobustness
from stalwart.data.dataset import Dataset
from stalwart.errors import ConfigError, InputError
from stalwart.models import wrap
from stalwart.suite import Suite, resolve

YAML = """
name: gate
checks:
  - check: natural_robustness
    params: {perturbations: [feature_noise], severities: [1, 3], max_samples: 50}
    conditions: ["accuracy_drop_s3 <= 0.05"]
  - check: adversarial_robustness
    params: {eps: [0.02, 0.05], level: fast, minimal: false, max_samples: 40}
"""


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    data = Dataset.from_arrays(x, y)
    return wrap(LogisticRegression().fit(data.x, y)), data


@pytest.mark.parametrize("modality", ["tabular", "image", "text"])
def test_presets(modality):
    from stalwart import perturb
    from stalwart.checks.natural import family_of

    quick, standard, thorough = (Suite.preset(p, modality) for p in ("quick", "standard", "thorough"))
    assert quick.name == f"quick-{modality}" and thorough.name == f"thorough-{modality}"
    for suite in (quick, standard, thorough):  # every preset opens with the clean-performance gate
        assert suite.checks[0].name == "clean_performance"
    q_nat, s_nat, t_nat = quick.checks[1], standard.checks[1], thorough.checks[1]
    assert q_nat.severities == [1, 3, 5] and s_nat.severities == t_nat.severities == [1, 2, 3, 4, 5]
    assert (q_nat.max_samples, s_nat.max_samples, t_nat.max_samples) == (200, 500, 2000)
    # quick: a subset that still covers every family of the modality
    assert set(q_nat.perturbations) < set(perturb.names(modality))
    assert {family_of(n) for n in q_nat.perturbations} == {family_of(n) for n in perturb.names(modality)} - {"other"}
    assert s_nat.perturbations is None and t_nat.perturbations is None
    assert (q_nat.column_sensitivity, s_nat.column_sensitivity, t_nat.column_sensitivity) == (False, False, True)
    names = {p: [c.name for c in s.checks[1:]] for p, s in (("q", quick), ("s", standard), ("t", thorough))}
    if modality == "text":
        assert names == {"q": ["natural_robustness", "text_adversarial_robustness"],
                         "s": ["natural_robustness", "text_adversarial_robustness"],
                         "t": ["natural_robustness", "behavioural_tests", "text_adversarial_robustness"]}
        assert [s.checks[-1].max_samples for s in (quick, standard, thorough)] == [200, 500, 2000]
        return
    extra = ["corruption_robustness"] if modality == "image" else []
    assert names["q"] == ["natural_robustness", "adversarial_robustness"]
    assert names["s"] == names["t"] == ["natural_robustness", *extra, "adversarial_robustness"]
    if extra:
        assert standard.checks[2].max_samples == 500 and thorough.checks[2].max_samples == 2000
    q_adv, s_adv, t_adv = quick.checks[-1], standard.checks[-1], thorough.checks[-1]
    assert (len(q_adv.eps), q_adv.level, q_adv.minimal, q_adv.max_samples) == (3, "fast", False, 100)
    assert (len(s_adv.eps), s_adv.level, s_adv.minimal, s_adv.max_samples) == (5, "standard", True, 200)
    assert (t_adv.eps, t_adv.level, t_adv.max_samples) == (s_adv.eps, "standard", 500)
    assert q_adv.attack == s_adv.attack == t_adv.attack == "evaluate"
    assert q_adv.eps[1] == s_adv.eps[1] == 0.03  # same reference budget for the default condition
    for suite in (quick, standard, thorough):  # every preset survives YAML
        assert Suite.from_yaml(suite.to_yaml()).to_dict() == suite.to_dict()


def test_yaml_round_trip(tmp_path):
    suite = Suite.from_yaml(YAML)
    assert suite.name == "gate"
    gate, nat, adv = suite.checks
    assert gate.name == "clean_performance"  # added: the YAML does not name it
    assert isinstance(nat, NaturalRobustness) and nat.severities == [1, 3]
    assert [str(c) for c in nat.conditions] == ["accuracy_drop_s3 <= 0.05"]
    assert isinstance(adv, AdversarialRobustness) and adv.conditions is None and adv.eps == [0.02, 0.05]
    text = suite.to_yaml()
    assert Suite.from_yaml(text).to_dict() == suite.to_dict()
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    assert Suite.from_yaml(path).to_dict() == suite.to_dict()
    assert resolve(str(path), "tabular").to_dict() == suite.to_dict()
    preset = Suite.preset("standard", "image")
    assert Suite.from_yaml(preset.to_yaml()).to_dict() == preset.to_dict()


@pytest.mark.parametrize(("text", "match"), [
    ("checks: [{check: robustness_magic}]", r"unknown check 'robustness_magic'; known: adversarial_robustness"),
    ("checks: [{check: natural_robustness, params: {sevs: [1]}}]",
     r"check 'natural_robustness' got unknown parameter\(s\) \['sevs'\]"),
    ("checks: [{check: natural_robustness, conditions: ['drop =< 1']}]", r"cannot parse condition 'drop =< 1'"),
    ("name: x\nchecks: []", r"non-empty list"),
    ("name: x\nsteps: 3\nchecks: [{check: natural_robustness}]", r"unknown key\(s\) \['steps'\]"),
    ("checks: [natural_robustness", r"does not parse"),
])
def test_bad_yaml_raises_config_error(text, match):
    with pytest.raises(ConfigError, match=match):
        Suite.from_yaml(text)


def test_resolve():
    suite = Suite.preset("quick", "image")
    assert resolve(suite, "tabular") is suite
    assert resolve("standard", "text").name == "standard-text"
    assert resolve("thorough", "image").name == "thorough-image"
    with pytest.raises(ConfigError, match=r"suite must be one of \['quick', 'standard', 'thorough'\]"):
        resolve("thorough-ish", "tabular")
    with pytest.raises(ConfigError, match=r"cannot read suite file 'missing.yaml'"):
        resolve("missing.yaml", "tabular")
    with pytest.raises(ConfigError, match=r"unknown suite preset 'slow'"):
        Suite.preset("slow", "tabular")
    with pytest.raises(ConfigError, match=r"Suite\(checks=\.\.\.\) must be a list of Check"):
        Suite(["natural_robustness"])


def test_run_reports_progress_and_results(problem):
    model, data = problem
    calls = []
    report = Suite.from_yaml(YAML).run(model, data, seed=0, progress=lambda *a: calls.append(a))
    assert calls == [("clean_performance", 0, 3), ("natural_robustness", 1, 3), ("adversarial_robustness", 2, 3),
                     ("done", 3, 3)]
    assert [r.check for r in report.results] == ["clean_performance", "natural_robustness", "adversarial_robustness"]
    assert report.seed == 0 and report.suite["name"] == "gate"


def test_run_validates_inputs_once(problem):
    model, data = problem
    suite = Suite.from_yaml(YAML)
    with pytest.raises(InputError, match=r"the data has no labels"):
        suite.run(model, Dataset.from_arrays(data.x))
    with pytest.raises(InputError, match=r"labels the model does not know: \['maybe'\]"):
        suite.run(model, Dataset.from_arrays(data.x, np.where(data.y == "yes", "maybe", "no")))
    with pytest.raises(ConfigError, match=r"do not apply to image data"):
        suite.run(wrap(lambda a: np.tile([0.5, 0.5], (len(a), 1)), classes=[0, 1]),
                  Dataset.from_arrays(np.zeros((4, 1, 3, 3), dtype=np.float32), [0, 1, 0, 1]))
