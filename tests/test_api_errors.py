"""A sweep of bad calls to every public function and class.

The error contract (docs: DESIGN.md, "Conventions"): on bad input a public function raises a
:mod:`stalwart.errors` exception whose message names the argument, says what was wrong and how to
fix it; never a raw TypeError / KeyError / IndexError, a numpy, torch, pandas or pyarrow error, and
never a silently wrong result.

Each row of ``CASES`` is (public names it covers, the call, the expected exception class, a regex
the message must match). :func:`test_every_public_name_has_a_case` fails when a name in the
``__all__`` of a public module has no row, so a new public function cannot ship untested here.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

import stalwart
from stalwart import (
    attacks,
    certify,
    checks,
    data,
    datasets,
    defend,
    execute,
    groups,
    models,
    perturb,
    report,
    security,
    shift,
    suite,
    testing,
)
from stalwart.errors import ConfigError, InputError, MissingDependencyError, ModelError, StalwartError

PUBLIC_MODULES = ("stalwart", "stalwart.attacks", "stalwart.perturb", "stalwart.shift", "stalwart.checks",
                  "stalwart.data", "stalwart.datasets", "stalwart.models", "stalwart.defend", "stalwart.report",
                  "stalwart.suite", "stalwart.testing", "stalwart.certify", "stalwart.groups",
                  "stalwart.security", "stalwart.monitor", "stalwart.execute")

#: names that are constants, not callables; each says which case shows it in use or why none can
CONSTANTS = {
    "stalwart.__version__": "a version string",
    "stalwart.execute.EXECUTORS": "a dict of executor classes by name: covered by get_executor's unknown-name case",
    "stalwart.execute.DEFAULT_SHARD_SIZE": "the number 1000: covered by evaluate's shard_size cases",
    "stalwart.attacks.ATTACKS": "registry: covered by its .get/.register cases",
    "stalwart.perturb.PERTURBATIONS": "registry: covered by its .get/.register cases",
    "stalwart.perturb.SEVERITIES": "the tuple 1..5: covered by the severity cases",
    "stalwart.shift.DETECTORS": "registry: covered by its .get case",
    "stalwart.checks.CHECKS": "registry: covered by its .get case",
    "stalwart.certify.CERTIFIERS": "registry: covered by its .get case",
    "stalwart.defend.TRADEOFF_METHODS": "a dict of option names: covered by option_names' unknown-parameter case",
    "stalwart.groups.METRICS": "a tuple of metric names: covered by group_metrics' unknown-metric case",
    "stalwart.groups.MISSING": "the group name of missing values, a string",
    "stalwart.checks.MIN_SAMPLES": "the number 30: covered by the tiny-sample cases of the checks",
    "stalwart.attacks.EPS_UNITS": "a dict of unit descriptions: covered by the ThreatModel(unit=...) case",
    "stalwart.models.SUPPORTED_EXTENSIONS": "a dict: covered by load_model's unknown-extension case",
    "stalwart.report.SCHEMA_VERSION": "a string: covered by Report.load's future-schema case",
    "stalwart.report.TIMING_KEYS": "a frozenset of key names drop_timings removes",
    "stalwart.suite.PRESETS": "a tuple: covered by resolve's unknown-preset case",
    "stalwart.suite.QUICK_PERTURBATIONS": "a dict of perturbation names per modality",
    "stalwart.monitor.SCOPES": "a tuple of scope names: covered by the Store.create_key case",
}

#: callables no input can misuse; each says why
NO_BAD_INPUT = {
    "stalwart.report.package_versions": "takes no arguments",
    "stalwart.report.drop_timings": "total: returns any value without its timing keys",
    "stalwart.models.torch_mirror": "total: returns None for anything it cannot mirror (documented)",
}

# a generic test on every message: it must say how to fix the problem, not only what broke (listing
# the valid choices counts: "unknown column 'zz'; the data has columns [...]")
FIX_HINT = re.compile(
    r"\b(has columns|known:|pass|use|set|install|transpose|rescale|reshape|declare|map|pick|choose|check|fit|drop|impute|"
    r"encode|wrap|save|load|write|build|call|give|add|remove|rename|convert|clean|leave|name|make|"
    r"must|needs?|expects?|should|one of|known|supported|presets are|available|at least|at most|"
    r"instead|only)\b", re.I)


@dataclass(frozen=True)
class Case:
    covers: tuple[str, ...]
    call: Callable[[Any], Any]
    exc: type[StalwartError]
    match: str
    known: str = ""  # a defect outside this change's files: strict xfail, see the reason


def case(covers: str | tuple[str, ...], call: Callable[[Any], Any], exc: type[StalwartError], match: str,
         known: str = "") -> Case:
    return Case((covers,) if isinstance(covers, str) else covers, call, exc, match, known)


# -- tiny models and data, built once --------------------------------------------------------------
class _Env(types.SimpleNamespace):
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> _Env:
    return build_env(tmp_path_factory.mktemp("bad_files"))


def build_env(d: Path) -> _Env:
    rng = np.random.default_rng(0)
    e = _Env()
    e.x = rng.random((40, 4))
    e.y = (e.x[:, 0] + e.x[:, 1] > 1.0).astype(int)
    e.lr = LogisticRegression().fit(e.x, e.y)
    e.m_lr = stalwart.wrap(e.lr)
    e.reg = stalwart.wrap(LinearRegression().fit(e.x, e.x[:, 0]))
    gen = torch.Generator().manual_seed(0)
    e.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for p in e.net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    e.m_net = stalwart.wrap(e.net)
    e.black = stalwart.wrap(lambda a: np.stack([1 - np.clip(np.asarray(a)[:, 0], 0, 1),
                                                np.clip(np.asarray(a)[:, 0], 0, 1)], axis=1))
    e.conv = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 2))
    e.m_conv = stalwart.wrap(e.conv)
    # no nn.Linear: the adapter cannot guess its classes without running it
    e.m_pool = stalwart.wrap(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1),
                                                 torch.nn.Flatten()))
    e.imgs = rng.random((4, 3, 8, 8)).astype(np.float32)
    e.nhwc = np.ascontiguousarray(e.imgs.transpose(0, 2, 3, 1))
    e.iy = np.array([0, 1, 0, 1])
    e.df = pd.DataFrame(e.x, columns=["a", "b", "c", "d"])
    e.ds = stalwart.Dataset.from_arrays(e.df, e.y)
    e.texts = ["a good film", "a bad film", "great acting", "awful plot"] * 5
    e.ty = np.array([1, 0, 1, 0] * 5)
    e.text_clf = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(e.texts, e.ty)
    e.threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    e.lexicon = attacks.LexiconSynonyms()

    e.dir = d
    good = pickle.dumps(e.lr)
    (d / "truncated.pkl").write_bytes(good[: len(good) // 3])
    # a pickle of a class from a package that is not installed
    (d / "missing_pkg.pkl").write_bytes(b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x0fnot_a_package_x"
                                        b"\x94\x8c\x03Foo\x94\x93\x94)\x81\x94.")
    (d / "dict.pkl").write_bytes(pickle.dumps({"not": "a model"}))
    (d / "model.pkl").write_bytes(good)
    for name in ("garbage.skops", "garbage.pt", "garbage.onnx", "garbage.joblib", "garbage.pt2", "model.txt",
                 "garbage.parquet", "garbage.npz"):
        (d / name).write_bytes(b"\x00\x01 this is not a model nor data \xff")
    (d / "report.json").write_text("{not json", encoding="utf-8")
    (d / "future.json").write_text('{"schema_version": "99.0", "results": [], "model": {}, "data": {}}',
                                   encoding="utf-8")
    (d / "list.json").write_text("[1, 2, 3]", encoding="utf-8")
    (d / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n", encoding="utf-8")
    (d / "suite_bad.yaml").write_text("checks: [1, 2]\n", encoding="utf-8")
    (d / "suite_unknown.yaml").write_text("checks:\n  - check: nope\n", encoding="utf-8")
    (d / "suite_syntax.yaml").write_text("checks: [\n  - : :\n", encoding="utf-8")
    (d / "suite_scalar.yaml").write_text("42\n", encoding="utf-8")
    pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(d / "ref.parquet")
    return e


T = attacks.ThreatModel  # short alias for the table


# -- the table --------------------------------------------------------------------------------------
CASES: list[Case] = [
    # stalwart.wrap / load_model / Model
    case(("stalwart.wrap", "stalwart.models.wrap"), lambda e: stalwart.wrap(123), ModelError,
         r"cannot wrap .*int.*Supported"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.net, device="nonsense"), ModelError,
         r"device.*nonsense.*(cpu|cuda)"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.lr, device="cpu"), ModelError, r"torch modules only"),
    case("stalwart.wrap", lambda e: stalwart.wrap("model.pkl"), ModelError, r"load_model"),
    case("stalwart.wrap", lambda e: stalwart.wrap(LogisticRegression()), ModelError, r"fit"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.lr, task="nope"), ConfigError, r"task.*classification"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.lr, batch_size=0), ConfigError, r"batch_size.*> 0"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.net, batch_size=-1), ConfigError, r"batch_size.*> 0"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.lr, input_bounds=(1.0, 0.0)), ConfigError, r"input_bounds"),
    case("stalwart.wrap", lambda e: stalwart.wrap(e.lr, input_bounds="ab"), ConfigError, r"input_bounds"),
    case(("stalwart.load_model", "stalwart.models.load_model"), lambda e: stalwart.load_model(123), InputError,
         r"path.*str or pathlib\.Path.*got int.*wrap\(model\)"),
    case("stalwart.load_model", lambda e: stalwart.load_model(None), InputError, r"path"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "nope.skops"), InputError,
         r"does not exist.*check the path"),
    case(("stalwart.load_model", "stalwart.models.SUPPORTED_EXTENSIONS"),
         lambda e: stalwart.load_model(e.dir / "model.txt"), ModelError, r"unknown extension '\.txt'.*\.skops"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "model.pkl"), ModelError, r"trust=True"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "truncated.pkl", trust=True), ModelError,
         r"truncated\.pkl.*(truncated|corrupt)"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "missing_pkg.pkl", trust=True), ModelError,
         r"missing_pkg\.pkl.*not_a_package_x.*install"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.joblib", trust=True), ModelError,
         r"garbage\.joblib"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "dict.pkl", trust=True), ModelError,
         r"cannot wrap .*dict"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.skops"), ModelError,
         r"garbage\.skops.*not a readable skops"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.pt"), ModelError,
         r"garbage\.pt.*trust=True"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.pt", trust=True), ModelError,
         r"garbage\.pt"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.pt2"), ModelError,
         r"garbage\.pt2"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "garbage.onnx"), ModelError,
         r"garbage\.onnx"),
    case("stalwart.load_model", lambda e: stalwart.load_model(e.dir / "model.pkl", trust=True, task="nope"),
         ConfigError, r"task"),
    case(("stalwart.Model", "stalwart.models.Model"), lambda e: e.m_lr.predict_proba([]), InputError, r"empty"),
    case("stalwart.Model", lambda e: e.m_lr.predict_proba([["a", "b", "c", "d"]]), InputError, r"numeric"),
    case("stalwart.Model", lambda e: e.m_lr.predict_proba(e.x[:, :2]), InputError, r"4 features|2 features"),
    case("stalwart.Model", lambda e: e.m_lr.predict(np.full((2, 4), np.nan)), (InputError, ModelError),
         r"NaN"),
    case("stalwart.Model", lambda e: e.m_net.predict_proba(e.x[:, :3]), InputError, r"3|4"),
    case("stalwart.Model", lambda e: e.m_net.predict_proba("abcd"), InputError, r"numeric|shape"),
    case("stalwart.Model", lambda e: e.reg.predict_proba(e.x), ModelError, r"regression.*predict\(\)"),
    case("stalwart.Model", lambda e: e.m_lr.torch_logits(torch.zeros(2, 3)), InputError, r"3|4"),
    case(("stalwart.models.SklearnModel",), lambda e: models.SklearnModel("nope"), ModelError, r"estimator"),
    case("stalwart.models.SklearnModel", lambda e: models.SklearnModel(LogisticRegression()), ModelError,
         r"fit"),
    case("stalwart.models.SklearnModel", lambda e: models.SklearnModel(e.lr, classes=[0, 1, 2]), ModelError,
         r"classes"),
    case("stalwart.models.TorchModel", lambda e: models.TorchModel("nope"), ModelError, r"torch\.nn\.Module"),
    case("stalwart.models.TorchModel", lambda e: models.TorchModel(e.net, batch_size=0), ConfigError,
         r"batch_size"),
    case("stalwart.models.TorchModel", lambda e: models.TorchModel(e.net, output="nope"), ConfigError,
         r"output.*one of"),
    case("stalwart.models.TorchModel", lambda e: models.TorchModel(e.net, input_shape=(5,)), (InputError, ModelError),
         r"shape|5"),
    case("stalwart.models.FunctionModel", lambda e: models.FunctionModel(123), ModelError, r"callable"),
    case("stalwart.models.FunctionModel", lambda e: models.FunctionModel(len, task="nope"), ConfigError,
         r"task"),
    case("stalwart.models.FunctionModel", lambda e: models.FunctionModel(len, output="nope"), ConfigError,
         r"output"),
    case("stalwart.models.FunctionModel", lambda e: models.FunctionModel(lambda a: "x").predict_proba(e.x),
         ModelError, r"return"),

    # stalwart.scan
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, seed=-1), ConfigError, r"seed.*non-negative"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, seed=1.5), ConfigError, r"seed.*integer"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, seed="a"), ConfigError, r"seed.*integer"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, seed=True), ConfigError, r"seed.*integer"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, 123), InputError, r"Dataset\.from_arrays"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, suite="nope"), ConfigError, r"quick"),
    case("stalwart.scan", lambda e: stalwart.scan(e.dir / "nope.skops", e.ds, executor="dask"), ConfigError,
         r"executor must be one of local, process, ray; got 'dask'"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, stalwart.Dataset.from_arrays(e.x)), InputError,
         r"no labels.*target"),
    case("stalwart.scan", lambda e: stalwart.scan(123, e.ds), ModelError, r"cannot wrap"),
    case("stalwart.scan", lambda e: stalwart.scan(e.dir / "nope.skops", e.ds), InputError, r"does not exist"),
    case("stalwart.scan", lambda e: stalwart.scan(e.lr, e.ds, progress=5), ConfigError, r"progress.*callable"),

    # stalwart.Dataset / Schema / Column / loaders
    case(("stalwart.Dataset", "stalwart.data.Dataset"), lambda e: stalwart.Dataset.from_arrays(e.x, e.y[:3]),
         InputError, r"40 inputs but 3 labels"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.x[:, 0], e.y), InputError,
         r"modality.*(shape|x\.reshape)"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays([[1.0, 2.0], [3.0]], [0, 1]), InputError,
         r"ragged|same length|rows of different lengths"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(np.array([[1, {}], [2, None]], dtype=object),
                                                                     [0, 1]), InputError, r"object|column"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(np.zeros((0, 3))), InputError, r"empty"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.x, e.y[:, None]), InputError,
         r"one-dimensional"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.x, modality="audio"), ConfigError,
         r"modality.*tabular"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.nhwc, e.iy), InputError,
         r"transpose\(0, 3, 1, 2\)"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.imgs, e.iy, value_range=(1, 0)), ConfigError,
         r"value_range"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(np.full((2, 3, 4, 4), np.nan), [0, 1]),
         InputError, r"NaN"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays([1, 2, 3], modality="text"), InputError,
         r"strings"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays("hello world", modality="text"), InputError,
         r"list of strings"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.df, kinds={"a": "nope"}), ConfigError,
         r"kinds\['a'\] must be one of \['numeric'"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.df, immutable=["zz"]), InputError, r"zz"),
    case("stalwart.Dataset", lambda e: stalwart.Dataset.from_arrays(e.df, bounds={"a": (1, 0)}), ConfigError,
         r"bounds|lower"),
    case("stalwart.Dataset", lambda e: e.ds.sample(0), ConfigError, r"n=.*>= 1"),
    case("stalwart.Dataset", lambda e: e.ds.subset([100]), InputError, r"index|range|40"),
    case("stalwart.Dataset", lambda e: e.ds.subset("a"), InputError, r"index"),
    case("stalwart.Dataset", lambda e: e.ds.select_columns(["zz"]), InputError, r"zz.*pick from its columns"),
    case("stalwart.Dataset", lambda e: e.ds.with_x(e.x[:3]), InputError, r"3 inputs but 40 labels"),
    case("stalwart.Dataset", lambda e: e.ds.sample(5, seed="a"), ConfigError, r"seed"),
    case(("stalwart.Schema", "stalwart.data.Schema"), lambda e: stalwart.Schema("audio"), ConfigError,
         r"modality"),
    case("stalwart.Schema", lambda e: e.ds.schema.column("zz"), InputError, r"zz"),
    case("stalwart.Schema", lambda e: stalwart.Schema.infer(e.df, kinds={"zz": "numeric"}), InputError, r"zz"),
    case("stalwart.Schema", lambda e: e.ds.schema.with_immutable(["zz"]), InputError, r"zz"),
    case("stalwart.data.Column", lambda e: data.Column("a", "nope"), ConfigError, r"kind.*numeric"),
    case("stalwart.data.Column", lambda e: data.Column("a", "numeric", lower=1.0, upper=0.0), ConfigError,
         r"lower|upper"),
    case(("stalwart.load_data", "stalwart.data.load_data"), lambda e: stalwart.load_data(123), InputError,
         r"path"),
    case("stalwart.load_data", lambda e: stalwart.load_data(e.dir / "nope.csv"), InputError, r"does not exist"),
    case("stalwart.load_data", lambda e: stalwart.load_data(e.dir / "model.txt"), InputError,
         r"\.csv.*\.parquet"),
    case("stalwart.load_data", lambda e: stalwart.load_data(e.dir / "data.csv", target="zz"), InputError,
         r"zz.*label"),
    case("stalwart.data.load_csv", lambda e: data.load_csv(e.dir / "data.csv", modality="audio"), ConfigError,
         r"modality"),
    case("stalwart.data.load_csv", lambda e: data.load_csv(e.dir / "garbage.npz"), InputError, r"CSV|column"),
    case("stalwart.data.load_csv", lambda e: data.load_csv(e.dir / "data.csv", target="label", kinds={"a": "x"}),
         ConfigError, r"kind"),
    case("stalwart.data.load_parquet", lambda e: data.load_parquet(e.dir / "garbage.parquet"), InputError,
         r"Parquet"),
    case("stalwart.data.load_parquet", lambda e: data.load_parquet(e.dir / "ref.parquet", target="zz"),
         InputError, r"zz"),
    case("stalwart.data.load_npz", lambda e: data.load_npz(e.dir / "garbage.npz"), InputError, r"npz"),
    case("stalwart.data.load_npz", lambda e: data.load_npz(e.dir / "nope.npz"), InputError, r"does not exist"),

    # stalwart.datasets
    case(("stalwart.datasets.load", "stalwart.datasets.names"), lambda e: datasets.load("nope"), ConfigError,
         r"unknown dataset 'nope'.*breast_cancer"),
    case("stalwart.datasets.load", lambda e: datasets.load(123), ConfigError, r"unknown dataset"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", split="nope"), ConfigError,
         r"split.*one of"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", seed=-1), ConfigError,
         r"seed.*non-negative"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", seed="a"), ConfigError, r"seed"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", test_size=0), ConfigError, r"test_size"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", test_size=float("nan")), ConfigError,
         r"test_size"),
    case("stalwart.datasets.load", lambda e: datasets.load("wine", test_size=0.001), ConfigError,
         r"test_size.*every class"),
    case("stalwart.datasets.load_split", lambda e: datasets.load_split("nope"), ConfigError, r"unknown dataset"),
    case("stalwart.datasets.load_split", lambda e: datasets.load_split("wine", seed=-1), ConfigError,
         r"seed"),
    case("stalwart.datasets.make_sentiment", lambda e: datasets.make_sentiment(0), ConfigError, r"n=.*integer between 2"),
    case(("stalwart.datasets.make_planted_slices", "stalwart.datasets.PlantedSlices"),
         lambda e: datasets.make_planted_slices(50), ConfigError, r"n=.*>= 100"),
    case("stalwart.datasets.make_planted_slices", lambda e: datasets.make_planted_slices(1000, n_slices=6),
         ConfigError, r"n_slices"),
    case("stalwart.datasets.make_sentiment", lambda e: datasets.make_sentiment(10, seed="a"), ConfigError,
         r"seed"),

    # stalwart.suite / Suite
    case(("stalwart.Suite", "stalwart.suite.Suite"), lambda e: stalwart.Suite([1]), ConfigError,
         r"checks.*list of Check"),
    case("stalwart.Suite", lambda e: stalwart.Suite([], name=""), ConfigError, r"name"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(e.dir / "suite_bad.yaml"), ConfigError,
         r"mapping with a 'check' name"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(e.dir / "suite_unknown.yaml"), ConfigError,
         r"unknown check 'nope'"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(e.dir / "suite_syntax.yaml"), ConfigError,
         r"YAML"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(e.dir / "suite_scalar.yaml"), ConfigError,
         r"mapping|checks"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(e.dir / "nope.yaml"), ConfigError, r"cannot read"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_yaml(123), ConfigError, r"YAML"),
    case("stalwart.Suite", lambda e: stalwart.Suite.preset("nope", "tabular"), ConfigError, r"presets are"),
    case("stalwart.Suite", lambda e: stalwart.Suite.preset("quick", "audio"), ConfigError, r"modality"),
    case("stalwart.Suite", lambda e: stalwart.Suite.from_dict({"checks": "x"}), ConfigError, r"checks"),
    case("stalwart.Suite", lambda e: stalwart.Suite([]).run(e.lr, e.x), InputError, r"Dataset"),
    case("stalwart.Suite", lambda e: stalwart.Suite([]).run(e.lr, e.ds, seed=-3), ConfigError, r"seed"),
    case(("stalwart.suite.resolve", "stalwart.suite.PRESETS"), lambda e: suite.resolve("nope", "tabular"),
         ConfigError, r"quick.*standard.*thorough"),
    case("stalwart.suite.resolve", lambda e: suite.resolve("quick", "audio"), ConfigError, r"modality"),
    case("stalwart.suite.resolve", lambda e: suite.resolve(123, "tabular"), ConfigError, r"suite must be"),

    # stalwart.report
    case(("stalwart.Report", "stalwart.report.Report"), lambda e: stalwart.Report.load(e.dir / "report.json"),
         InputError, r"not valid JSON.*report\.json written by stalwart"),
    case("stalwart.Report", lambda e: stalwart.Report.load(e.dir / "nope.json"), InputError,
         r"nope\.json.*(check the path|does not exist)"),
    case("stalwart.Report", lambda e: stalwart.Report.load(e.dir / "list.json"), InputError,
         r"not a stalwart report.*report\.json"),
    case(("stalwart.Report", "stalwart.report.SCHEMA_VERSION"),
         lambda e: stalwart.Report.load(e.dir / "future.json"), InputError, r"schema_version.*99"),
    case("stalwart.Report", lambda e: stalwart.Report.from_dict({}), InputError, r"not a stalwart report.*pass"),
    case("stalwart.Report", lambda e: stalwart.Report.load(123), InputError, r"path.*str or pathlib\.Path"),
    case("stalwart.report.render_html", lambda e: report.render_html({}), InputError, r"report"),
    case("stalwart.report.render_html", lambda e: report.render_html("x"), InputError, r"report"),
    case("stalwart.report.render_markdown", lambda e: report.render_markdown({}), InputError, r"report"),
    case("stalwart.report.render_junit", lambda e: report.render_junit({}), InputError, r"report"),
    case("stalwart.report.compliance_map", lambda e: report.compliance_map(123), InputError, r"results"),
    case("stalwart.report.json_safe", lambda e: report.json_safe({"x": object()}), InputError, r"JSON"),
    case("stalwart.report.headline", lambda e: report.headline("x"), InputError, r"result"),
    case("stalwart.report.verdict", lambda e: report.verdict(123), InputError, r"result"),
    case("stalwart.report.register_headline", lambda e: report.register_headline(123), ConfigError, r"check"),
    case("stalwart.report.report_advice", lambda e: report.report_advice("x"), InputError, r"report"),
    case("stalwart.report.register_advice", lambda e: report.register_advice(None), ConfigError, r"check"),
    case("stalwart.report.Advice", lambda e: report.Advice(123), ConfigError, r"text"),

    # stalwart.attacks: the threat model
    case("stalwart.attacks.ThreatModel", lambda e: T("l3"), ConfigError, r"norm.*one of \['linf'"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", -1.0), ConfigError, r"eps.*>= 0"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", float("nan")), ConfigError, r"eps.*finite"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", "a"), ConfigError, r"eps.*number"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (1.0, 0.0)), ConfigError, r"lower <= upper"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (0.0,)), ConfigError, r"pair"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, ("a", "b")), ConfigError, r"numbers"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (np.zeros(3), np.ones(4))), ConfigError,
         r"bounds.*shape \(3,\).*shape \(4,\)"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (0.0, float("nan"))), ConfigError,
         r"bounds.*NaN"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (0.0, 1.0), [1, 0]), ConfigError,
         r"mutable.*boolean"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, (np.zeros(3), np.ones(3)),
                                                     np.array([True, False])), ConfigError,
         r"mutable.*2.*bounds.*3|3.*2"),
    case("stalwart.attacks.ThreatModel", lambda e: T("linf", 0.1, unit="nope"), ConfigError, r"unit.*one of"),
    case("stalwart.attacks.ThreatModel", lambda e: T("l0", 1.5), ConfigError, r"eps.*whole number|integer"),
    case("stalwart.attacks.ThreatModel", lambda e: attacks.PGD(T("linf", 0.1, None, unit="range"), steps=2).run(
        e.m_lr, e.x, e.y), ConfigError, r"unit='range'.*bounds=\(lower, upper\)"),
    case("stalwart.attacks.ThreatModel", lambda e: T.from_schema("nope"), ConfigError, r"schema.*Schema"),
    case("stalwart.attacks.ThreatModel", lambda e: T.from_schema(stalwart.Schema("text")), ConfigError,
         r"text"),
    # per-feature bounds of the wrong length: refused at run, naming the expected length
    case(("stalwart.attacks.ThreatModel", "stalwart.attacks.PGD"),
         lambda e: attacks.PGD(T("linf", 0.1, (np.zeros(3), np.ones(3))), steps=2).run(e.m_lr, e.x, e.y),
         ConfigError, r"bounds.*3.*4 features"),
    case(("stalwart.attacks.ThreatModel", "stalwart.attacks.Square"),
         lambda e: attacks.Square(T("linf", 0.1, (np.zeros(3), np.ones(3))), queries=5).run(e.m_lr, e.x, e.y),
         ConfigError, r"bounds.*3.*4 features"),
    case(("stalwart.attacks.ThreatModel", "stalwart.attacks.FGSM"),
         lambda e: attacks.FGSM(T("linf", 0.1, (0.0, 1.0), np.ones(3, bool))).run(e.m_lr, e.x, e.y),
         ConfigError, r"mutable.*3.*4 features"),
    case(("stalwart.attacks.ThreatModel", "stalwart.attacks.evaluate"),
         lambda e: attacks.evaluate(e.m_lr, e.x, e.y, T("linf", 0.1, (np.zeros(3), np.ones(3))), level="fast"),
         ConfigError, r"bounds.*3.*4 features"),
    case(("stalwart.attacks.ThreatModel", "stalwart.attacks.PGD"),
         lambda e: attacks.PGD(T("linf", 0.1, (np.zeros(3), np.ones(3)), unit="range"), steps=2).run(e.m_lr, e.x,
                                                                                                       e.y),
         ConfigError, r"bounds.*3.*4 features"),

    # attacks: registry and construction
    case(("stalwart.attacks.get", "stalwart.attacks.ATTACKS"), lambda e: attacks.get("nope", e.threat), ConfigError,
         r"unknown attack 'nope'; known: .*pgd"),
    case("stalwart.attacks.get", lambda e: attacks.get("pgd", "linf"), ConfigError, r"threat.*ThreatModel"),
    case("stalwart.attacks.get", lambda e: attacks.get("pgd", e.threat, bogus=1), ConfigError,
         r"bogus.*steps"),
    case("stalwart.attacks.register", lambda e: attacks.register(type("NoName", (), {})), ConfigError,
         r"class attribute 'name'"),
    case("stalwart.attacks.register", lambda e: attacks.register(type("Dup", (attacks.PGD,), {"name": "pgd"})),
         ConfigError, r"already registered"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD("linf"), ConfigError, r"threat.*ThreatModel"),
    case("stalwart.attacks.FGSM", lambda e: attacks.FGSM(e.threat, loss="nope"), ConfigError, r"loss.*one of"),
    case("stalwart.attacks.PGD", lambda e: attacks.PGD(e.threat, steps=0), ConfigError, r"steps.*> 0"),
    case("stalwart.attacks.PGD", lambda e: attacks.PGD(e.threat, step_size=-1.0), ConfigError, r"step_size"),
    case("stalwart.attacks.PGD", lambda e: attacks.PGD(e.threat, restarts=1.5), ConfigError, r"restarts"),
    case("stalwart.attacks.PGD", lambda e: attacks.PGD(e.threat, seed=-1), ConfigError, r"seed.*non-negative"),
    case("stalwart.attacks.FGSM", lambda e: attacks.FGSM(e.threat, seed="a"), ConfigError, r"seed.*an integer"),
    case("stalwart.attacks.HopSkipJump", lambda e: attacks.HopSkipJump(e.threat, seed=-1), ConfigError,
         r"seed.*non-negative"),
    case("stalwart.attacks.Square", lambda e: attacks.Square(e.threat, seed=1.5), ConfigError, r"seed"),
    case("stalwart.attacks.Attack", lambda e: attacks.Attack.__init__(attacks.PGD(e.threat), e.threat, seed=-1),
         ConfigError, r"seed"),
    case("stalwart.attacks.APGD", lambda e: attacks.APGD(e.threat, loss="nope"), ConfigError, r"loss"),
    case("stalwart.attacks.APGD", lambda e: attacks.APGD(e.threat, rho=2.0), ConfigError, r"rho"),
    case("stalwart.attacks.APGD", lambda e: attacks.APGD(e.threat, targeted_classes=0), ConfigError,
         r"targeted_classes"),
    case("stalwart.attacks.CW", lambda e: attacks.CW(T("linf", 0.1)), ConfigError, r"l2"),
    case("stalwart.attacks.CW", lambda e: attacks.CW(T("l2", 0.5), lr=0), ConfigError, r"lr"),
    case("stalwart.attacks.CW", lambda e: attacks.CW(T("l2", 0.5), confidence=float("nan")), ConfigError,
         r"confidence"),
    case("stalwart.attacks.DeepFool", lambda e: attacks.DeepFool(T("l1", 0.5)), ConfigError, r"norm"),
    case("stalwart.attacks.DeepFool", lambda e: attacks.DeepFool(e.threat, overshoot=-1), ConfigError,
         r"overshoot"),
    case("stalwart.attacks.DeepFool", lambda e: attacks.DeepFool(e.threat, candidates=0), ConfigError,
         r"candidates"),
    case("stalwart.attacks.Square", lambda e: attacks.Square(e.threat, queries=0), ConfigError, r"queries"),
    case("stalwart.attacks.Square", lambda e: attacks.Square(e.threat, p_init=2.0), ConfigError, r"p_init"),
    case("stalwart.attacks.HopSkipJump", lambda e: attacks.HopSkipJump(e.threat, queries=0), ConfigError,
         r"queries"),
    case("stalwart.attacks.HopSkipJump", lambda e: attacks.HopSkipJump(T("l1", 0.5)), ConfigError, r"norm"),
    case("stalwart.attacks.HopSkipJump", lambda e: attacks.HopSkipJump(e.threat, gamma=0), ConfigError, r"gamma"),
    case("stalwart.attacks.TabularSearch", lambda e: attacks.TabularSearch(e.threat, schema=e.ds.schema),
         ConfigError, r"unit='range'.*from_schema"),
    case("stalwart.attacks.TabularSearch", lambda e: attacks.TabularSearch(T.from_schema(e.ds.schema),
                                                                           schema="nope"), ConfigError,
         r"schema.*Schema"),
    case("stalwart.attacks.TabularSearch", lambda e: attacks.TabularSearch(T.from_schema(e.ds.schema),
                                                                           schema=e.ds.schema, queries=0),
         ConfigError, r"queries"),

    # attacks: bad data at run
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x, e.y[:5]), InputError,
         r"x has 40 samples but y has 5"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x, e.y + 5),
         InputError, r"labels the model does not know: \[5, 6\].*Map the labels"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, np.full((2, 4), np.nan),
                                                                                [0, 1]), InputError, r"NaN"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, [], []), InputError,
         r"empty"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, [["a"] * 4], [0]),
         InputError, r"numeric"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x * 5, e.y),
         InputError, r"outside the threat model's bounds"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.black, e.x, e.y), ModelError,
         r"black-box.*Use a black-box attack"),
    case("stalwart.attacks.Attack", lambda e: attacks.Square(e.threat, queries=5).run(e.reg, e.x, e.y),
         ModelError, r"classifiers.*(wrap|use)"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x, e.y, targeted=e.y),
         InputError, r"targeted equals y"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x, e.y,
                                                                                targeted=[0, 1]), InputError,
         r"x has 40 samples but targeted has 2"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_conv, e.nhwc, e.iy),
         InputError, r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.APGD", lambda e: attacks.APGD(e.threat, steps=2).run(e.m_pool, e.nhwc, e.iy),
         InputError, r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.Square", lambda e: attacks.Square(e.threat, queries=5).run(e.m_conv, e.nhwc, e.iy),
         InputError, r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.Attack", lambda e: attacks.PGD(e.threat, steps=2).run(e.m_lr, e.x[:, :3], e.y),
         InputError, r"3 features but the model expects 4"),
    case("stalwart.attacks.APGD", lambda e: attacks.APGD(e.threat, steps=2).run(e.m_lr, e.x, e.y[:3]), InputError,
         r"40 samples but y has 3"),
    case("stalwart.attacks.CW", lambda e: attacks.CW(T("l2", 0.5), steps=2, binary_steps=1).run(e.m_lr, e.x,
                                                                                                e.y + 5),
         InputError, r"labels the model does not know"),
    case("stalwart.attacks.DeepFool", lambda e: attacks.DeepFool(e.threat, steps=2).run(e.black, e.x, e.y),
         ModelError, r"black-box"),
    case("stalwart.attacks.HopSkipJump", lambda e: attacks.HopSkipJump(e.threat, queries=10).run(
        e.m_conv, e.nhwc, e.iy), InputError, r"transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.TabularSearch", lambda e: attacks.TabularSearch(
        T.from_schema(e.ds.schema), schema=e.ds.schema, queries=5).run(e.m_lr, e.x[:, :3], e.y),
         InputError, r"3 columns but the schema describes 4"),
    case("stalwart.attacks.AttackResult", lambda e: attacks.FGSM(e.threat).run(e.m_lr, e.x, ["a"] * 40), InputError,
         r"labels the model does not know"),

    # attacks.evaluate and friends
    case(("stalwart.attacks.evaluate", "stalwart.attacks.EvaluationResult", "stalwart.attacks.SanityCheck"),
         lambda e: attacks.evaluate(e.m_lr, e.x, e.y, e.threat, level="quick"), ConfigError,
         r"level.*one of \['fast', 'standard'\]"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y, "linf"), ConfigError,
         r"threat.*ThreatModel"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_conv, e.nhwc, e.iy, e.threat, level="fast"),
         InputError, r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_pool, e.nhwc, e.iy, e.threat, level="fast"),
         InputError, r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y[:3], e.threat), InputError,
         r"40 samples but y has 3"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y, T("linf", 5.0)), ConfigError,
         r"whole input range.*pick an eps"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x[:4], e.y[:4], e.threat, level="fast", eps_curve=[-1]),
         ConfigError, r"eps_curve"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y, e.threat, seed=-1),
         ConfigError, r"seed.*non-negative"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y, e.threat, shard_size=0),
         ConfigError, r"shard_size must be an integer >= 1"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.m_lr, e.x, e.y, e.threat, executor="dask"),
         ConfigError, r"executor must be one of local, process, ray; got 'dask'"),
    case("stalwart.attacks.evaluate", lambda e: attacks.evaluate(e.black, e.x, e.y, e.threat, level="fast",
                                                                 executor="process", shard_size=10),
         ModelError, r"cannot be pickled.*module level.*executor='local'"),
    case("stalwart.attacks.run_sharded", lambda e: attacks.run_sharded("pgd", e.m_lr, e.x, e.y), ConfigError,
         r"run_sharded\(attack=...\) must be a numeric Attack"),
    case("stalwart.attacks.run_sharded", lambda e: attacks.run_sharded(attacks.FGSM(e.threat), e.m_lr, e.x, e.y[:3]),
         InputError, r"x has \d+ samples but y has 3"),
    case("stalwart.attacks.run_sharded", lambda e: attacks.run_sharded(attacks.FGSM(e.threat), e.m_lr, e.x, e.y,
                                                                       shard_size=0),
         ConfigError, r"shard_size must be an integer >= 1"),
    case("stalwart.attacks.run_sharded", lambda e: attacks.run_sharded(attacks.Square(e.threat), e.black, e.x, e.y,
                                                                       executor="process", shard_size=10),
         ModelError, r"cannot be pickled.*module level.*executor='local'"),
    # stalwart.execute
    case("stalwart.execute.get_executor", lambda e: execute.get_executor("spark"), ConfigError,
         r"one of local, process, ray"),
    case("stalwart.execute.get_executor", lambda e: execute.get_executor("process", threads=2), ConfigError,
         r"takes workers, retries, context; got threads"),
    case(("stalwart.execute.resolve_executor", "stalwart.execute.Executor"),
         lambda e: execute.resolve_executor(3), ConfigError, r"executor must be .*an Executor; got 3"),
    case("stalwart.execute.use_executor", lambda e: execute.use_executor("nope").__enter__(), ConfigError,
         r"one of local, process, ray"),
    case("stalwart.execute.LocalExecutor", lambda e: execute.LocalExecutor(retries=-1), ConfigError,
         r"retries=...\) must be an integer >= 0"),
    case("stalwart.execute.ProcessExecutor", lambda e: execute.ProcessExecutor(workers=0), ConfigError,
         r"workers=...\) must be an integer >= 1"),
    case("stalwart.execute.ProcessExecutor", lambda e: execute.ProcessExecutor(context="fork"), ConfigError,
         r"'spawn' or 'forkserver'"),
    case("stalwart.execute.ProcessExecutor", lambda e: execute.ProcessExecutor().map(abs, [1], shared=e.black),
         ModelError, r"cannot be pickled"),
    case("stalwart.execute.RayExecutor", lambda e: execute.RayExecutor(address=6379), ConfigError,
         r"address=...\) must be None, 'auto' or 'ray://host:port'"),
    case("stalwart.execute.RayExecutor", lambda e: execute.RayExecutor(num_cpus=0), ConfigError,
         r"num_cpus=...\) must be an integer >= 1"),
    case("stalwart.execute.shard_slices", lambda e: execute.shard_slices(10, 0), ConfigError,
         r"shard_size must be an integer >= 1"),
    case("stalwart.execute.shard_slices", lambda e: execute.shard_slices(-1, 5), ConfigError, r"n=...\) must be"),
    case("stalwart.execute.shard_seeds", lambda e: execute.shard_seeds(-3, 2), ConfigError, r"seed.*non-negative"),
    case("stalwart.execute.shard_seeds", lambda e: execute.shard_seeds(3, 0), ConfigError,
         r"n_shards=...\) must be an integer >= 1"),
    case("stalwart.attacks.check_eps_scale", lambda e: attacks.check_eps_scale(T("linf", 5.0), e.x), ConfigError,
         r"whole input range"),
    case("stalwart.attacks.check_eps_scale", lambda e: attacks.check_eps_scale(T("linf", 1e-6), e.x), ConfigError,
         r"Rescale eps"),
    case("stalwart.attacks.check_eps_scale", lambda e: attacks.check_eps_scale("x", e.x), ConfigError,
         r"threat.*ThreatModel"),
    case(("stalwart.attacks.minimal_perturbation", "stalwart.attacks.MinimalPerturbation"),
         lambda e: attacks.minimal_perturbation(e.m_lr, e.x, e.y, norm="l3"), ConfigError, r"norm"),
    case("stalwart.attacks.minimal_perturbation", lambda e: attacks.minimal_perturbation(e.m_lr, e.x, e.y[:2]),
         InputError, r"40 samples but y has 2"),
    case("stalwart.attacks.minimal_perturbation", lambda e: attacks.minimal_perturbation(e.m_lr, e.x, e.y,
                                                                                        bounds=(1, 0)),
         ConfigError, r"bounds"),
    case("stalwart.attacks.norm_of", lambda e: attacks.norm_of(torch.zeros(2, 3), "l3"), ConfigError,
         r"norm.*one of"),
    case("stalwart.attacks.project_ball", lambda e: attacks.project_ball(torch.zeros(2, 3), "l3", 0.1), ConfigError,
         r"norm.*one of"),

    # attacks on text
    case(("stalwart.attacks.WordSubstitution", "stalwart.attacks.TextAttackResult"),
         lambda e: attacks.WordSubstitution(synonyms=e.lexicon).run(e.text_clf, "a good film", [1]), InputError,
         r"list of strings"),
    case("stalwart.attacks.WordSubstitution", lambda e: attacks.WordSubstitution(synonyms=e.lexicon).run(
        e.text_clf, e.texts, e.ty[:2]), InputError, r"20 .*2|2 .*20"),
    case("stalwart.attacks.WordSubstitution", lambda e: attacks.WordSubstitution(synonyms=e.lexicon).run(
        e.text_clf, e.texts, e.ty + 7), InputError, r"labels the model does not know"),
    case("stalwart.attacks.WordSubstitution", lambda e: attacks.WordSubstitution(synonyms=e.lexicon).run(
        e.text_clf, [1, 2], [0, 1]), InputError, r"strings"),
    case("stalwart.attacks.WordSubstitution", lambda e: attacks.WordSubstitution(synonyms=e.lexicon,
                                                                                 max_change=0), ConfigError,
         r"max_change.*\(0, 1\]"),
    case(("stalwart.attacks.WordSubstitution", "stalwart.attacks.SynonymSource"),
         lambda e: attacks.WordSubstitution(synonyms=object()), ConfigError, r"synonyms.*SynonymSource"),
    case("stalwart.attacks.WordSubstitution", lambda e: attacks.WordSubstitution(synonyms=e.lexicon,
                                                                                 importance="nope"),
         ConfigError, r"importance"),
    case("stalwart.attacks.names", lambda e: attacks.get("word_substitutio", max_change=0.2), ConfigError,
         r"unknown attack 'word_substitutio'.*Did you mean 'word_substitution'"),
    case("stalwart.attacks.LexiconSynonyms", lambda e: attacks.LexiconSynonyms(e.dir / "nope.tsv"), InputError,
         r"nope\.tsv"),
    case("stalwart.attacks.LexiconSynonyms", lambda e: attacks.LexiconSynonyms(e.dir / "garbage.npz"), InputError,
         r"garbage\.npz"),
    case("stalwart.attacks.LexiconSynonyms", lambda e: e.lexicon.synonyms(123), ConfigError, r"word.*str"),
    case("stalwart.attacks.WordNetSynonyms", lambda e: attacks.WordNetSynonyms(e.dir / "nope"), (InputError,
                                                                                               MissingDependencyError),
         r"nope.*WordNet|wordnet"),
    case("stalwart.attacks.WordNetSynonyms", lambda e: attacks.WordNetSynonyms(senses=0), ConfigError, r"senses"),
    case("stalwart.attacks.default_synonyms", lambda e: attacks.default_synonyms(roots=123), ConfigError,
         r"roots"),

    # stalwart.perturb
    case(("stalwart.perturb.get", "stalwart.perturb.PERTURBATIONS"), lambda e: perturb.get("nope"), ConfigError,
         r"unknown perturbation 'nope'; known: .*gaussian_noise"),
    case("stalwart.perturb.get", lambda e: perturb.get("gaussian_noise", bogus=1), ConfigError,
         r"'gaussian_noise' got unknown parameter\(s\) \['bogus'\]; it takes none: call get\('gaussian_noise'\) alone"),
    case("stalwart.perturb.get", lambda e: perturb.get("feature_noise", scale=2), ConfigError,
         r"unknown parameter\(s\) \['scale'\]; pass only these parameters: \['fraction'\]"),
    case("stalwart.perturb.get", lambda e: perturb.get(123), ConfigError, r"name.*perturbation name.*Known"),
    case("stalwart.perturb.names", lambda e: perturb.names("audio"), ConfigError, r"modality.*tabular"),
    case("stalwart.perturb.nested_rng", lambda e: perturb.nested_rng(-1, "fog"), ConfigError,
         r"nested_rng\(seed=...\) must be a non-negative integer"),
    case("stalwart.perturb.register", lambda e: perturb.register(type("NoName", (), {})), ConfigError,
         r"class attribute 'name'"),
    case(("stalwart.perturb.Perturbation", "stalwart.perturb.SEVERITIES"),
         lambda e: perturb.get("gaussian_noise").apply(e.imgs, 0), ConfigError, r"severity.*1\.\.5"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("gaussian_noise").apply(e.imgs, 2.5), ConfigError,
         r"severity"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("gaussian_noise").apply(e.imgs, True), ConfigError,
         r"severity"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("gaussian_noise").apply(e.imgs, 3, rng="a"),
         ConfigError, r"rng.*seed.*Generator"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("gaussian_noise").apply(e.imgs, 3, rng=-1),
         ConfigError, r"rng.*non-negative"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(e.x, 3, rng=1.5),
         ConfigError, r"rng"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos").apply(["hi"], 3, rng=[1, "a"]),
         ConfigError, r"rng"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply(
        np.random.default_rng(0).random((2, 32, 32, 3)), 3), InputError,
         r"N x H x W x C.*transpose\(0, 3, 1, 2\)"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("gaussian_noise").apply(torch.as_tensor(e.nhwc), 3),
         InputError, r"transpose|permute"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply(e.imgs[0], 3), InputError,
         r"N x C x H x W.*x\[None\]|N x C x H x W"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply(np.full((1, 3, 8, 8), np.nan), 3),
         InputError, r"NaN"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply(np.zeros((0, 3, 8, 8)), 3),
         InputError, r"empty"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply([["a"]], 3), InputError,
         r"numeric images"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("fog").apply(e.imgs, 3, schema=e.ds.schema),
         InputError, r"schema is for tabular"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos").apply("hello world", 3),
         InputError, r"list of strings"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos").apply([], 3), InputError,
         r"empty"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos").apply([1, 2], 3), InputError,
         r"strings"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos").apply(123, 3), InputError,
         r"list of strings"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("synonym_swap").apply(b"bytes", 3), InputError,
         r"list of strings"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(e.df.iloc[:0], 3),
         InputError, r"empty"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(e.x[:, 0], 3), InputError,
         r"2-D"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply("abc", 3), InputError,
         r"2-D"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(e.imgs, 3), InputError,
         r"2-D|table|image"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(
        e.df[["a", "b"]], 3, schema=e.ds.schema), InputError, r"columns \['c', 'd'\]"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(
        e.df, 3, schema=stalwart.Schema("text")), InputError, r"tabular perturbation"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise").apply(
        e.df, 3, schema="x"), ConfigError, r"schema.*Schema"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise", fraction=0), ConfigError,
         r"fraction"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("feature_noise", fraction=float("nan")),
         ConfigError, r"fraction"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("keyboard_typos", min_length=0), ConfigError,
         r"min_length"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("outliers", n_columns=-2), ConfigError,
         r"n_columns"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("occlusion", fill="nope"), ConfigError, r"fill"),
    case("stalwart.perturb.Perturbation", lambda e: perturb.get("synonym_swap", synonyms=5), ConfigError,
         r"synonyms"),

    # stalwart.shift
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(pd.DataFrame({"a": [1.0, 2.0] * 10}),
                                                                     pd.DataFrame({"b": [1.0, 2.0] * 10})),
         InputError, r"current lacks columns \['a'\]"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(pd.DataFrame({"a": []}),
                                                                     pd.DataFrame({"a": []})),
         InputError, r"empty.*at least one row"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(e.df, e.df.iloc[:0]), InputError, r"empty"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(e.df, e.df, method="nope"), ConfigError,
         r"method"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(e.df, e.df, alpha=2), ConfigError, r"alpha"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(e.df, e.df, columns=["zz"]), InputError,
         r"zz"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(123, e.df), InputError, r"2-D"),
    case("stalwart.shift.detect_drift", lambda e: shift.detect_drift(e.df, e.x[:, :2]), InputError,
         r"column"),
    case("stalwart.shift.detect_drift_parquet", lambda e: shift.detect_drift_parquet(e.dir / "nope.parquet",
                                                                                     e.dir / "ref.parquet"),
         InputError, r"does not exist|nope\.parquet"),
    case("stalwart.shift.detect_drift_parquet", lambda e: shift.detect_drift_parquet(e.dir / "garbage.parquet",
                                                                                     e.dir / "ref.parquet"),
         InputError, r"garbage\.parquet"),
    case("stalwart.shift.detect_drift_partitioned", lambda e: shift.detect_drift_partitioned(e.dir / "nope",
                                                                                             e.dir / "ref.parquet"),
         InputError, r"does not exist.*directory of Parquet files"),
    case("stalwart.shift.detect_drift_partitioned", lambda e: shift.detect_drift_partitioned(
        e.dir / "ref.parquet", e.dir / "ref.parquet", method="anderson"), ConfigError, r"anderson.*not available"),
    case("stalwart.shift.compare_labels_partitioned", lambda e: shift.compare_labels_partitioned(
        e.dir / "ref.parquet", e.dir / "ref.parquet", "zz"), InputError, r"target column 'zz' is not in the reference"),
    case("stalwart.shift.compare_labels_partitioned", lambda e: shift.compare_labels_partitioned(
        e.dir / "ref.parquet", e.dir / "ref.parquet", "a", bits=-1), ConfigError, r"bits"),
    case(("stalwart.shift.TabularDrift", "stalwart.shift.DriftDetector", "stalwart.shift.DriftResult",
          "stalwart.shift.FeatureDrift"), lambda e: shift.TabularDrift().test(e.df), ConfigError, r"fit"),
    case("stalwart.shift.TabularDrift", lambda e: shift.TabularDrift(alpha=0), ConfigError, r"alpha"),
    case("stalwart.shift.TabularDrift", lambda e: shift.TabularDrift(n_bins=1), ConfigError, r"n_bins"),
    case("stalwart.shift.MMDDrift", lambda e: shift.MMDDrift(n_permutations=0), ConfigError, r"n_permutations"),
    case("stalwart.shift.MMDDrift", lambda e: shift.MMDDrift().fit(e.x).test(e.x[:, :2]), InputError,
         r"2.*4|4.*2"),
    case("stalwart.shift.ClassifierDrift", lambda e: shift.ClassifierDrift(model="nope"), ConfigError, r"model"),
    case("stalwart.shift.ClassifierDrift", lambda e: shift.ClassifierDrift(n_folds=1), ConfigError, r"n_folds"),
    case("stalwart.shift.PCAReconstructionDrift", lambda e: shift.PCAReconstructionDrift(variance=2),
         ConfigError, r"variance"),
    case("stalwart.shift.PCAReconstructionDrift", lambda e: shift.PCAReconstructionDrift().test(e.x), ConfigError,
         r"fit"),
    case(("stalwart.shift.ADWIN", "stalwart.shift.StreamDetector"), lambda e: shift.ADWIN(delta=2), ConfigError,
         r"delta"),
    case("stalwart.shift.ADWIN", lambda e: shift.ADWIN().update("a"), InputError, r"value.*number"),
    case("stalwart.shift.ADWIN", lambda e: shift.ADWIN().update(float("nan")), InputError, r"NaN|finite"),
    case("stalwart.shift.ADWIN", lambda e: shift.ADWIN().run([[1.0, 2.0], [3.0, 4.0]]), InputError,
         r"one-dimensional|1-D"),
    case("stalwart.shift.DDM", lambda e: shift.DDM(warning_level=3.0, drift_level=2.0), ConfigError,
         r"warning_level|drift_level"),
    case("stalwart.shift.DDM", lambda e: shift.DDM().update(0.5), InputError, r"0 or 1|error"),
    case("stalwart.shift.KSWIN", lambda e: shift.KSWIN(window_size=10, stat_size=30), ConfigError,
         r"stat_size|window_size"),
    case("stalwart.shift.KSWIN", lambda e: shift.KSWIN(alpha=2), ConfigError, r"alpha"),
    case("stalwart.shift.PageHinkley", lambda e: shift.PageHinkley(direction="nope"), ConfigError, r"direction"),
    case("stalwart.shift.PageHinkley", lambda e: shift.PageHinkley(threshold=-1), ConfigError, r"threshold"),
    case(("stalwart.shift.MaxSoftmax", "stalwart.shift.OODDetector"), lambda e: shift.MaxSoftmax(123), ModelError,
         r"cannot wrap"),
    case("stalwart.shift.MaxSoftmax", lambda e: shift.MaxSoftmax(e.m_lr).score(e.x[:, :2]), InputError,
         r"2|4"),
    case("stalwart.shift.MaxSoftmax", lambda e: shift.MaxSoftmax(e.reg), ModelError, r"classifier"),
    case("stalwart.shift.MaxLogit", lambda e: shift.MaxLogit(e.m_lr).score(np.full((2, 4), np.nan)), InputError,
         r"NaN"),
    case("stalwart.shift.Energy", lambda e: shift.Energy(e.m_net, temperature=0), ConfigError, r"temperature"),
    case("stalwart.shift.Mahalanobis", lambda e: shift.Mahalanobis(reg=-1), ConfigError, r"reg"),
    case("stalwart.shift.Mahalanobis", lambda e: shift.Mahalanobis().score(e.x), ConfigError, r"fit"),
    case("stalwart.shift.Mahalanobis", lambda e: shift.Mahalanobis().fit(e.x, e.y[:3]), InputError, r"40.*3|3.*40"),
    case("stalwart.shift.KNNDistance", lambda e: shift.KNNDistance(k=0), ConfigError, r"k=.*> 0"),
    case("stalwart.shift.KNNDistance", lambda e: shift.KNNDistance(normalize="nope"), ConfigError, r"normalize"),
    case("stalwart.shift.KNNDistance", lambda e: shift.KNNDistance(k=100).fit(e.x), InputError, r"k|100|40"),
    case("stalwart.shift.KNNDistance", lambda e: shift.KNNDistance(model=e.m_net, layer="nope").fit(e.x),
         (ConfigError, InputError), r"layer.*nope"),
    case("stalwart.shift.IsolationForestOOD", lambda e: shift.IsolationForestOOD(n_estimators=0), ConfigError,
         r"n_estimators"),
    case("stalwart.shift.IsolationForestOOD", lambda e: shift.IsolationForestOOD().fit([]), InputError, r"empty"),
    case("stalwart.shift.evaluate_ood", lambda e: shift.evaluate_ood("x", e.x, e.x), InputError,
         r"detector.*OODDetector"),
    case("stalwart.shift.evaluate_ood", lambda e: shift.evaluate_ood(shift.IsolationForestOOD().fit(e.x), e.x,
                                                                     e.x[:, :2]), InputError, r"2|4"),
    case("stalwart.shift.make_ood", lambda e: shift.make_ood(e.x, kind="nope"), ConfigError, r"kind"),
    case("stalwart.shift.make_ood", lambda e: shift.make_ood(e.x, n=0), ConfigError, r"n="),
    case("stalwart.shift.make_ood", lambda e: shift.make_ood(e.x, kind="held_out_class"), (ConfigError, InputError),
         r"y"),
    case("stalwart.shift.ood_metrics", lambda e: shift.ood_metrics([], [1.0]), InputError, r"empty"),
    case("stalwart.shift.ood_metrics", lambda e: shift.ood_metrics([1.0, np.nan], [1.0]), InputError, r"NaN"),
    case("stalwart.shift.ood_metrics", lambda e: shift.ood_metrics([1.0], [2.0], tpr=2), ConfigError, r"tpr"),
    case("stalwart.shift.ConfidenceEstimator", lambda e: shift.ConfidenceEstimator(e.m_lr, calibration="nope"),
         ConfigError, r"calibration"),
    case("stalwart.shift.ConfidenceEstimator", lambda e: shift.ConfidenceEstimator(e.m_lr).estimate(e.x),
         ConfigError, r"fit"),
    case("stalwart.shift.ConfidenceEstimator", lambda e: shift.ConfidenceEstimator(e.m_lr).fit(e.x, e.y[:3]),
         InputError, r"40.*3|3.*40"),
    case("stalwart.shift.ImportanceWeightedEstimator", lambda e: shift.ImportanceWeightedEstimator(e.m_lr, clip=0),
         ConfigError, r"clip"),
    case("stalwart.shift.ImportanceWeightedEstimator",
         lambda e: shift.ImportanceWeightedEstimator(e.m_lr, domain_classifier="nope"), ConfigError,
         r"domain_classifier"),
    case(("stalwart.shift.register", "stalwart.shift.DETECTORS"), lambda e: shift.DETECTORS.get("nope"),
         ConfigError, r"unknown .*'nope'"),
    case(("stalwart.shift.get", "stalwart.shift.names"), lambda e: shift.get("knn_distanse"), ConfigError,
         r"unknown detector 'knn_distanse'.*Did you mean 'knn_distance'"),
    case("stalwart.shift.get", lambda e: shift.get("knn_distance", kk=3), ConfigError,
         r"unknown parameter\(s\) \['kk'\]; pass only these parameters: \['k', 'model', 'layer'"),
    case("stalwart.shift.register", lambda e: shift.register(type("NoName", (), {})), ConfigError,
         r"class attribute 'name'"),

    # stalwart.certify
    case(("stalwart.certify.get", "stalwart.certify.names", "stalwart.certify.register", "stalwart.certify.Certifier"),
         lambda e: certify.get("smoothin"), ConfigError, r"unknown certifier 'smoothin'.*Did you mean 'smoothing'"),
    case("stalwart.certify.RandomizedSmoothing", lambda e: certify.RandomizedSmoothing(sigma=0), ConfigError,
         r"sigma.*> 0"),
    case("stalwart.certify.RandomizedSmoothing", lambda e: certify.RandomizedSmoothing(n0=100, n=10), ConfigError,
         r"at least n0"),
    case("stalwart.certify.RandomizedSmoothing", lambda e: certify.RandomizedSmoothing(alpha=1.5), ConfigError,
         r"alpha"),
    case("stalwart.certify.RandomizedSmoothing",
         lambda e: certify.RandomizedSmoothing(n0=5, n=10).certify(e.reg, e.x, e.y), ModelError, r"regression"),
    case("stalwart.certify.RandomizedSmoothing",
         lambda e: certify.RandomizedSmoothing(n0=5, n=10).certify(e.net, e.x.astype(np.float32), e.y + 5),
         InputError, r"label"),
    case("stalwart.certify.RandomizedSmoothing",
         lambda e: certify.RandomizedSmoothing(n0=5, n=10).predict(e.net, e.imgs), (InputError, ModelError),
         r"shape|features|takes"),
    case(("stalwart.certify.RandomizedSmoothing", "stalwart.certify.clopper_pearson_upper"),
         lambda e: certify.RandomizedSmoothing(sequential=True, futility=1.0), ConfigError, r"futility.*\[0, 1\)"),
    case(("stalwart.certify.CertificationResult", "stalwart.certify.clopper_pearson_lower"),
         lambda e: certify.RandomizedSmoothing(n0=5, n=10).certify(e.net, e.x.astype(np.float32), e.y)
         .certified_accuracy(-1.0), ConfigError, r"radius"),
    case(("stalwart.certify.CROWN", "stalwart.certify.network_layers"),
         lambda e: certify.CROWN().certify(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()), e.x, e.y),
         ModelError, r"Tanh.*smoothing"),
    case("stalwart.certify.CROWN", lambda e: certify.CROWN(norm="l1"), ConfigError, r"norm"),
    case("stalwart.certify.IBP", lambda e: certify.IBP(unit="range"), ConfigError, r"finite bounds"),
    case("stalwart.certify.IBP", lambda e: certify.IBP().certify(e.black, e.x, e.y), ModelError,
         r"RandomizedSmoothing"),
    case(("stalwart.certify.bracket", "stalwart.certify.BracketResult", "stalwart.certify.margin_bounds"),
         lambda e: certify.bracket(e.net, e.x, e.y, attacks.ThreatModel("l0", 1, None)), ConfigError, r"linf or l2"),
    case("stalwart.certify.feature_scale", lambda e: certify.feature_scale(np.ones((5, 2))), InputError,
         r"do not vary"),

    case("stalwart.checks.CertifiedRobustness", lambda e: checks.CertifiedRobustness(method="smoothing", norm="linf"),
         ConfigError, r"'l2' with method='smoothing'"),
    case("stalwart.checks.CertifiedRobustness", lambda e: checks.CertifiedRobustness(alpha=2), ConfigError, r"alpha"),
    case("stalwart.checks.CertifiedRobustness", lambda e: checks.CertifiedRobustness(sequential=True), ConfigError,
         r"sequential"),
    case("stalwart.checks.HardeningTradeoff", lambda e: checks.HardeningTradeoff(options=["madry"]), ConfigError,
         r"options=.*'pgd'"),
    case("stalwart.checks.HardeningTradeoff", lambda e: checks.HardeningTradeoff(test_size=0), ConfigError,
         r"test_size"),

    # stalwart.groups
    case(("stalwart.groups.group_metrics", "stalwart.groups.GroupMetrics"),
         lambda e: groups.group_metrics(e.y, e.y, e.y, metrics=["nope"]), ConfigError, r"unknown metric"),
    case("stalwart.groups.group_metrics", lambda e: groups.group_metrics(e.y, e.y, np.zeros(len(e.y))), InputError,
         r"one value"),
    case(("stalwart.groups.demographic_parity_difference", "stalwart.groups.demographic_parity_ratio",
          "stalwart.groups.equalized_odds_difference", "stalwart.groups.equalized_odds_ratio"),
         lambda e: groups.demographic_parity_difference(e.y, e.y, sensitive_features=e.y[:3]), InputError,
         r"rows but y has"),
    case(("stalwart.groups.statistical_parity_difference", "stalwart.groups.disparate_impact",
          "stalwart.groups.equal_opportunity_difference", "stalwart.groups.average_odds_difference",
          "stalwart.groups.predictive_parity_difference"),
         lambda e: groups.disparate_impact(e.y, e.y, sensitive_features=e.y, privileged=7), ConfigError,
         r"privileged group 7"),
    case("stalwart.checks.GroupPerformance", lambda e: checks.GroupPerformance(sensitive=[]), ConfigError,
         r"sensitive"),
    case("stalwart.checks.GroupRobustness", lambda e: checks.GroupRobustness(sensitive=["a"], severity=9),
         ConfigError, r"severity"),
    case("stalwart.checks.GroupRobustness", lambda e: checks.GroupRobustness(sensitive=["a"], eps=2),
         ConfigError, r"eps"),
    case(("stalwart.groups.stability", "stalwart.groups.StabilityResult"),
         lambda e: groups.stability(e.lr, e.x, e.y, cv=1), ConfigError, r"cv"),
    case("stalwart.checks.Stability", lambda e: checks.Stability(seeds=[1]), ConfigError, r"seeds"),
    case("stalwart.checks.Mitigation", lambda e: checks.Mitigation(sensitive="a", method="magic"), ConfigError,
         r"method"),
    case(("stalwart.groups.ReweighedClassifier", "stalwart.groups.reweighing_weights"),
         lambda e: groups.ReweighedClassifier(e.lr, "race").fit(e.df, e.y), InputError, r"reads the group"),
    case("stalwart.groups.GroupThresholdClassifier",
         lambda e: groups.GroupThresholdClassifier(e.lr, "a", constraint="x").fit(e.df, e.y), ConfigError,
         r"constraint"),
    case("stalwart.groups.group_labels", lambda e: groups.group_labels(np.zeros((2, 2, 2)), 2), InputError,
         r"one column"),
    case(("stalwart.groups.find_slices", "stalwart.groups.SliceSearch", "stalwart.groups.Slice"),
         lambda e: groups.find_slices(e.df, np.r_[e.y[:-1], np.nan]), InputError, r"missing or infinite"),
    case("stalwart.groups.find_slices", lambda e: groups.find_slices(e.df, e.y, columns=["zz"]), InputError,
         r"\['zz'\] are not in x"),
    case("stalwart.groups.find_slices", lambda e: groups.find_slices(e.df, e.y, max_predicates=9), ConfigError,
         r"max_predicates"),
    case("stalwart.groups.find_slices", lambda e: groups.find_slices(e.df, e.y[:3]), InputError,
         r"one value per row"),
    case("stalwart.groups.Predicate", lambda e: groups.Slice((groups.Predicate("zz", True, low=0.0),), 1, 0.1, 0, 0, 0, 0,
                                                             0, 0, 0, 1, 1).mask(e.df), InputError, r"no column"),
    case("stalwart.groups.text_features", lambda e: groups.text_features("one string"), ConfigError, r"texts"),
    case("stalwart.checks.WeakSlices", lambda e: checks.WeakSlices(by="flip:nope"), ConfigError, r"nope"),
    case("stalwart.checks.WeakSlices", lambda e: checks.WeakSlices(by="accuracy"), ConfigError, r"by="),

    # stalwart.security
    case(("stalwart.security.membership_inference", "stalwart.security.MEMBERSHIP_ATTACKS"),
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:20], e.x[20:], e.y[20:], attack="lossy"),
         ConfigError, r"attack=\.\.\.\) must be one of \['loss', 'confidence', 'shadow', 'lira'\]"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:20], e.x[20:], e.y[20:], attack="lira", n_shadow=1),
         ConfigError, r"n_shadow=\.\.\.\) must be an integer >= 2"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:0], e.y[:0], e.x[20:], e.y[20:]),
         InputError, r"members_x is empty"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:19], e.x[20:], e.y[20:]),
         InputError, r"members_x has 20 samples but members_y has 19"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:20], np.where(e.x[20:] > 0.9, np.nan, e.x[20:]), e.y[20:]),
         InputError, r"non_members_x contains .*NaN.*impute or drop"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:20], e.x[20:], e.y[20:] + 5),
         InputError, r"non_members_y contains labels the model does not know"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.lr, e.x[:20], None, e.x[20:], None, attack="loss"),
         InputError, r"needs the true labels.*attack='confidence'"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.reg, e.x[:20], e.y[:20], e.x[20:], e.y[20:]),
         ModelError, r"regression model.*pass a classifier"),
    case("stalwart.security.membership_inference",
         lambda e: security.membership_inference(
             e.black, e.x[:20], e.y[:20], e.x[20:], e.y[20:], attack="lira"),
         ConfigError, r"pass fit=.*attack='loss' and attack='confidence' need no training function"),
    case(("stalwart.security.MembershipResult", "stalwart.security.OperatingPoint"),
         lambda e: security.membership_inference(
             e.lr, e.x[:20], e.y[:20], e.x[20:], e.y[20:]).tpr_at(0.0),
         ConfigError, r"fpr=\.\.\.\) must be a false-positive rate in \(0, 1\)"),

    case(("stalwart.security.model_extraction", "stalwart.security.ExtractionResult",
          "stalwart.security.QUERY_KINDS"),
         lambda e: security.model_extraction(e.lr, e.x, e.x, budgets=[0]), ConfigError, r"budgets"),
    case("stalwart.security.model_extraction", lambda e: security.model_extraction(e.lr, e.x, e.x, queries="smart"),
         ConfigError, r"one of \['natural'"),
    case(("stalwart.security.poisoning_sensitivity", "stalwart.security.PoisoningResult",
          "stalwart.security.POISON_KINDS"),
         lambda e: security.poisoning_sensitivity(e.lr, e.x, e.y, e.x, e.y, rates=[2]), ConfigError, r"\[0, 1\)"),
    case("stalwart.security.poisoning_sensitivity",
         lambda e: security.poisoning_sensitivity(lambda v: v, e.x, e.y, e.x, e.y), ModelError, r"fit=lambda"),
    case("stalwart.security.plant_trigger", lambda e: security.plant_trigger(np.zeros(3), None, np.zeros((3, 1))),
         InputError, r"table \(n, features\) or images"),
    case(("stalwart.security.detect_backdoor", "stalwart.security.BackdoorResult", "stalwart.security.ClassReport",
          "stalwart.security.BACKDOOR_METHODS"),
         lambda e: security.detect_backdoor(e.lr, e.x, e.y), ModelError, r"membership-inference"),
    case(("stalwart.security.detect_backdoor", "stalwart.security.STRIP_BLENDS"),
         lambda e: security.detect_backdoor(e.net, e.x, e.y, method="magic"), ConfigError, r"method"),
    case("stalwart.security.detection_auroc", lambda e: security.detection_auroc([0.1, 0.2], [True, True]),
         InputError, r"needs both"),
    case("stalwart.checks.MembershipInference", lambda e: checks.MembershipInference(members=e.df, attack="x"),
         ConfigError, r"attack"),
    case("stalwart.checks.Extraction", lambda e: checks.Extraction(queries="smart"), ConfigError, r"queries"),
    case("stalwart.checks.Poisoning", lambda e: checks.Poisoning(train_data=e.df, kind="sneaky"), ConfigError,
         r"kind"),

    # stalwart.checks
    case(("stalwart.checks.get", "stalwart.checks.CHECKS", "stalwart.checks.names"),
         lambda e: checks.get("nope"), ConfigError, r"unknown check 'nope'.*clean_performance"),
    case("stalwart.checks.get", lambda e: checks.get("clean_performance", bogus=1), ConfigError, r"bogus"),
    case("stalwart.checks.build", lambda e: checks.build({}), ConfigError, r"check"),
    case("stalwart.checks.build", lambda e: checks.build("x"), ConfigError, r"mapping"),
    case("stalwart.checks.register", lambda e: checks.register(type("NoName", (), {})), ConfigError,
         r"class attribute 'name'"),
    case("stalwart.checks.Condition", lambda e: checks.Condition("accuracy", "~", 1.0), ConfigError, r"op"),
    case("stalwart.checks.Condition", lambda e: checks.Condition("accuracy", ">=", float("nan")), ConfigError,
         r"threshold"),
    case("stalwart.checks.Condition", lambda e: checks.Condition.parse("garbage"), ConfigError, r"condition"),
    case("stalwart.checks.worst_status", lambda e: checks.worst_status(["nope"]), ConfigError, r"status|PASS"),
    case("stalwart.checks.Status", lambda e: checks.worst_status([1]), ConfigError, r"status|PASS"),
    case("stalwart.checks.Metric", lambda e: checks.Metric("accuracy", "x"), ConfigError, r"value"),
    case(("stalwart.checks.CheckResult", "stalwart.checks.Measurement"),
         lambda e: checks.CheckResult.from_dict({}), InputError, r"check"),
    case(("stalwart.checks.Check", "stalwart.checks.SkipCheck"),
         lambda e: checks.CleanPerformance().run(e.lr, e.x), InputError, r"Dataset"),
    case("stalwart.checks.Check", lambda e: checks.CleanPerformance(conditions=["garbage"]), ConfigError,
         r"condition"),
    case("stalwart.checks.Check", lambda e: checks.CleanPerformance().run(e.lr, e.ds, seed=-1), ConfigError,
         r"seed"),
    case("stalwart.checks.AdversarialRobustness", lambda e: checks.AdversarialRobustness(norm="l3"), ConfigError,
         r"norm"),
    case("stalwart.checks.AdversarialRobustness", lambda e: checks.AdversarialRobustness(eps=[-1]), ConfigError,
         r"eps"),
    case("stalwart.checks.NaturalRobustness", lambda e: checks.NaturalRobustness(perturbations=["nope"]),
         ConfigError, r"nope"),
    case("stalwart.checks.NaturalRobustness", lambda e: checks.NaturalRobustness(severities=[9]), ConfigError,
         r"severities"),
    case("stalwart.checks.CorruptionRobustness", lambda e: checks.CorruptionRobustness(max_samples=0),
         ConfigError, r"max_samples"),
    case("stalwart.checks.CorruptionRobustness", lambda e: checks.CorruptionRobustness().run(e.lr, e.ds),
         (ConfigError, InputError), r"image"),
    case("stalwart.checks.BehaviouralTests", lambda e: checks.BehaviouralTests(severity=0), ConfigError,
         r"severity"),
    case("stalwart.checks.CleanPerformance", lambda e: checks.CleanPerformance(min_accuracy=2), ConfigError,
         r"min_accuracy"),
    case("stalwart.checks.DataDrift", lambda e: checks.DataDrift(reference=e.ds, alpha=2), ConfigError, r"alpha"),
    case("stalwart.checks.DataDrift", lambda e: checks.DataDrift(), ConfigError, r"reference.*Dataset"),
    case("stalwart.checks.MultivariateDrift", lambda e: checks.MultivariateDrift(reference=e.ds, max_samples=0),
         ConfigError, r"max_samples"),
    case("stalwart.checks.OODDetection", lambda e: checks.OODDetection(detectors=["nope"]), ConfigError, r"nope"),
    case("stalwart.checks.TextAdversarialRobustness", lambda e: checks.TextAdversarialRobustness(max_change=0),
         ConfigError, r"max_change"),

    # stalwart.defend
    case(("stalwart.defend.importance_weighted_fit", "stalwart.defend.ReweightedFit"),
         lambda e: defend.importance_weighted_fit(e.lr, e.x, e.y, e.x[:, :2]), ConfigError, r"columns"),
    case("stalwart.shift.density_ratio", lambda e: defend.importance_weighted_fit(e.lr, e.x, e.y, e.x,
                                                                                  n_splits=1), ConfigError,
         r"n_splits"),
    case(("stalwart.defend.distill", "stalwart.defend.DistilledModel", "stalwart.defend.DistillationResult"),
         lambda e: defend.distill(e.lr, e.x, e.y), ModelError, r"torch module"),
    case("stalwart.defend.distill", lambda e: defend.distill(e.net, e.x, e.y, temperature=-1), ConfigError,
         r"temperature"),
    case("stalwart.defend.Ensemble", lambda e: defend.Ensemble([e.lr]), ConfigError, r"two or more"),
    case("stalwart.defend.Ensemble", lambda e: defend.Ensemble([e.lr, e.reg]), ModelError, r"classifiers"),
    case("stalwart.defend.Ensemble", lambda e: defend.Ensemble([e.net, e.net], combine="vote").torch_logits(
        torch.zeros(1, 4)), ModelError, r"black-box"),
    case(("stalwart.defend.BitDepth", "stalwart.defend.Squeezer"), lambda e: defend.BitDepth(bits=40), ConfigError,
         r"bits"),
    case("stalwart.defend.MedianFilter", lambda e: defend.MedianFilter(size=1), ConfigError, r"size"),
    case("stalwart.defend.JPEG", lambda e: defend.JPEG(quality=101), ConfigError, r"quality.*1 to 100"),
    case(("stalwart.defend.RandomNoise", "stalwart.defend.RandomTransform"), lambda e: defend.RandomNoise(sigma=-1),
         ConfigError, r"sigma"),
    case("stalwart.defend.RandomResizePad", lambda e: defend.RandomResizePad(max_shrink=0), ConfigError,
         r"max_shrink"),
    case("stalwart.defend.RandomizedModel", lambda e: defend.RandomizedModel(e.net, defend.RandomNoise(), eot=0),
         ConfigError, r"eot"),
    case("stalwart.defend.EOT", lambda e: defend.EOT(e.black), ModelError, r"has none"),
    case(("stalwart.defend.tradeoff", "stalwart.defend.TradeoffResult"),
         lambda e: defend.tradeoff(e.net, e.x, e.y, e.x, e.y, e.threat, options=[]), ConfigError, r"non-empty list"),
    case("stalwart.defend.tradeoff", lambda e: defend.tradeoff(e.lr, e.x, e.y, e.x, e.y, e.threat), ModelError,
         r"torch network"),
    case("stalwart.defend.option_names", lambda e: defend.option_names([{"method": "pgd", "beta": 1}]), ConfigError,
         r"unknown parameter"),
    case("stalwart.defend.pareto_front", lambda e: defend.pareto_front([0.9, 0.8], [0.1]), InputError, r"one of each"),
    case("stalwart.defend.RandomizedModel", lambda e: defend.RandomizedModel(e.net, defend.RandomNoise(),
                                                                         verdict_draws=0), ConfigError, r"verdict_draws"),
    case("stalwart.defend.EOT", lambda e: defend.EOT(e.net, verdict_draws=2.5), ConfigError, r"verdict_draws"),
    case("stalwart.defend.SqueezedModel", lambda e: defend.SqueezedModel(e.net, "bits"), ConfigError, r"squeezers"),
    case("stalwart.defend.SqueezedModel", lambda e: defend.SqueezedModel(e.net, defend.BitDepth(), bounds=(1, 0)),
         ConfigError, r"bounds"),
    case("stalwart.defend.SqueezingDetector", lambda e: defend.SqueezingDetector(e.net, [defend.BitDepth()])
         .predict(e.x), ModelError, r"not fitted"),
    case(("stalwart.defend.adversarial_training", "stalwart.defend.TrainingResult"),
         lambda e: defend.adversarial_training(e.net, e.x, e.y, e.threat, epochs=0), ConfigError, r"epochs"),
    case("stalwart.defend.adversarial_training", lambda e: defend.adversarial_training(e.lr, e.x, e.y, e.threat),
         ModelError, r"torch module"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["nope"]), ConfigError,
         r"perturbations.*gaussian_noise"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment("gaussian_noise"), ConfigError,
         r"perturbations.*list"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["keyboard_typos"]), ConfigError,
         r"image perturbation"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], severities=[0]), ConfigError,
         r"severities.*1\.\.5"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=2), ConfigError, r"p=.*\[0, 1\]"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=float("nan")), ConfigError,
         r"p=.*\[0, 1\]"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], seed=-1), ConfigError, r"seed"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], value_range=(1, 0)), ConfigError,
         r"value_range"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=1.0)(e.x), InputError,
         r"C x H x W"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=1.0)(
        np.random.default_rng(0).random((2, 16, 16, 3))), InputError, r"transpose"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=1.0)(e.imgs * 300), InputError,
         r"value_range"),
    case("stalwart.defend.ImageAugment", lambda e: defend.ImageAugment(["fog"], p=1.0)(np.full((3, 8, 8), np.nan)),
         InputError, r"NaN"),
    case("stalwart.defend.TextAugmenter", lambda e: defend.TextAugmenter(["contract"]).augment("hello world"),
         InputError, r"list of strings"),
    case("stalwart.defend.TextAugmenter", lambda e: defend.TextAugmenter(["contract"]).augment([1]), InputError,
         r"strings"),
    case("stalwart.defend.TextAugmenter", lambda e: defend.TextAugmenter(["fog"]), ConfigError,
         r"text perturbation"),
    case("stalwart.defend.TextAugmenter", lambda e: defend.TextAugmenter([]), ConfigError, r"non-empty"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(LogisticRegression()).fit(
        e.x, e.y[:3]), InputError, r"40 rows but y has 3"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(
        LogisticRegression(), perturbations=["fog"]).fit(e.x, e.y), ConfigError, r"tabular perturbation"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(
        LogisticRegression(), n_copies=0).fit(e.x, e.y), ConfigError, r"n_copies"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(
        LogisticRegression(), seed=-1).fit(e.x, e.y), ConfigError, r"seed"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(LogisticRegression()).fit(
        e.x[:, 0], e.y), InputError, r"2-D"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(LogisticRegression()).fit(
        e.x, e.y, sample_weight=[1.0]), InputError, r"sample_weight"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier(LogisticRegression()).predict(
        e.x), ModelError, r"fit"),
    case("stalwart.defend.AugmentedClassifier", lambda e: defend.AugmentedClassifier("nope").fit(e.x, e.y),
         ConfigError, r"estimator"),

    # stalwart.testing: contract helpers misused
    case("stalwart.testing.check_attack", lambda e: testing.check_attack("pgd", e.m_lr, e.x, e.y), ConfigError,
         r"attack.*Attack"),
    case("stalwart.testing.check_attack", lambda e: testing.check_attack(attacks.FGSM(e.threat), e.m_lr, e.x,
                                                                         e.y[:3]), InputError,
         r"40 samples but y has 3"),
    case("stalwart.testing.check_perturbation", lambda e: testing.check_perturbation("fog", e.imgs), ConfigError,
         r"perturbation.*Perturbation"),
    case("stalwart.testing.check_perturbation", lambda e: testing.check_perturbation(perturb.get("fog"),
                                                                                     "abc"), InputError,
         r"N x C x H x W"),
    case("stalwart.testing.check_detector", lambda e: testing.check_detector(123, e.x, e.x), ConfigError,
         r"detector.*DriftDetector"),
    case("stalwart.testing.linear_problem", lambda e: testing.linear_problem(d=0), ConfigError, r"d=.*> 0"),
    case("stalwart.testing.linear_problem", lambda e: testing.linear_problem(n=-1), ConfigError, r"n=.*> 0"),
    case("stalwart.testing.linear_problem", lambda e: testing.linear_problem(seed="a"), ConfigError, r"seed"),
    case("stalwart.testing.linear_boundary_distance",
         lambda e: testing.linear_boundary_distance(e.x, np.ones(4), 0.0, "l3"), ConfigError, r"norm.*linf"),
    case("stalwart.testing.linear_boundary_distance",
         lambda e: testing.linear_boundary_distance(e.x, np.ones(3), 0.0, "l2"), InputError, r"w.*3.*4|4.*3"),
    case("stalwart.testing.linear_boundary_distance",
         lambda e: testing.linear_boundary_distance(e.x, np.zeros(4), 0.0, "l2"), InputError, r"w.*zero"),
    case("stalwart.testing.check_linear_closed_form",
         lambda e: testing.check_linear_closed_form(attacks.FGSM(e.threat), e.m_net, e.x, e.y, np.ones(4), 0.0,
                                                    margin=0.5), ConfigError, r"margin.*>= 1"),
    case("stalwart.testing.check_linear_closed_form",
         lambda e: testing.check_linear_closed_form("x", e.m_net, e.x, e.y, np.ones(4), 0.0), ConfigError,
         r"attack.*Attack"),
    # -- the monitoring service (the monitor extra) ----------------------------------------------------
    case("stalwart.monitor.Settings", lambda e: _monitor().Settings(db="monitor.db"), ConfigError, r"db=.*URL"),
    case("stalwart.monitor.Settings", lambda e: _monitor().Settings(window_rows=0), ConfigError, r"window_rows"),
    case("stalwart.monitor.Store", lambda e: _monitor().Store("nonsense"), ConfigError, r"not a database URL"),
    case("stalwart.monitor.Store", lambda e: _monitor().Store("sqlite:///:memory:").create_key("p", "root"),
         InputError, r"scope must be one of"),
    case("stalwart.monitor.create_app", lambda e: _monitor().create_app("sqlite:///x.db"), ConfigError,
         r"settings=.*Settings"),
    case("stalwart.monitor.analyze", lambda e: _monitor().analyze("sqlite:///x.db"), ConfigError, r"store=.*Store"),
    case("stalwart.monitor.analyze", lambda e: _monitor().analyze(_monitor().Store("sqlite:///:memory:"), 7),
         InputError, r"no model with id 7"),
    case("stalwart.monitor.deliver_pending", lambda e: _monitor().deliver_pending(None), ConfigError, r"store="),
    case("stalwart.monitor.next_state", lambda e: _monitor().next_state("on fire", 0, 0, True, 1), ConfigError,
         r"'on fire' is not one of"),
    case("stalwart.monitor.AlertRule", lambda e: _monitor().AlertRule("r", "accuracy is high"), ConfigError,
         r"cannot parse condition"),
    case("stalwart.monitor.AlertRule", lambda e: _monitor().AlertRule("r", "accuracy >= 0.9", for_windows=0),
         ConfigError, r"for_windows"),
    case("stalwart.monitor.Client", lambda e: _monitor().Client("127.0.0.1:8000", "k"), ConfigError, r"http"),
    case("stalwart.monitor.Client", lambda e: _monitor().Client("http://127.0.0.1:8000", ""), ConfigError,
         r"key=.*create-key"),
    case("stalwart.monitor.Client", lambda e: _monitor().Client("http://127.0.0.1:8000", "k").update_model("m"),
         ConfigError, r"probe=True/False or probe_sample"),
]


def _monitor() -> Any:
    import stalwart.monitor

    return stalwart.monitor


def _params() -> list[Any]:
    out = []
    for i, c in enumerate(CASES):
        marks = [pytest.mark.xfail(strict=True, reason=f"known defect outside this sweep's files: {c.known}")] \
            if c.known else []
        out.append(pytest.param(c, id=f"{i:03d}-{c.covers[0].removeprefix('stalwart.')}", marks=marks))
    return out


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("c", _params())
def test_bad_call_raises_a_stalwart_error_that_says_how_to_fix_it(c: Case, env: _Env) -> None:
    try:
        c.call(env)
    except StalwartError as exc:
        expected = c.exc if isinstance(c.exc, tuple) else (c.exc,)
        assert isinstance(exc, expected), f"raised {type(exc).__name__}, expected {c.exc}: {exc}"
        message = str(exc)
        assert re.search(c.match, message, re.S), f"message {message!r} does not match {c.match!r}"
        assert FIX_HINT.search(message), f"message {message!r} does not say how to fix the problem"
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"raised a raw {type(exc).__module__}.{type(exc).__name__}, not a stalwart error: {exc}")
    else:
        pytest.fail("accepted the bad input silently")


def _public_names() -> dict[str, Any]:
    names = {}
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            names[f"{mod_name}.{name}"] = getattr(mod, name)
    return names


def test_every_public_name_has_a_case() -> None:
    public = _public_names()
    covered = {name for c in CASES for name in c.covers}
    # a name re-exported elsewhere (stalwart.Dataset is stalwart.data.Dataset) is covered by either
    covered |= {q for q, obj in public.items() if any(public.get(n) is obj for n in covered)}
    missing = []
    for qualname, obj in public.items():
        if inspect.ismodule(obj):
            assert obj.__name__ in PUBLIC_MODULES or obj.__name__ == "stalwart.errors", qualname
            continue
        if qualname in NO_BAD_INPUT:
            assert callable(obj), qualname
            continue
        if qualname in CONSTANTS:
            assert not callable(obj) or type(obj).__name__ == "Registry", f"{qualname} is callable: give it a case"
            continue
        if qualname not in covered:
            missing.append(qualname)
    assert not missing, f"public names without a bad-call case in tests/test_api_errors.py: {missing}"
    unknown = covered - set(public)
    assert not unknown, f"cases cover names that are not public: {sorted(unknown)}"


def test_every_case_covers_a_real_name_and_raises_a_stalwart_error_class() -> None:
    for c in CASES:
        expected = c.exc if isinstance(c.exc, tuple) else (c.exc,)
        assert all(issubclass(k, StalwartError) for k in expected), c
