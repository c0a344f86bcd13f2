"""A small, seeded zoo of torch classifiers for the attack benchmarks, so no figure rests on one model.

Every model is trained here in a few seconds on CPU with a fixed seed:

==========  =========================  ==============  =========================================
name        architecture               input           data
==========  =========================  ==============  =========================================
mlp32       64-32-10                   64 features     sklearn digits (8x8 flattened, [0, 1])
mlp256      64-256-256-10              64 features     digits
mlp1024     64-1024-1024-10            64 features     digits
cnn-s       2 conv (16, 32) + 2 dense  1 x 8 x 8       digits as images
cnn-m       2 conv (8, 16) + 2 dense   3 x 32 x 32     synthetic colour textures (10 classes)
mlp512-rgb  3072-512-10                3 x 32 x 32     the same synthetic textures
==========  =========================  ==============  =========================================

``mlp256`` and ``cnn-s`` have the shapes of the issue's hidden digits models (an MLP 64-256-256-10
and a 2-conv CNN); the others vary width, input size and channels. The synthetic data are smooth
random colour textures, one template per class, shifted, tinted and noised per sample; at an
eps of 4/255 about half of them withstand PGD.

    from zoo import build_zoo
    for m in build_zoo():        # ZooModel(name, net, x, y, eps, description)
        ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["ZooModel", "build_zoo", "ZOO_NAMES"]

ZOO_NAMES = ("mlp32", "mlp256", "mlp1024", "cnn-s", "cnn-m", "mlp512-rgb")


@dataclass
class ZooModel:
    name: str
    net: nn.Module
    x: torch.Tensor  # test inputs in [0, 1]
    y: torch.Tensor
    eps: float  # the linf eps the benchmarks use on this model (in the data's [0, 1] unit)
    description: str

    @property
    def x_images(self) -> torch.Tensor:
        """``x`` as N x C x H x W (flat digits as 1 x 8 x 8): torchattacks' attacks take only
        image batches; every zoo network accepts both forms (the MLPs start with a Flatten)."""
        return self.x.reshape(len(self.x), 1, 8, 8) if self.x.ndim == 2 else self.x

    @property
    def clean_accuracy(self) -> float:
        with torch.no_grad():
            return float((self.net(self.x).argmax(1) == self.y).float().mean())


def _train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 3e-3,
           seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _digits(n_test: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    import stalwart

    train, test = stalwart.datasets.load_split("digits", seed=0)
    tx = torch.as_tensor(train.x, dtype=torch.float32)
    ty = torch.as_tensor(np.asarray(train.y), dtype=torch.long)
    x = torch.as_tensor(test.x[:n_test], dtype=torch.float32)
    y = torch.as_tensor(np.asarray(test.y)[:n_test], dtype=torch.long)
    # the strides a DataLoader's batch has: the bundled digits' channel axis has stride 1, and on
    # such a batch torch runs every layer channels-last (a different speed, for every tool)
    return tx, ty, x.clone(memory_format=torch.contiguous_format), y


def textures(n: int, seed: int, *, classes: int = 10, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 3 x size x size images in [0, 1]: per class a smooth colour template (a shared base
    plus a class-specific part of amplitude 0.3), each sample rolled by up to 4 pixels, tinted
    and noised (seeded; the templates use seed 0)."""
    tmpl_gen = torch.Generator().manual_seed(0)
    coarse = torch.rand((classes, 3, 4, 4), generator=tmpl_gen)
    base = torch.rand((1, 3, 4, 4), generator=tmpl_gen)
    coarse = base + 0.3 * (coarse - 0.5)
    templates = nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    x = templates[y].clone()
    shifts = torch.randint(-4, 5, (n, 2), generator=gen)
    for i in range(n):  # data generation only, outside any timed code
        x[i] = torch.roll(x[i], shifts=(int(shifts[i, 0]), int(shifts[i, 1])), dims=(1, 2))
    x = x * (0.8 + 0.4 * torch.rand((n, 3, 1, 1), generator=gen))
    x = x + 0.1 * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1), y


class _CNN(nn.Module):
    """Two 3x3 conv layers (ReLU, one 2x2 max-pool) and two dense layers."""

    def __init__(self, channels: int, size: int, width: tuple[int, int], hidden: int) -> None:
        super().__init__()
        c1, c2 = width
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * (size // 2) ** 2, hidden), nn.ReLU(),
                                  nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def build_zoo(names: tuple[str, ...] | list[str] = ZOO_NAMES, *, n_digits: int = 500,
              n_rgb: int = 100) -> list[ZooModel]:
    """The zoo's models (in ``ZOO_NAMES`` order), trained with seed 0; test sets of ``n_digits``
    digits and ``n_rgb`` synthetic 32 x 32 images."""
    unknown = set(names) - set(ZOO_NAMES)
    if unknown:
        raise ValueError(f"unknown zoo models {sorted(unknown)}; known: {ZOO_NAMES}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread trains fastest and is immune to a busy machine
    try:
        return _build(list(names), n_digits, n_rgb)
    finally:
        torch.set_num_threads(threads)


def _build(names: list[str], n_digits: int, n_rgb: int) -> list[ZooModel]:
    out: list[ZooModel] = []
    need_digits = any(n in names for n in ("mlp32", "mlp256", "mlp1024", "cnn-s"))
    need_rgb = any(n in names for n in ("cnn-m", "mlp512-rgb"))
    if need_digits:
        tx, ty, x, y = _digits(n_digits)
        flat_tx, flat_x = tx.reshape(len(tx), -1), x.reshape(len(x), -1)
    if need_rgb:
        rx, ry = textures(2000, seed=1)
        rtx, rty = textures(n_rgb, seed=2)
    for name in ZOO_NAMES:
        if name not in names:
            continue
        torch.manual_seed(0)
        if name.startswith("mlp") and name != "mlp512-rgb":
            width = int(name[3:])
            hidden = [width] if width == 32 else [width, width]
            net = _train(_mlp([64, *hidden, 10]), flat_tx, ty, epochs=30 if width < 1024 else 10)
            out.append(ZooModel(name, net, flat_x, y, 0.1, f"MLP 64-{'-'.join(map(str, hidden))}-10, digits, "
                                "flat 64 features"))
        elif name == "cnn-s":
            net = _train(_CNN(1, 8, (16, 32), 64), tx, ty, epochs=30)
            out.append(ZooModel(name, net, x, y, 0.1, "CNN conv16-conv32-pool-fc64, digits 1x8x8"))
        elif name == "cnn-m":
            net = _train(_CNN(3, 32, (8, 16), 64), rx, ry, epochs=3)
            out.append(ZooModel(name, net, rtx, rty, 4 / 255, "CNN conv8-conv16-pool-fc64, textures 3x32x32"))
        else:
            net = _train(_mlp([3 * 32 * 32, 512, 10]), rx, ry, epochs=4, lr=1e-3)
            out.append(ZooModel(name, net, rtx, rty, 4 / 255, "MLP 3072-512-10, textures 3x32x32"))
    return out
