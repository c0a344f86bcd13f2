"""Ensembles and feature squeezing: the combined numbers by hand, scipy's median filter, and the
literature's lesson — a squeezer looks robust to a plain gradient attack and is not (BPDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from stalwart import attacks
from stalwart.defend import BitDepth, Ensemble, MedianFilter, SqueezedModel, SqueezingDetector
from stalwart.errors import ConfigError, InputError, ModelError


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def nets(digits):
    x, y = digits
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(60):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200])), torch.as_tensor(y[:1200])).backward()
            opt.step()
        out.append(net.eval())
    return out


def test_the_three_combinations_by_hand(digits, nets):
    x, y = digits
    xs = x[1200:1260]
    with torch.no_grad():
        p = [torch.softmax(n(torch.as_tensor(xs)), 1).double().numpy() for n in nets]
    np.testing.assert_allclose(Ensemble(nets).predict_proba(xs), (p[0] + p[1]) / 2, atol=1e-6)
    z = (np.log(p[0]) + np.log(p[1])) / 2
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(Ensemble(nets, combine="logits").predict_proba(xs), want / want.sum(1, keepdims=True),
                               atol=1e-6)
    votes = Ensemble(nets, combine="vote", weights=[3, 1]).predict_proba(xs)
    np.testing.assert_allclose(votes.max(1), np.where(p[0].argmax(1) == p[1].argmax(1), 1.0, 0.75))
    assert np.array_equal(votes.argmax(1), p[0].argmax(1))  # the heavier member wins a split


def test_an_averaging_ensemble_of_networks_is_attacked_through_the_average(digits, nets):
    x, y = digits
    xs, ys = x[1200:1400], y[1200:1400]
    ens = Ensemble(nets, combine="logits")
    assert ens.differentiable and not Ensemble(nets, combine="vote").differentiable
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    white = attacks.PGD(threat, steps=20).run(ens, xs, ys)
    assert white.robust_accuracy < 0.6 * white.clean_accuracy
    # the logits the attack follows are the ensemble's own prediction
    with torch.no_grad():
        z = ens.torch_logits(torch.as_tensor(xs[:20]))
    assert np.array_equal(z.argmax(1).numpy(), ens.predict(xs[:20]))


def test_mixed_members_and_bad_ensembles(digits, nets):
    x, y = digits
    tree = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x[:1200], y[:1200])
    ens = Ensemble([nets[0], tree])
    assert not ens.differentiable
    with pytest.raises(ModelError, match="black-box here.*DecisionTree"):
        ens.torch_logits(torch.as_tensor(x[:2]))
    with pytest.raises(ConfigError, match="two or more"):
        Ensemble([nets[0]])
    with pytest.raises(ConfigError, match="combine"):
        Ensemble(nets, combine="max")
    with pytest.raises(ConfigError, match="weights"):
        Ensemble(nets, weights=[1, -1])
    other = LogisticRegression(max_iter=200).fit(x[:300], np.where(y[:300] > 4, "big", "small"))
    with pytest.raises(ModelError, match="same classes"):
        Ensemble([tree, other])


def test_bit_depth_and_median_filter_against_independent_references():
    x = torch.rand(3, 2, 9, 7)
    b = BitDepth(2)(x, (0.0, 1.0))
    levels = np.unique(b.numpy())
    assert len(levels) <= 4 and np.allclose(levels * 3, np.round(levels * 3), atol=1e-6)
    assert torch.all((b - x).abs() <= 1 / 6 + 1e-6)
    for k in (2, 3):
        ours = MedianFilter(k)(x, (0.0, 1.0)).numpy()
        ref = ndimage.median_filter(x.numpy(), size=(1, 1, k, k), mode="mirror")
        # scipy centres an even window one step later than the odd one, like the padding here
        assert ours.shape == x.shape
        if k == 3:
            np.testing.assert_allclose(ours, ref, atol=1e-7)
        else:
            inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
            lower = np.sort(np.lib.stride_tricks.sliding_window_view(
                np.pad(x.numpy(), ((0, 0), (0, 0), (0, 1), (0, 1)), mode="reflect"), (2, 2), axis=(2, 3))
                .reshape(3, 2, 9, 7, 4), axis=-1)[..., 1]
            np.testing.assert_allclose(ours[inner], lower[inner], atol=1e-7)
    with pytest.raises(InputError, match="N x C x H x W"):
        MedianFilter(2)(torch.rand(4, 64), (0.0, 1.0))
    with pytest.raises(ConfigError, match="bits"):
        BitDepth(0)


def test_bpda_breaks_bit_depth_squeezing_where_the_plain_attack_sees_robustness(digits, nets):
    """Rounding has zero gradient: PGD through the squeezer's own gradient cannot move, so the
    squeezed model looks robust; the identity backward pass (BPDA) finds the adversarial inputs."""
    x, y = digits
    xs, ys = x[1200:1400], y[1200:1400]
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    plain = SqueezedModel(nets[0], BitDepth(3), gradient="exact")
    adaptive = SqueezedModel(nets[0], BitDepth(3))
    pgd = attacks.PGD(threat, steps=40, random_start=False)
    looks = pgd.run(plain, xs, ys).robust_accuracy
    real = pgd.run(adaptive, xs, ys).robust_accuracy
    clean = float(np.mean(adaptive.predict(xs) == ys))
    assert looks >= clean - 0.02  # the illusion: almost nothing broken
    assert real <= looks - 0.3  # BPDA breaks it
    undefended = pgd.run(nets[0], xs, ys).robust_accuracy
    assert real <= undefended + 0.15  # squeezing barely helps once attacked properly


def test_the_squeezing_detector_flags_at_the_chosen_rate_on_clean_data(digits, nets):
    x, y = digits
    det = SqueezingDetector(nets[0], [BitDepth(2), MedianFilter(2)])
    with pytest.raises(ModelError, match="not fitted"):
        det.predict(x[:5])
    with pytest.raises(InputError, match="N x C x H x W"):
        det.fit(x[:400])  # a median filter needs images
    det = SqueezingDetector(nets[0], [BitDepth(2)]).fit(x[1200:1500], fpr=0.1)
    held_out = det.predict(x[1500:1797]).mean()
    assert 0.02 <= held_out <= 0.25
    adv = attacks.PGD(attacks.ThreatModel("linf", 0.1, (0.0, 1.0)), steps=20).run(nets[0], x[1500:1700],
                                                                                   y[1500:1700])
    flagged = det.predict(adv.x_adv[adv.success & (adv.pred_clean == y[1500:1700])]).mean()
    assert flagged > held_out  # adversarial inputs move more when squeezed


def test_the_report_shows_plain_and_adaptive_robust_accuracy_side_by_side(digits, nets):
    import stalwart
    from stalwart import checks

    x, y = digits
    ds = stalwart.Dataset.from_arrays(x[1200:1300], y[1200:1300])
    res = checks.get("adversarial_robustness", eps=[0.1], level="fast", minimal=False).run(
        SqueezedModel(nets[0], BitDepth(3)), ds)
    rows = res.tables["defence"]
    adaptive, plain = rows[0]["robust_accuracy"], rows[1]["robust_accuracy"]
    assert res.metrics["robust_accuracy_at_0.1"].value == pytest.approx(adaptive)
    assert res.metrics["plain_robust_accuracy"].value == pytest.approx(plain)
    assert adaptive <= plain
    assert res.status.value in ("WARN", "FAIL")  # at least the sanity checks of the plain run flag it
    undefended = checks.get("adversarial_robustness", eps=[0.1], level="fast", minimal=False).run(nets[0], ds)
    assert "defence" not in undefended.tables


@pytest.fixture(scope="module")
def image_net(digits):
    """The digits MLP on 1 x 8 x 8 images (a Flatten first), so image squeezers apply."""
    x, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.as_tensor(x[:1200]).view(-1, 1, 8, 8)),
                                          torch.as_tensor(y[:1200])).backward()
        opt.step()
    return net.eval()


def test_jpeg_is_stalwarts_own_jpeg_corruption_at_a_fixed_quality():
    from stalwart.defend import JPEG
    from stalwart.perturb.image import JpegCompression

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((3, 3, 32, 32)), dtype=torch.float32)
    # the severity table at 32 px ("cifar" constants): severity 1 is quality 80, severity 5 quality 40
    for quality, severity in ((80, 1), (40, 5)):
        ref = JpegCompression(constants="cifar").apply(x, severity)
        assert torch.equal(JPEG(quality)(x, (0.0, 1.0)), torch.as_tensor(ref))
    # and independently, a greyscale codec written from the standard: per 8 x 8 block, the level-shifted
    # orthonormal DCT-II quantised by the IJG luma table at the quality, then inverted and rounded
    from scipy.fft import dctn, idctn

    annex_k_luma = np.array([  # ITU-T T.81 Annex K, table K.1, scaled to quality 60 as libjpeg does
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
    table = np.clip((annex_k_luma * (200 - 2 * 60) + 50) // 100, 1, 255)
    grey = np.round(rng.random((16, 16)) * 255)
    blocks = grey.reshape(2, 8, 2, 8).transpose(0, 2, 1, 3) - 128
    coded = np.round(dctn(blocks, axes=(2, 3), norm="ortho") / table) * table
    want = np.clip(np.round(idctn(coded, axes=(2, 3), norm="ortho") + 128), 0, 255).transpose(0, 2, 1, 3)
    ours = JPEG(60)(torch.as_tensor(grey, dtype=torch.float32)[None, None], (0.0, 255.0))[0, 0].numpy()
    assert np.abs(ours - want.reshape(16, 16)).max() <= 1 and np.abs(ours - grey).mean() > 5  # lossy, the same loss
    # inputs in other bounds are coded on the 8-bit scale and mapped back
    shifted = JPEG(60)(torch.as_tensor(grey, dtype=torch.float32)[None, None] / 255 * 2 - 1, (-1.0, 1.0))
    np.testing.assert_allclose(shifted[0, 0].numpy(), ours / 255 * 2 - 1, atol=1e-5)
    # its own derivative is zero (the plain attack's view), the tensor keeps its graph
    t = x.clone().requires_grad_(True)
    JPEG(75)(t, (0.0, 1.0)).sum().backward()
    assert t.grad is not None and float(t.grad.abs().max()) == 0.0
    with pytest.raises(InputError, match="1 or 3 channels"):
        JPEG()(torch.rand(2, 64), (0.0, 1.0))
    with pytest.raises(ConfigError, match="quality"):
        JPEG(0)


def test_bpda_breaks_jpeg_squeezing_where_the_plain_attack_sees_robustness(digits, image_net):
    from stalwart.defend import JPEG

    x, y = digits
    xs, ys = x[1200:1400].reshape(-1, 1, 8, 8), y[1200:1400]
    threat = attacks.ThreatModel("linf", 0.1, (0.0, 1.0))
    plain = SqueezedModel(image_net, JPEG(75), gradient="exact")
    adaptive = SqueezedModel(image_net, JPEG(75))
    pgd = attacks.PGD(threat, steps=40, random_start=False)
    looks = pgd.run(plain, xs, ys).robust_accuracy
    real = pgd.run(adaptive, xs, ys).robust_accuracy
    clean = float(np.mean(adaptive.predict(xs) == ys))
    undefended = pgd.run(image_net, xs, ys).robust_accuracy
    assert clean >= 0.85
    assert looks >= clean - 0.02  # the illusion: almost nothing broken
    assert real <= looks - 0.3  # BPDA breaks it
    assert real <= undefended + 0.15  # JPEG barely helps once attacked properly
