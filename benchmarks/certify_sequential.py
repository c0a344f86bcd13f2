"""Sequential vs fixed-n randomized-smoothing certification on a digits MLP (docs/certify.md).

Trains a 64-128-10 MLP with Gaussian noise (sigma 0.25) on 1,500 digits, then certifies 200 held-out
digits at sigma 0.25, n = 10,000, alpha 0.001, with and without ``sequential=True``, for several
target radii, and prints the copies used and the certified accuracy at the target.

    .venv/bin/python benchmarks/certify_sequential.py
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from stalwart.certify import RandomizedSmoothing


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.tensor(x[:1500]), torch.tensor(y[:1500])
    g = torch.Generator().manual_seed(0)
    for _ in range(60):  # Gaussian-noise training so that smoothing at sigma 0.25 is useful
        perm = torch.randperm(1500, generator=g)
        for i in range(0, 1500, 100):
            b = perm[i:i + 100]
            noisy = xt[b] + 0.25 * torch.randn(len(b), 64, generator=g)
            loss = torch.nn.functional.cross_entropy(net(noisy), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    xs, ys = x[1500:1700], y[1500:1700]
    fixed = RandomizedSmoothing(0.25, n=10_000).certify(net, xs, ys)
    for target in (0.0, 0.25, 0.5):
        seq = RandomizedSmoothing(0.25, n=10_000, sequential=True, target_radius=target).certify(net, xs, ys)
        used = seq.details["n_used"]
        agree = np.mean((fixed.correct & (fixed.radius >= target)) == (seq.correct & (seq.radius >= target)))
        print(f"target {target}: copies mean {used.mean():.0f} ({used.mean() / 1e4:.1%}) median {np.median(used):.0f}; "
              f"queries ratio {seq.queries / fixed.queries:.3f}; certified acc at target fixed "
              f"{fixed.certified_accuracy(target):.3f} sequential {seq.certified_accuracy(target):.3f}; "
              f"decisions agree {agree:.3f}")


if __name__ == "__main__":
    main()
