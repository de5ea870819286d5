"""The four networks of the method, all trained from scratch (no pretrained weights are available offline).

- ``UNet``: the anonymiser backbone (image -> 2-channel raw field) and, with one output channel, the lung
  segmentation network.  ``base`` features: 32 in the paper's full-size configuration, 8-16 on a CPU.
- ``Trunk``: a small strided CNN with global average pooling, shared by the attacker and the classifier.
- ``SiameseNet``: the verification attacker of Packhäuser et al. 2022: one trunk for both images -> 128-d sigmoid
  embedding -> ``|f1 - f2|`` -> one logit (same patient), trained with BCE.
- ``Classifier``: multi-label finding classifier (one logit per label, BCE).
- ``Anonymiser``: U-Net + the deformation operator of ``warp``; ``mu`` and ``sigma`` are stored with the weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medveil.cxr import warp as W


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A plain U-Net (``depth`` poolings, channels doubling); input size must be divisible by ``2**depth``."""

    def __init__(self, cin: int = 1, cout: int = 2, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(cin, chans[0])] + [_block(chans[i], chans[i + 1]) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_block(2 * chans[i], chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)


class Trunk(nn.Module):
    """A ResNet-style stem (5x5 stride-2 conv + max-pool: a quarter of the resolution at once, which keeps the
    CPU configuration affordable) followed by strided conv blocks, then global average pooling."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 5, stride=2, padding=2), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = widths[0]
        for w in widths[1:]:
            layers += [nn.Conv2d(cin, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean((2, 3))


class SiameseNet(nn.Module):
    """Verification attacker: logit that two images show the same patient."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128), embed: int = 128) -> None:
        super().__init__()
        self.trunk = Trunk(widths)
        self.embed = nn.Sequential(nn.Linear(self.trunk.out_dim, embed), nn.Sigmoid())
        self.head = nn.Linear(embed, 1)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.trunk(x))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.head((self.embedding(x1) - self.embedding(x2)).abs()).squeeze(1)


class Classifier(nn.Module):
    """Multi-label finding classifier: one logit per label."""

    def __init__(self, n_labels: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.trunk = Trunk(widths)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.trunk.out_dim, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


class Generator(nn.Module):
    """What every anonymiser carries: ``config`` rebuilds it (:func:`build_generator`); ``train_size``, the image
    size it was trained at, is set from the checkpoint by ``dicom.load_model``."""

    config: dict[str, Any]
    train_size: int


class Anonymiser(Generator):
    """PriCheXy-Net generator: ``x -> warp(x, U(x); mu, sigma)``.

    The U-Net starts from a random initialisation (a random smooth warp of at most ``mu``); the identity
    pre-training of ``train`` brings it to (near) the identity before the adversarial phase, as in the paper.
    """

    def __init__(self, mu: float = 0.01, sigma: float = 2.0, base: int = 16, depth: int = 3,
                 smooth_whole_grid: bool = False) -> None:
        super().__init__()
        self.unet = UNet(1, 2, base, depth)
        self.mu = mu
        self.sigma = sigma
        self.smooth_whole_grid = smooth_whole_grid
        self.config = {"kind": "warp", "mu": mu, "sigma": sigma, "base": base, "depth": depth,
                       "smooth_whole_grid": smooth_whole_grid}

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return W.warp(x, self.raw(x), self.mu, self.sigma, self.smooth_whole_grid)


class DirectGenerator(Generator):
    """Privacy-Net-style generator: the U-Net outputs the anonymised image itself (residual, clamped to [0, 1]).

    Unlike the warp it is not constrained to move pixels, so it can erase texture; this is the comparison the
    PriCheXy-Net paper makes (Privacy-Net reached chance-level re-identification at a large loss of utility).
    The last layer starts at zero (an identity residual), because a random direct generator destroys the image and
    the short CPU identity pre-training would not always recover it.
    """

    def __init__(self, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.unet = UNet(1, 1, base, depth)
        nn.init.zeros_(self.unet.head.weight)
        assert self.unet.head.bias is not None  # nn.Conv2d's default bias=True
        nn.init.zeros_(self.unet.head.bias)
        self.config = {"kind": "direct", "base": base, "depth": depth}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.unet(x)).clamp(0, 1)


def build_generator(config: dict) -> Generator:
    """Rebuild an anonymiser from the ``config`` stored beside its weights."""
    if config["kind"] == "warp":
        return Anonymiser(config["mu"], config["sigma"], config["base"], config["depth"],
                          config.get("smooth_whole_grid", False))
    if config["kind"] == "direct":
        return DirectGenerator(config["base"], config["depth"])
    raise ValueError(f"unknown generator kind {config['kind']!r}")
