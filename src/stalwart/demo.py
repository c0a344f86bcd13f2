"""The demo: two built-in models scanned end to end, for `stalwart demo` / `make demo`.

- a scikit-learn Pipeline (StandardScaler + LogisticRegression) on breast_cancer, white-box
  through its exact torch mirror;
- a small PyTorch CNN on the 8x8 digits images, trained here in a few seconds on the CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn


def train_tabular_model(seed: int = 0):
    """A StandardScaler + LogisticRegression pipeline fitted on breast_cancer's training split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from stalwart import datasets

    train, test = datasets.load_split("breast_cancer", seed=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(train.x, train.y)
    return model, test


class DigitsCNN(nn.Module):
    """A small CNN for 1 x 8 x 8 images: two conv layers and a linear head."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_image_model(seed: int = 0, epochs: int = 30):
    """A DigitsCNN trained on digits' training split with Adam; returns (module, test Dataset)."""
    from stalwart import datasets

    train, test = datasets.load_split("digits", seed=seed)
    torch.manual_seed(seed)
    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.as_tensor(train.x, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    return net, test


def run_demo(out: str | Path, *, suite: str = "quick", seed: int = 0,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, object]:
    """Train both demo models, scan them and save one report each under ``out``.

    Beside each report go the model and its test data, so the scan can be repeated from the
    command line: ``breast_cancer/model.skops`` with ``breast_cancer/test.csv`` (label column
    ``label``) and ``digits/model.pt`` (TorchScript) with ``digits/test.npz``.

    Returns ``{"breast_cancer": Report, "digits": Report}``.
    """
    from stalwart import scan

    out = Path(out)
    reports = {}
    tab_model, tab_test = train_tabular_model(seed)
    reports["breast_cancer"] = scan(tab_model, tab_test, suite=suite, seed=seed, progress=progress)
    img_model, img_test = train_image_model(seed)
    reports["digits"] = scan(img_model, img_test, suite=suite, seed=seed, progress=progress)
    for name, report in reports.items():
        report.save(out / name)
    save_models(out, tab_model, tab_test, img_model, img_test)
    return reports


def save_models(out: Path, tab_model, tab_test, img_model, img_test) -> None:  # noqa: ANN001 - see run_demo
    """The demo's models and test data in the formats `stalwart scan` loads without --trust."""
    import skops.io as sio

    from stalwart._io import atomic_write

    with atomic_write(out / "breast_cancer" / "model.skops") as tmp:
        sio.dump(tab_model, tmp)
    with atomic_write(out / "breast_cancer" / "test.csv") as tmp:
        tab_test.x.assign(label=tab_test.y).to_csv(tmp, index=False)
    with atomic_write(out / "digits" / "model.pt") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream, still widely shipped
        torch.jit.save(torch.jit.script(img_model), str(tmp))
    with atomic_write(out / "digits" / "test.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, x=img_test.x, y=np.asarray(img_test.y))
