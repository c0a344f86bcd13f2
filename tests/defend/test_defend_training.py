"""Adversarial training raises robust accuracy (measured by an attack the training never saw),
resumes from a checkpoint to the same weights, and stops on catastrophic overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from stalwart import attacks
from stalwart.defend import adversarial_training
from stalwart.errors import ConfigError, InputError, ModelError

THREAT = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def _robust(net, x, y):
    return attacks.PGD(THREAT, steps=20, restarts=2, seed=3).run(net, x, y).robust_accuracy


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_training_raises_robust_accuracy_against_an_unseen_attack(digits, method):
    x, y = digits
    plain = _net()
    adversarial_training(plain, x[:1200], y[:1200], attacks.ThreatModel("linf", 0.0, (0.0, 1.0)), epochs=15,
                         steps=1, lr=3e-3, batch_size=64)
    robust = _net()
    res = adversarial_training(robust, x[:1200], y[:1200], THREAT, method=method, epochs=15, steps=5, lr=3e-3,
                               batch_size=64)
    before, after = _robust(plain, x[1300:1600], y[1300:1600]), _robust(robust, x[1300:1600], y[1300:1600])
    assert after >= before + 0.12, (before, after)  # measured here: 0.48 -> 0.67 (pgd), 0.69 (trades)
    clean = float((robust(torch.as_tensor(x[1300:1600])).argmax(1).numpy() == y[1300:1600]).mean())
    assert clean >= 0.8
    assert [r["epoch"] for r in res.history] == list(range(1, 16))
    assert res.history[-1]["val_robust_accuracy"] > res.history[0]["val_robust_accuracy"] - 0.05


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(digits, tmp_path):
    x, y = digits
    one = _net()
    adversarial_training(one, x[:400], y[:400], THREAT, method="fast", epochs=3, seed=1)
    two = _net()
    ckpt = tmp_path / "ckpt.pt"
    adversarial_training(two, x[:400], y[:400], THREAT, method="fast", epochs=2, seed=1, checkpoint=ckpt)
    assert ckpt.exists() and not list(tmp_path.glob(".*stalwart-tmp*"))
    resumed = _net(seed=9)  # different start: everything must come from the checkpoint
    res = adversarial_training(resumed, x[:400], y[:400], THREAT, method="fast", epochs=3, seed=1, checkpoint=ckpt)
    assert [r["epoch"] for r in res.history] == [1, 2, 3]
    for a, b in zip(one.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_fast_training_stops_when_pgd_robust_accuracy_collapses(digits, monkeypatch):
    """The guard, driven by a validation that reports a collapse at epoch 3."""
    from stalwart.defend import training

    x, y = digits
    values = iter([(0.9, 0.5), (0.9, 0.6), (0.95, 0.1), (0.95, 0.1)])
    monkeypatch.setattr(training, "_validate", lambda *a, **k: next(values))
    res = adversarial_training(_net(), x[:300], y[:300], THREAT, method="fast", epochs=4)
    assert len(res.history) == 3 and res.best_epoch == 2
    assert "catastrophic overfitting at epoch 3" in res.stopped and "epoch 2 are kept" in res.stopped


def test_patience_keeps_the_best_epoch(digits, monkeypatch):
    from stalwart.defend import training

    x, y = digits
    values = iter([(0.9, 0.3), (0.9, 0.5), (0.9, 0.4), (0.9, 0.45), (0.9, 0.6)])
    monkeypatch.setattr(training, "_validate", lambda *a, **k: next(values))
    res = adversarial_training(_net(), x[:300], y[:300], THREAT, epochs=5, steps=1, patience=2)
    assert len(res.history) == 4 and res.best_epoch == 2 and "no robust-accuracy gain for 2" in res.stopped


def test_bad_input(digits):
    x, y = digits
    with pytest.raises(ModelError, match="torch module"):
        adversarial_training(object(), x[:50], y[:50], THREAT)
    with pytest.raises(ConfigError, match="ThreatModel"):
        adversarial_training(_net(), x[:50], y[:50], attacks.ThreatModel("l1", 1.0, (0.0, 1.0)))
    with pytest.raises(ConfigError, match="method"):
        adversarial_training(_net(), x[:50], y[:50], THREAT, method="madry")
    with pytest.raises(InputError, match="integer class indices"):
        adversarial_training(_net(), x[:50], np.array(["a"] * 50), THREAT)
    with pytest.raises(InputError, match="NaN|finite"):
        adversarial_training(_net(), np.full((50, 64), np.nan), y[:50], THREAT)


def test_noise_training_makes_randomized_smoothing_useful(digits):
    """Trained under the smoothing noise, the base model stays accurate under it, so more samples
    are certified than for the same network trained on clean inputs."""
    from stalwart.certify import RandomizedSmoothing

    x, y = digits
    sigma = 0.5
    plain, noisy = _net(), _net()
    adversarial_training(plain, x[:1200], y[:1200], attacks.ThreatModel("l2", 0.0, (0.0, 1.0)), method="noise",
                         epochs=10, lr=3e-3, batch_size=64)
    adversarial_training(noisy, x[:1200], y[:1200], attacks.ThreatModel("l2", sigma, (0.0, 1.0)), method="noise",
                         epochs=10, lr=3e-3, batch_size=64)
    smooth = RandomizedSmoothing(sigma, n0=50, n=500, alpha=0.01)
    acc = [smooth.certify(n, x[1300:1400], y[1300:1400]).certified_accuracy(0.25) for n in (plain, noisy)]
    assert acc[1] >= acc[0] + 0.1, acc
    with pytest.raises(ConfigError, match="l2"):
        adversarial_training(_net(), x[:50], y[:50], THREAT, method="noise")


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("method", ["pgd", "trades", "fast"])
def test_attack_steps_feed_the_network_the_batch_memory_layout(digits, method, channels_last):
    """A one-channel image batch is both NCHW and channels-last for torch; an attack step's result
    must not switch layout, or every later pass of the epoch runs the network in the other one."""
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(64, 10))
    seen = []
    net[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].stride()))
    images = x[:300].reshape(-1, 1, 8, 8)
    if channels_last:  # the same values with the strides of a channels-last batch (as load_split's digits have)
        images = np.transpose(x[:300].reshape(-1, 8, 8, 1), (0, 3, 1, 2))
    res = adversarial_training(net, images, y[:300], THREAT, method=method, epochs=1, steps=3, batch_size=100)
    batches = 3
    passes = {"pgd": 3 + 1, "trades": 1 + 3 + 2, "fast": 1 + 1}[method] * batches
    assert len(seen) >= passes  # the training passes, then the validation's
    assert len(set(seen)) == 1, set(seen)
    row = res.history[0]
    assert 0 < row["train_time_s"] <= row["time_s"]
