"""The PriCheXy-Net deformation operator.

``x_anon = grid_sample(x, I - G_sigma * (mu * tanh(U(x))))`` with border padding and ``align_corners=True``.

Why the smoothing is applied to the displacement only: then ``mu = 0`` gives exactly the identity grid and the
displacement is bounded by ``mu`` (``|tanh| < 1`` and a normalised, non-negative Gaussian kernel cannot enlarge a
bound), so ``mu`` is a privacy knob with a known worst-case pixel shift ``mu * (size - 1) / 2``.  The original code
smoothed the *whole* grid with a zero-padded convolution, which pulls the grid towards zero near the image border
(a shrink of the border even at ``mu = 0``); an independent reproduction found that this artefact contributed to
the privacy effect.  It is kept as ``smooth_whole_grid=True`` so that the two can be compared.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(sigma: float, size: int | None = None) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (sums to 1), odd size ``2 * ceil(3 sigma) + 1`` unless given."""
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size % 2 == 0:
        raise ValueError("kernel size must be odd")
    ax = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    k = torch.outer(g, g)
    return k / k.sum()


def smooth(field: torch.Tensor, sigma: float, pad_mode: str = "replicate") -> torch.Tensor:
    """Gaussian-smooth each channel of ``field`` (N, C, H, W).

    ``replicate`` padding keeps a constant field constant, so the bound on the displacement holds at the border
    too; ``zeros`` padding reproduces the original operator's border behaviour.
    """
    if sigma <= 0:
        return field
    k = gaussian_kernel(sigma).to(field)
    c = field.shape[1]
    weight = k.expand(c, 1, *k.shape).contiguous()
    r = k.shape[-1] // 2
    if pad_mode == "zeros":
        return F.conv2d(field, weight, padding=r, groups=c)
    return F.conv2d(F.pad(field, (r, r, r, r), mode=pad_mode), weight, groups=c)


def identity_grid(n: int, h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The sampling grid (N, H, W, 2) that ``grid_sample(..., align_corners=True)`` maps to the input itself."""
    theta = torch.eye(2, 3, dtype=dtype, device=device).unsqueeze(0).expand(n, 2, 3)
    return F.affine_grid(theta, [n, 1, h, w], align_corners=True)


def displacement(raw: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """The displacement field (N, 2, H, W) in normalised units: ``G_sigma * (mu * tanh(raw))``; ``|d| <= mu``."""
    return smooth(mu * torch.tanh(raw), sigma, "replicate")


def warp(x: torch.Tensor, raw: torch.Tensor, mu: float, sigma: float,
         smooth_whole_grid: bool = False) -> torch.Tensor:
    """Deform images ``x`` (N, 1, H, W) by the unbounded network output ``raw`` (N, 2, H, W).

    ``smooth_whole_grid=False`` (default): ``I - G_sigma * (mu tanh(raw))``; ``mu = 0`` is exactly the identity.
    ``smooth_whole_grid=True``: the original operator, ``G_sigma * (I - mu tanh(raw))`` with zero padding.
    """
    n, _, h, w = x.shape
    grid = identity_grid(n, h, w, x.device, x.dtype)
    if smooth_whole_grid:
        full = grid.permute(0, 3, 1, 2) - mu * torch.tanh(raw)
        grid = smooth(full, sigma, "zeros").permute(0, 2, 3, 1)
    else:
        grid = grid - displacement(raw, mu, sigma).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def max_pixel_displacement(mu: float, size: int) -> float:
    """Worst-case shift in pixels of the default operator: one normalised unit is ``(size - 1) / 2`` pixels."""
    return mu * (size - 1) / 2


def measured_displacement_px(raw: torch.Tensor, mu: float, sigma: float) -> tuple[float, float]:
    """(mean, max) Euclidean displacement in pixels actually produced by ``raw``."""
    d = displacement(raw, mu, sigma)
    h, w = d.shape[-2:]
    px = torch.stack([d[:, 0] * (w - 1) / 2, d[:, 1] * (h - 1) / 2], 1)
    mag = px.pow(2).sum(1).sqrt()
    return float(mag.mean()), float(mag.max())


def warp_by(x: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
    """Deform images ``x`` (N, 1, H, W) by a given displacement (N, 2, H, W) in normalised units (border padding)."""
    n, _, h, w = x.shape
    grid = identity_grid(n, h, w, x.device, x.dtype) - disp.permute(0, 2, 3, 1).to(x)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def displacement_px(disp: torch.Tensor) -> tuple[float, float]:
    """(mean, max) Euclidean length in pixels of a normalised displacement (N, 2, H, W)."""
    h, w = disp.shape[-2:]
    px = torch.stack([disp[:, 0] * (w - 1) / 2, disp[:, 1] * (h - 1) / 2], 1)
    mag = px.pow(2).sum(1).sqrt()
    return float(mag.mean()), float(mag.max())
