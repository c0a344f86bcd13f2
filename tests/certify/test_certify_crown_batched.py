"""CROWN's batched backward pass (per-sample unstable rows, relaxation only where a ReLU is
unstable) against a plain one-sample-at-a-time CROWN written here with dense matrices: the same
bounds to 1e-5 on random small MLPs and conv nets, L-inf (with a box) and L2, whatever the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stalwart.certify import CROWN, margin_bounds, network_layers


def reference_crown(layers, x, label, eps, norm, lo=None, hi=None):
    """Lower bounds of z_label - z_j for one sample (flat x), CROWN with the adaptive lower slope,
    intermediate bounds: the interval through the layer, tightened by CROWN where it is unstable;
    the result is the better of CROWN and IBP (as in stalwart)."""
    if norm == "linf":
        xl, xu = x - eps, x + eps
        if lo is not None:
            xl, xu = torch.maximum(xl, lo), torch.minimum(xu, hi)

    def minimum(a, c):  # min over the input set of a @ x + c, a: rows x n
        if norm == "linf":
            return c + a.clamp(min=0) @ xl + a.clamp(max=0) @ xu
        return c + a @ x - eps * a.norm(dim=1)

    def backward(a, c, k, bounds):  # min of a @ z_k + c; bounds[i] = (lower, upper) of z_i
        for i in range(k, -1, -1):
            w, b = layers[i]
            c = c + a @ b
            a = a @ w
            if i == 0:
                break
            low, up = bounds[i - 1]
            active, unstable = low >= 0, (low < 0) & (up > 0)
            slope = torch.where(unstable, up / (up - low).clamp(min=1e-300), active.double())
            lower_slope = torch.where(unstable, (up > -low).double(), active.double())
            c = c + a.clamp(max=0) @ torch.where(unstable, -slope * low, torch.zeros_like(low))
            a = torch.where(a < 0, a * slope, a * lower_slope)
        return minimum(a, c)

    w0, b0 = layers[0]
    bounds = [(minimum(w0, b0), -minimum(-w0, -b0))]
    intervals = [bounds[0]]
    for k in range(1, len(layers) - 1):
        w, b = layers[k]
        pl, pu = bounds[-1][0].clamp(min=0), bounds[-1][1].clamp(min=0)
        low = w.clamp(min=0) @ pl + w.clamp(max=0) @ pu + b
        up = w.clamp(min=0) @ pu + w.clamp(max=0) @ pl + b
        cols = torch.nonzero((low < 0) & (up > 0)).flatten()
        if len(cols):
            e = torch.eye(len(b), dtype=torch.float64)[cols]
            zero = torch.zeros(len(cols), dtype=torch.float64)
            low[cols] = torch.maximum(low[cols], backward(e, zero, k, bounds))
            up[cols] = torch.minimum(up[cols], -backward(-e, zero, k, bounds))
        bounds.append((low, up))
        wi, bi = layers[k]
        il, iu = intervals[-1][0].clamp(min=0), intervals[-1][1].clamp(min=0)
        intervals.append((wi.clamp(min=0) @ il + wi.clamp(max=0) @ iu + bi, wi.clamp(min=0) @ iu + wi.clamp(max=0) @ il + bi))
    k_out = layers[-1][0].shape[0]
    spec = torch.stack([torch.eye(k_out, dtype=torch.float64)[label] - torch.eye(k_out, dtype=torch.float64)[j]
                        for j in range(k_out) if j != label])
    crown = backward(spec.clone(), torch.zeros(len(spec), dtype=torch.float64), len(layers) - 1, bounds)
    # IBP, the last layer folded into the margins (the input box for L2 is the ball's box)
    w, b = layers[-1]
    a, c = spec @ w, spec @ b
    if len(layers) == 1:
        return torch.maximum(crown, minimum(a, c))
    pl, pu = intervals[-1][0].clamp(min=0), intervals[-1][1].clamp(min=0)
    ibp = c + a.clamp(min=0) @ pl + a.clamp(max=0) @ pu
    return torch.maximum(crown, ibp)


def mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.ReLU(),
                               torch.nn.Linear(12, 9), torch.nn.ReLU(), torch.nn.Linear(9, 4)).double().eval()


def conv_net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(3, 4, 3),
                               torch.nn.ReLU(), torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 8),
                               torch.nn.ReLU(), torch.nn.Linear(8, 5)).double().eval()


def maxpool_net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(18, 6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 3)).double().eval()


def strided_net(seed):  # stride, grouped and dilated convolutions: their adjoints in the backward pass
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 4, 2, groups=2), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 2, 2, padding=1, dilation=2), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3)).double().eval()


NETS = [(mlp, (6,)), (conv_net, (1, 6, 6)), (maxpool_net, (1, 6, 6)), (strided_net, (1, 6, 6))]


@pytest.mark.parametrize("build, shape", NETS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_crown_equals_the_one_sample_reference(build, shape, norm, seed):
    net = build(seed)
    layers = network_layers(net, shape)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(8, *shape, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        labels = net(x).argmax(1)
    flat = x.reshape(8, -1)
    # eps from "all stable" to "most ReLUs unstable", one per sample, so the batch mixes counts
    eps = torch.tensor([0.0, 0.002, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4], dtype=torch.float64)
    if norm == "l2":
        eps = eps * 2
    ones = torch.ones(flat.shape[1], dtype=torch.float64)
    lo = hi = None
    if norm == "linf":
        lo, hi = torch.zeros_like(ones), ones.clone()
    low = margin_bounds(layers, flat, labels, eps, norm, ones, lo, hi)
    expected = torch.stack([reference_crown(layers, flat[i], int(labels[i]), float(eps[i]), norm, lo, hi)
                            for i in range(8)])
    torch.testing.assert_close(low, expected, atol=1e-5, rtol=0)
    # eps 0: the exact margins; the largest eps: far below them (ReLUs unstable, the relaxation at work)
    with torch.no_grad():
        z = net(x)
    margins = z.gather(1, labels[:, None]) - z
    margins = margins[torch.ones_like(z, dtype=torch.bool).scatter(1, labels[:, None], False)].reshape(8, -1)
    torch.testing.assert_close(low[0], margins[0], atol=1e-8, rtol=0)
    assert (low[-1] < margins[-1] - 1e-3).all()


def test_a_samples_bounds_do_not_depend_on_its_batch():
    net = conv_net(3)
    layers = network_layers(net, (1, 6, 6))
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(24, 36, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        labels = net(x.reshape(-1, 1, 6, 6)).argmax(1)
    eps = torch.linspace(0.0, 0.5, 24, dtype=torch.float64)
    ones = torch.ones(36, dtype=torch.float64)

    def bounds(batch):
        return torch.cat([margin_bounds(layers, x[s:s + batch], labels[s:s + batch], eps[s:s + batch], "linf", ones,
                                        0 * ones, ones) for s in range(0, 24, batch)])
    whole = bounds(24)
    torch.testing.assert_close(bounds(1), whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(bounds(5), whole, atol=1e-12, rtol=0)
    # and CROWN's verdicts through the certifier are the same whatever its batch size
    verdicts = [CROWN("linf", bounds=(0.0, 1.0), batch_size=b).verified(net, x.reshape(-1, 1, 6, 6).numpy(),
                                                                        labels.numpy(), 0.1) for b in (1, 7)]
    np.testing.assert_array_equal(verdicts[0], verdicts[1])
