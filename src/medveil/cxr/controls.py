"""Comparison methods for the results table, each a function ``images (N,1,H,W) in [0,1] -> images``.

- ``random_warp``: the same operator and the same ``mu``/``sigma`` as the anonymiser, driven by random noise
  instead of a trained U-Net.  If it lowers re-identification as much as the trained model, the effect is not
  targeted (the independent reproduction of PriCheXy-Net found exactly that).
- ``dp_pix``: DP-Pix (Fan, "Image pixelization with differential privacy", DBSec 2018): average each ``b x b``
  cell, then add Laplace noise of scale ``255 m / (b^2 eps)`` to each cell value (on the 0-255 scale; here images
  are in [0, 1], so the scale is ``m / (b^2 eps)``), where ``m`` is the number of pixels two neighbouring images
  may differ in.
- ``gaussian_blur``: a plain low-pass control.
- ``phase_randomised``: the matched control for a trained field.  The old random warp pushed white noise through the
  same operator, and the smoothing attenuated it to about half the trained field's displacement, so "random does
  nothing" could mean "small does nothing".  A phase-randomised surrogate of each image's trained field has the
  same power spectrum (so the same smoothness and the same RMS displacement) and, after a per-image rescale, the
  same mean displacement, but no relation to the image: if it protects as much as the trained field, the effect is
  the displacement's size, not its targeting.
- The Privacy-Net-style generator is a trained network: ``models.DirectGenerator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medveil.cxr import warp as W


def random_warp(x: torch.Tensor, mu: float, sigma: float, generator: torch.Generator | None = None,
                scale: float = 1.0) -> torch.Tensor:
    """Warp by ``I - G_sigma * (mu tanh(scale * z))`` with ``z`` i.i.d. standard normal per pixel."""
    z = torch.randn(x.shape[0], 2, *x.shape[-2:], generator=generator).to(x)
    return W.warp(x, scale * z, mu, sigma)


def laplace_scale(b: int, eps: float, m: int = 1, max_value: float = 1.0) -> float:
    """DP-Pix noise scale for cell size ``b``, privacy ``eps`` and ``m`` pixels of difference."""
    return max_value * m / (b * b * eps)


def dp_pix(x: torch.Tensor, b: int, eps: float, m: int = 1, generator: torch.Generator | None = None,
           clip: bool = True) -> torch.Tensor:
    """Pixelise into ``b x b`` cell means plus per-cell Laplace noise; output has the input's size.

    A trailing partial cell (size not divisible by ``b``) is averaged over the pixels it has.
    """
    n, c, h, w = x.shape
    cells = F.avg_pool2d(x, b, stride=b, ceil_mode=True, count_include_pad=False)
    u = torch.rand(cells.shape, generator=generator).to(x) - 0.5
    # inverse CDF of Laplace(0, s): -s * sign(u) * log(1 - 2|u|)
    s = laplace_scale(b, eps, m)
    noise = -s * torch.sign(u) * torch.log1p(-2 * u.abs().clamp(max=0.5 - 1e-7))
    noisy = cells + noise
    out = noisy.repeat_interleave(b, 2).repeat_interleave(b, 3)[..., :h, :w]
    return out.clamp(0, 1) if clip else out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass with replicate padding."""
    return W.smooth(x, sigma, "replicate")


def phase_randomised(disp: torch.Tensor, generator: torch.Generator | None = None, scale: float = 1.0,
                     bound: float | None = None) -> torch.Tensor:
    """A random displacement (N, 2, H, W) with each image's and channel's power spectrum of ``disp``, rescaled so
    that each image's mean displacement length is ``scale`` times that of ``disp``; each component is clipped to
    ``[-bound, bound]`` when ``bound`` is given (the operator's ``mu``)."""
    h, w = disp.shape[-2:]
    spectrum = torch.fft.rfft2(disp.double())
    noise = torch.randn(disp.shape, generator=generator, dtype=torch.float64)
    phase = torch.fft.rfft2(noise)
    phase = phase / phase.abs().clamp(min=1e-12)  # white noise's phases carry the symmetry a real field needs
    out = torch.fft.irfft2(spectrum.abs() * phase, s=(h, w))
    mag_old = disp.double().pow(2).sum(1).sqrt().mean((1, 2))
    mag_new = out.pow(2).sum(1).sqrt().mean((1, 2)).clamp(min=1e-12)
    out = out * (scale * mag_old / mag_new)[:, None, None, None]
    if bound is not None:
        out = out.clamp(-bound, bound)
    return out.to(disp.dtype)
