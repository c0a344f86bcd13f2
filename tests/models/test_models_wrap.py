"""wrap() dispatch and load_model() for every file format, including the trust rules."""

from __future__ import annotations

import operator
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from stalwart.errors import InputError, ModelError
from stalwart.models import FunctionModel, Model, SklearnModel, TorchModel, load_model, wrap

UNTRUSTED = r"runs arbitrary code .*pass trust=True \(CLI: --trust\) only for files you trust, or save the model with skops"


@pytest.fixture(scope="module")
def pipe(request):
    x, y = request.getfixturevalue("wine")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y), x


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(13, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))


def test_wrap_dispatch_and_idempotence(pipe):
    est, x = pipe
    model = wrap(est, input_bounds=(0.0, 2000.0))
    assert isinstance(model, SklearnModel) and wrap(model) is model
    assert model.input_bounds == (0.0, 2000.0)
    assert isinstance(wrap(_net()), TorchModel)
    assert isinstance(wrap(lambda a: np.ones((len(a), 2)) / 2), FunctionModel)
    assert wrap(est).input_bounds is None


def test_wrap_refuses_unknown_things():
    with pytest.raises(ModelError, match=r"cannot wrap an object of type builtins\.int\. Supported: a fitted scikit-learn"):
        wrap(3)
    with pytest.raises(ModelError, match=r"only \.onnx paths are wrapped directly\. Use load_model"):
        wrap("model.skops")
    with pytest.raises(ModelError, match=r"device=\.\.\.\) applies to torch modules only"):
        wrap(lambda a: a, device="cpu")
    with pytest.raises(ModelError, match="is not fitted"):
        wrap(LogisticRegression())


def test_load_skops_without_trust(pipe, tmp_path):
    est, x = pipe
    path = tmp_path / "m.skops"
    sio.dump(est, path)
    model = load_model(path)
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(x), atol=1e-12)
    assert model.fingerprint() == wrap(est).fingerprint()
    assert model.differentiable  # the mirror survives the round trip


def test_load_skops_with_foreign_types_needs_trust(wine, tmp_path):
    x, y = wine
    est = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression(max_iter=3000)).fit(x / 100, y)
    path = tmp_path / "neg.skops"
    sio.dump(est, path)
    with pytest.raises(ModelError, match=r"types outside scikit-learn/numpy/scipy.*\['_operator\.neg'\].*trust=True"):
        load_model(path)
    model = load_model(path, trust=True)
    np.testing.assert_allclose(model.predict_proba(x / 100), est.predict_proba(x / 100), atol=1e-12)


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickles_need_trust(pipe, tmp_path, suffix):
    est, x = pipe
    path = tmp_path / f"m{suffix}"
    if suffix == ".joblib":
        joblib.dump(est, path)
    else:
        path.write_bytes(pickle.dumps(est))
    with pytest.raises(ModelError, match=re.escape(f"loading {path} ") + UNTRUSTED):
        load_model(path)
    model = load_model(path, trust=True, batch_size=10)
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(x), atol=1e-12)
    assert model.batch_size == 10


def test_torchscript_loads_without_trust(tmp_path, wine):
    net = _net()
    path = tmp_path / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(path))
    x = wine[0].astype(np.float32)
    model = load_model(path)
    np.testing.assert_allclose(model.predict_proba(x), wrap(net).predict_proba(x), atol=1e-6)


def test_pickled_torch_module_needs_trust_and_state_dict_is_explained(tmp_path, wine):
    net = _net()
    path = tmp_path / "net.pth"
    torch.save(net, str(path))
    with pytest.raises(ModelError, match=UNTRUSTED):
        load_model(path)
    x = wine[0].astype(np.float32)
    np.testing.assert_allclose(load_model(path, trust=True).predict_proba(x), wrap(net).predict_proba(x))
    weights = tmp_path / "weights.pt"
    torch.save(net.state_dict(), str(weights))
    with pytest.raises(ModelError, match=r"holds a state_dict, not a model; .*load_state_dict"):
        load_model(weights)


def test_torch_export_program_loads(tmp_path, wine):
    net = _net()
    program = torch.export.export(net, (torch.zeros(2, 13),), dynamic_shapes=({0: torch.export.Dim("n")},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    x = wine[0][:20].astype(np.float32)
    np.testing.assert_allclose(load_model(path).predict_proba(x), wrap(net).predict_proba(x), atol=1e-6)


def test_onnx_file_loads(pipe, tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx")
    est, x = pipe
    path = tmp_path / "m.onnx"
    path.write_bytes(skl2onnx.to_onnx(est, x[:1].astype(np.float32)).SerializeToString())
    model = load_model(path)
    assert isinstance(model, Model)
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(x), atol=1e-4)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match=r"model file '.*nope\.skops' does not exist"):
        load_model(tmp_path / "nope.skops")
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"\x89HDF")
    with pytest.raises(ModelError, match=r"unknown extension '\.h5'\. Supported: \.joblib, \.onnx, .*\.skops"):
        load_model(odd)
