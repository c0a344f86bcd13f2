"""Randomized models are judged on their expected prediction, not on one draw
(:func:`stalwart.attacks.base.predicted_index`, ``Model.verdict_draws``).

Two models with known answers: one whose randomness moves its probabilities but never its argmax
must get exactly its deterministic twin's robust accuracy; one whose single draws are wrong 30% of
the time (right on average, far from any boundary) must not be reported broken on clean inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from stalwart import attacks
from stalwart.attacks.base import predicted_index
from stalwart.defend import EOT, RandomizedModel, RandomNoise
from stalwart.models import wrap
from stalwart.models.base import Model


class JitteredTemperature(Model):
    """``net``'s logits unchanged (so gradients, and every attack's path, are the twin's), its
    probabilities at a random temperature from 0.3 to 3 per row and call: they move, the argmax never."""

    verdict_draws = 8

    def __init__(self, net: torch.nn.Module, seed: int = 0) -> None:
        super().__init__()
        self.base = wrap(net, classes=list(range(10)))
        self.classes, self.batch_size = self.base.classes, self.base.batch_size
        self._rng = np.random.default_rng(seed)
        self.draws = 0

    @property
    def differentiable(self) -> bool:
        return True

    def torch_logits(self, x):  # noqa: ANN001, ANN201
        self.n_queries += int(x.shape[0])
        return self.base.torch_logits(x)

    def _raw_predict(self, x):  # noqa: ANN001, ANN202
        with torch.no_grad():
            z = self.base.torch_logits(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()
        self.draws += 1
        t = self._rng.uniform(0.3, 3.0, size=(len(z), 1))
        e = np.exp((z - z.max(axis=1, keepdims=True)) / t)
        return e / e.sum(axis=1, keepdims=True)


class WrongThirtyPercent(torch.nn.Module):
    """A linear classifier of three blobs around (0.5, 0.5); on each call, each row answers a uniformly
    drawn wrong class with probability 0.3 (its one-draw accuracy is about 0.7)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[4.0, 0.0], [-2.0, 3.46], [-2.0, -3.46]]))
            self.lin.bias.copy_(-0.5 * self.lin.weight.sum(dim=1))  # centred on (0.5, 0.5)

    def forward(self, x):  # noqa: ANN001, ANN201
        z = self.lin(x)
        flip = torch.rand(len(z)) < 0.3
        wrong = (z.argmax(dim=1) + torch.randint(1, 3, (len(z),))) % 3
        onehot = torch.nn.functional.one_hot(wrong, 3).to(z.dtype) * 20.0
        return torch.where(flip[:, None], onehot, z)


def blobs(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    angle = 2 * np.pi * y / 3
    centres = np.c_[np.cos(angle), np.sin(angle)]
    return (0.5 + 0.35 * centres + 0.03 * rng.standard_normal((n, 2))).astype(np.float32), y


def test_randomness_that_never_changes_the_argmax_gives_the_twins_robust_accuracy(digits_mlp):
    net, x, y = digits_mlp
    x, y = x[:120], y[:120]
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    twin = wrap(net, classes=list(range(10)))
    jittered = JitteredTemperature(net)
    # the probabilities do move between calls; the verdict is a vote of 8 calls
    a, b = jittered.predict_proba(x), jittered.predict_proba(x)
    assert np.abs(a - b).max() > 0.1
    before = jittered.draws
    np.testing.assert_array_equal(predicted_index(jittered, x), twin.predict_proba(x).argmax(axis=1))
    assert jittered.draws - before == 8
    # one gradient attack: the same samples broken
    pgd_twin = attacks.PGD(threat, steps=10, seed=0).run(twin, x, y)
    pgd_jit = attacks.PGD(threat, steps=10, seed=0).run(jittered, x, y)
    np.testing.assert_array_equal(pgd_jit.success, pgd_twin.success)
    # the ensemble: its white-box attacks see the twin's gradients, and Square (which reads the
    # jittered probabilities) breaks nothing APGD left, on either
    ev_twin = attacks.evaluate(twin, x, y, threat, level="fast", eps_curve=[], sanity=False)
    ev_jit = attacks.evaluate(jittered, x, y, threat, level="fast", eps_curve=[], sanity=False)
    assert 0.2 < ev_twin.robust_accuracy < ev_twin.clean_accuracy  # the attack has work to do
    assert ev_jit.clean_accuracy == ev_twin.clean_accuracy
    assert ev_jit.robust_accuracy == ev_twin.robust_accuracy
    np.testing.assert_array_equal(ev_jit.robust, ev_twin.robust)
    assert any("majority vote over 8 draws" in n for n in ev_jit.notes)


def test_a_model_wrong_on_thirty_percent_of_single_draws_is_not_reported_broken():
    x, y = blobs()
    torch.manual_seed(0)
    noisy = WrongThirtyPercent().eval()
    # a vote of k draws is wrong when the true class gets no more votes than a wrong one: for draws
    # right with p 0.7 (else one of two wrong classes), 2e-4 per verdict at k = 32, 1e-7 at k = 64;
    # evaluate takes ~7 verdicts per sample (clean, then clean and adversarial per attack)
    model = EOT(noisy, draws=4, verdict_draws=64)
    one_draw = float(np.mean(model.predict_proba(x).argmax(axis=1) == y))
    assert 0.6 < one_draw < 0.8  # a single draw is wrong about 30% of the time
    # the deterministic model is right everywhere, with a margin no eps-0.05 step can cross
    with torch.no_grad():
        assert bool((noisy.lin(torch.as_tensor(x)).argmax(dim=1).numpy() == y).all())
    threat = attacks.ThreatModel("linf", 0.05, (0.0, 1.0))
    ev = attacks.evaluate(model, x, y, threat, level="fast", eps_curve=[], sanity=False)
    assert ev.clean_accuracy == 1.0
    assert ev.robust_accuracy == 1.0, dict(zip(*np.unique(ev.broken_by, return_counts=True)))
    # a plain attack judged the same way
    res = attacks.PGD(threat, steps=10, seed=0).run(model, x, y)
    assert res.clean_accuracy == 1.0 and res.robust_accuracy == 1.0


def test_one_draw_judges_as_before_and_wrappers_carry_the_draws():
    net = torch.nn.Linear(4, 3)
    defended = RandomizedModel(net, RandomNoise(0.3), verdict_draws=5, seed=1)
    assert defended.non_adaptive().verdict_draws == 5
    assert EOT(net, verdict_draws=3).non_adaptive().verdict_draws == 3
    assert wrap(net).verdict_draws == 1
    x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    calls = defended.n_queries
    predicted_index(defended, x)
    assert defended.n_queries - calls == 5 * 6
    # by hand: the class most of five fresh draws from the same generator state predict
    again = RandomizedModel(net, RandomNoise(0.3), verdict_draws=5, seed=1)
    votes = np.stack([again.predict_proba(x).argmax(axis=1) for _ in range(5)])
    want = np.array([np.bincount(v, minlength=3).argmax() for v in votes.T])  # five votes, three classes: no tie
    fresh = RandomizedModel(net, RandomNoise(0.3), verdict_draws=5, seed=1)
    np.testing.assert_array_equal(predicted_index(fresh, x), want)
