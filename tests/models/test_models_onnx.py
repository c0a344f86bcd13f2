"""OnnxModel: skl2onnx classifiers (ZipMap and tensor outputs), torch-exported nets, hand-made graphs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from onnx import TensorProto, helper  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402

from stalwart.errors import InputError, ModelError  # noqa: E402
from stalwart.models import wrap  # noqa: E402
from stalwart.models.onnx import OnnxModel  # noqa: E402


@pytest.fixture(scope="module")
def wine_lr(request):
    x, y = request.getfixturevalue("wine_std")
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    return LogisticRegression(max_iter=2000).fit(x, names), x.astype(np.float32)


def _save(proto, path):
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.mark.parametrize("zipmap", [False, True], ids=["tensor", "zipmap"])
def test_skl2onnx_logreg_matches_sklearn(wine_lr, tmp_path, zipmap):
    est, x = wine_lr
    options = None if zipmap else {"zipmap": False}
    path = _save(skl2onnx.to_onnx(est, x[:1], options=options), tmp_path / "lr.onnx")
    model = wrap(str(path))
    assert isinstance(model, OnnxModel) and not model.differentiable
    assert model.classes.tolist() == est.classes_.tolist()  # read from the graph
    np.testing.assert_allclose(model.predict_proba(x), est.predict_proba(x), atol=1e-5)
    np.testing.assert_array_equal(model.predict(x), est.predict(x))
    assert model.n_queries == 2 * len(x)


def test_session_input_and_batching(wine_lr):
    est, x = wine_lr
    proto = skl2onnx.to_onnx(est, x[:1], options={"zipmap": False})
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    model = wrap(session, classes=est.classes_, batch_size=7)
    np.testing.assert_allclose(model.predict_proba(x.astype(np.float64)), est.predict_proba(x), atol=1e-5)
    assert model.n_queries == len(x)
    with pytest.raises(InputError, match=r"samples of shape \(12,\) but the ONNX model expects \(13,\)"):
        model.predict_proba(x[:, :12])
    with pytest.raises(InputError, match="x is empty"):
        model.predict_proba(x[:0])


def test_torch_exported_mlp_logits(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    path = tmp_path / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter runs offline
        torch.onnx.export(net, (torch.zeros(2, 4),), str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    x = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    model = wrap(path)
    assert model.classes.tolist() == [0, 1, 2]  # probed from the graph's fixed feature shape
    probs = model.predict_proba(x)
    assert model.output_kind == "logits"
    np.testing.assert_allclose(probs, wrap(net).predict_proba(x), atol=1e-5)


def _graph(nodes, inputs, outputs, initializers=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_handmade_probability_and_label_graphs(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, -1.0, 0.5, 2.0])
    x_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])
    prob_out = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 2])
    softmax = _graph([helper.make_node("MatMul", ["x", "w"], ["z"]),
                      helper.make_node("Softmax", ["z"], ["p"], axis=1)], [x_in], [prob_out], [w])
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]], dtype=np.float32)
    z = x @ np.array([[1.0, -1.0], [0.5, 2.0]])
    expected = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    model = wrap(_save(softmax, tmp_path / "p.onnx"), classes=["cat", "dog"])
    np.testing.assert_allclose(model.predict_proba(x), expected, atol=1e-6)
    assert model.output_kind == "probabilities"

    label_out = helper.make_tensor_value_info("label", TensorProto.INT64, ["n"])
    argmax = _graph([helper.make_node("MatMul", ["x", "w"], ["z"]),
                     helper.make_node("ArgMax", ["z"], ["label"], axis=1, keepdims=0)],
                    [x_in], [label_out], [w])
    path = _save(argmax, tmp_path / "l.onnx")
    with pytest.raises(ModelError, match=r"outputs only labels.*pass classes=\[\.\.\.\]"):
        wrap(path)
    labels = wrap(path, classes=[0, 1])
    np.testing.assert_array_equal(labels.predict_proba(x), np.eye(2)[expected.argmax(1)])
    assert labels.output_kind == "labels"


def test_regressor_session_with_declared_task(wine_std):
    x, y = wine_std
    est = Ridge().fit(x, y.astype(float))
    proto = skl2onnx.to_onnx(est, x[:1].astype(np.float32))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    model = wrap(session, task="regression")
    np.testing.assert_allclose(model.predict(x.astype(np.float32)), est.predict(x), atol=1e-4)


def test_regressor_file_is_detected(wine_std, tmp_path):
    x, y = wine_std
    est = Ridge().fit(x, y.astype(float))
    path = _save(skl2onnx.to_onnx(est, x[:1].astype(np.float32)), tmp_path / "ridge.onnx")
    model = wrap(path)
    assert model.task == "regression" and model.classes is None
    np.testing.assert_allclose(model.predict(x.astype(np.float32)), est.predict(x), atol=1e-4)


def test_fingerprint_and_errors(wine_lr, tmp_path):
    est, x = wine_lr
    proto = skl2onnx.to_onnx(est, x[:1], options={"zipmap": False})
    a = wrap(_save(proto, tmp_path / "a.onnx"))
    b = wrap(_save(proto, tmp_path / "b.onnx"))
    assert a.fingerprint() == b.fingerprint()
    with pytest.raises(InputError, match="does not exist"):
        OnnxModel(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        wrap(tmp_path / "junk.onnx")
