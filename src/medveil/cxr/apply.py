"""Apply a trained anonymiser to one image of any size.

Why not just run the network on the full image: the network was trained at a fixed size (128 or 256), its
Gaussian smoothing is in pixels of that size and a CPU U-Net pass over a 3000 x 3000 radiograph is slow.  The
deformation is smooth by construction, so the field is computed at the training size from the image's display view
(``intensity``), upsampled (a convex combination, so the ``mu`` bound still holds) and used to resample the *stored
values* at full resolution: the anatomy moves exactly as it would at the training size, no detail is lost to
resizing, and no value passes through the window and back.  The Privacy-Net-style direct generator has no field;
it is run at the training size on the view, resized back and mapped to stored values through the window's inverse.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medveil.cxr import intensity as I
from medveil.cxr import warp as W
from medveil.cxr.models import Anonymiser, Generator


@torch.no_grad()
def displacement_field(gen: Anonymiser, view: np.ndarray, size: int) -> torch.Tensor:
    """The generator's displacement (1, 2, H, W) in normalised units for a view (H, W) in [0, 1]."""
    gen.eval()
    x = torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))[None, None]
    small = F.interpolate(x, size=(size, size), mode="area") if x.shape[-2:] != (size, size) else x
    cfg = gen.config
    raw = gen.raw(small)
    if cfg.get("smooth_whole_grid"):
        identity = W.identity_grid(1, size, size).permute(0, 3, 1, 2)
        disp = identity - W.smooth(identity - cfg["mu"] * torch.tanh(raw), cfg["sigma"], "zeros")
    else:
        disp = W.displacement(raw, cfg["mu"], cfg["sigma"])
    h, w = x.shape[-2:]
    if disp.shape[-2:] != (h, w):
        disp = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=True)
    return disp


@torch.no_grad()
def warp_values(values: np.ndarray, disp: torch.Tensor) -> np.ndarray:
    """Resample an (H, W) array of stored values by a displacement (1, 2, H, W): bilinear, border padding.

    float64 throughout, so 16-bit and 32-bit values are interpolated exactly before the caller rounds them.
    """
    x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))[None, None]
    h, w = x.shape[-2:]
    grid = W.identity_grid(1, h, w, dtype=torch.float64) - disp.to(torch.float64).permute(0, 2, 3, 1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0, 0].numpy()


@torch.no_grad()
def anonymise_values(gen: Generator, values: np.ndarray, window: I.Window, size: int) -> np.ndarray:
    """Stored values (H, W) -> anonymised stored values (float64, not yet rounded), within the input's range."""
    view = I.to_view(values, window)
    lo, hi = float(np.min(values)), float(np.max(values))
    if isinstance(gen, Anonymiser):  # config kind "warp"
        return np.clip(warp_values(values, displacement_field(gen, view, size)), lo, hi)
    out_view = anonymise_image(gen, view, size)
    return I.from_view(out_view, window, lo, hi)


@torch.no_grad()
def anonymise_image(gen: Generator, image: np.ndarray, size: int) -> np.ndarray:
    """A view (H, W) float in [0, 1] -> anonymised view (H, W) float in [0, 1]."""
    gen.eval()
    if isinstance(gen, Anonymiser):  # config kind "warp"
        warped = warp_values(image, displacement_field(gen, image, size))
        return np.clip(warped, 0, 1).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    small = F.interpolate(x, size=(size, size), mode="area") if x.shape[-2:] != (size, size) else x
    out = gen(small)
    if out.shape[-2:] != x.shape[-2:]:
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out[0, 0].clamp(0, 1).numpy()
