"""TorchModel: probabilities, logits, binary heads, shapes, devices, TorchScript, query counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models import TorchModel, wrap


def _net(seed: int = 0, n_in: int = 4, n_out: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_out))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture()
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)


def test_logit_module_gives_softmax_probabilities(x):
    net = _net()
    model = wrap(net)
    assert isinstance(model, TorchModel) and model.device == torch.device("cpu")
    with torch.no_grad():
        expected = _softmax(net(torch.from_numpy(x)).double().numpy())
    np.testing.assert_allclose(model.predict_proba(x), expected, atol=1e-7)
    assert model.output_kind == "logits"
    assert model.classes.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(model.predict(x), expected.argmax(1))


def test_probability_module_is_detected_and_logits_are_its_log(x):
    net = torch.nn.Sequential(_net(), torch.nn.Softmax(dim=1))
    model = wrap(net)
    probs = model.predict_proba(x)
    assert model.output_kind == "probabilities"
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    logits = model.torch_logits(torch.from_numpy(x))
    np.testing.assert_allclose(logits.detach().numpy(), np.log(expected), atol=1e-5)


def test_explicit_output_kind_overrides_detection(x):
    model = TorchModel(_net(), output="logits")
    model.predict_proba(x)
    assert model.output_kind == "logits"
    with pytest.raises(ConfigError, match=r"TorchModel\(output=\.\.\.\) must be one of"):
        TorchModel(_net(), output="scores")


def test_single_output_module_is_binary_sigmoid(x):
    net = _net(n_out=1)
    model = wrap(net, classes=["neg", "pos"])
    with torch.no_grad():
        z = net(torch.from_numpy(x)).double().numpy()[:, 0]
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(model.predict_proba(x), np.stack([1 - p, p], 1), atol=1e-7)
    logits = model.torch_logits(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(logits[:, 0], 0.0)
    np.testing.assert_allclose(logits[:, 1], z, atol=1e-6)
    assert model.predict(x).tolist() == np.where(z > 0, "pos", "neg").tolist()


def test_torch_logits_is_differentiable_and_counts_each_sample_once(x):
    net = _net()
    model = wrap(net, batch_size=3)
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = model.torch_logits(xt)
    assert model.n_queries == 10
    logits[:, 0].sum().backward()
    # closed form: d/dx W2 tanh(W1 x + b1) = W2 diag(1 - tanh^2) W1
    w1, b1, w2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
    h = torch.tanh(torch.from_numpy(x) @ w1.T + b1)
    expected = ((1 - h**2) * w2[0]) @ w1
    np.testing.assert_allclose(xt.grad.numpy(), expected.numpy(), atol=1e-6)
    model.predict_proba(x)  # 4 batches of at most 3
    assert model.n_queries == 20
    model.reset_queries()
    assert model.n_queries == 0


def test_classes_known_before_first_call_and_checked():
    assert wrap(_net(n_out=5)).classes.tolist() == [0, 1, 2, 3, 4]
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    probed = TorchModel(conv, input_shape=(1, 6, 6))
    assert probed.classes.tolist() == [0, 1, 2] and probed.n_queries == 0
    with pytest.raises(ModelError, match="classes has 2 labels but the module returns 3"):
        TorchModel(conv, classes=["a", "b"], input_shape=(1, 6, 6))


def test_classes_found_on_first_call_without_linear_layer():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    model = TorchModel(conv)
    assert model.classes is None
    model.predict_proba(np.zeros((2, 1, 5, 5), dtype=np.float32))
    assert model.classes.tolist() == [0, 1, 2, 3]


def test_input_shape_reshapes_flat_inputs():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    model = TorchModel(conv, input_shape=(1, 6, 6))
    flat = np.random.default_rng(1).random((5, 36)).astype(np.float32)
    np.testing.assert_allclose(model.predict_proba(flat), model.predict_proba(flat.reshape(5, 1, 6, 6)))
    with pytest.raises(InputError, match=r"expects input_shape \(1, 6, 6\)"):
        model.predict_proba(np.zeros((2, 35), dtype=np.float32))


def test_eval_mode_makes_dropout_deterministic(x):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Dropout(0.5), torch.nn.Linear(32, 3)).train()
    model = wrap(net)
    assert not net.training
    np.testing.assert_array_equal(model.predict_proba(x), model.predict_proba(x))


def test_torchscript_module_matches_eager(x):
    net = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
        scripted = torch.jit.script(net)
    np.testing.assert_allclose(wrap(scripted).predict_proba(x), wrap(net).predict_proba(x), atol=1e-7)
    assert wrap(scripted).differentiable


def test_float64_module_keeps_precision(x):
    net = _net().double()
    model = wrap(net)
    assert model.torch_logits(torch.from_numpy(x)).dtype == torch.float64


def test_fingerprint_tracks_weights():
    a, b = wrap(_net(seed=0)), wrap(_net(seed=0))
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 16
    assert wrap(_net(seed=1)).fingerprint() != a.fingerprint()


def test_bad_inputs_raise_input_errors():
    model = wrap(_net())
    with pytest.raises(InputError, match="x is empty"):
        model.predict_proba(np.zeros((0, 4), dtype=np.float32))
    with pytest.raises(InputError, match="x must be numeric"):
        model.predict_proba([["a", "b", "c", "d"]])
    with pytest.raises(ModelError, match="not a valid torch device"):
        TorchModel(_net(), device="tpu:7")


class _ViewCNN(torch.nn.Module):
    """The tutorial's CNN shape: it flattens with ``.view``, which fails on channels-last activations."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(channels, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).view(-1, 4 * 6 * 6))


@pytest.mark.parametrize("channels", [1, 3])
def test_images_permuted_from_channels_last_arrays_run_as_the_module_expects(channels):
    """An NCHW view of an NHWC array (the usual numpy path; for one channel even the channel axis'
    stride differs) makes torch run channels-last, and ``.view`` in the module then fails: the
    adapter hands the module standard strides, so it predicts and is attacked as on a copy."""
    from stalwart.attacks import FGSM, PGD, ThreatModel

    nhwc = np.random.default_rng(0).random((12, 6, 6, channels), dtype=np.float32)
    permuted = nhwc.transpose(0, 3, 1, 2)
    plain = np.ascontiguousarray(permuted).reshape(12, -1).reshape(permuted.shape)  # C-order strides
    assert permuted.strides != plain.strides
    module = _ViewCNN(channels).eval()
    with pytest.raises(RuntimeError, match="view size"):
        module(torch.from_numpy(permuted))  # the failure the adapter spares the user
    model = wrap(module)
    np.testing.assert_array_equal(model.predict_proba(permuted), model.predict_proba(plain))
    y = model.predict(plain)
    threat = ThreatModel("linf", eps=0.05, bounds=(0.0, 1.0))
    for attack in (FGSM(threat), PGD(threat, steps=5)):
        a, b = attack.run(model, permuted, y), attack.run(model, plain, y)
        np.testing.assert_array_equal(a.x_adv, b.x_adv)
        np.testing.assert_array_equal(a.success, b.success)


def test_non_tensor_output_is_a_model_error():
    class Tuple(torch.nn.Module):
        def forward(self, x):
            return x.unsqueeze(1).unsqueeze(1)

    with pytest.raises(ModelError, match=r"must return a tensor of shape \(n, n_classes\)"):
        TorchModel(Tuple()).predict_proba(np.zeros((2, 3), dtype=np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_roundtrip(x):  # pragma: no cover - exercised only on GPU machines
    model = wrap(_net(), device="cuda")
    assert model.device.type == "cuda"
    cpu = wrap(_net())
    np.testing.assert_allclose(model.predict_proba(x), cpu.predict_proba(x), atol=1e-5)
    logits = model.torch_logits(torch.from_numpy(x))
    assert logits.device.type == "cuda"


def test_probe_settles_width_but_real_data_settles_probabilities(x):
    net = torch.nn.Sequential(_net(), torch.nn.Softmax(dim=1))
    model = TorchModel(net, input_shape=(4,))
    assert model.classes.tolist() == [0, 1, 2] and model.output_kind == "logits"
    model.predict_proba(x)
    assert model.output_kind == "probabilities"
