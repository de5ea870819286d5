"""Apply a trained anonymiser to one image of any size.

Why not just run the network on the full image: the network was trained at a fixed size (128 or 256), its
Gaussian smoothing is in pixels of that size and a CPU U-Net pass over a 3000 x 3000 radiograph is slow.  The
deformation is smooth by construction, so the field is computed at the training size, upsampled (a convex
combination, so the ``mu`` bound still holds) and used to resample the image at full resolution: the anatomy
moves exactly as it would at the training size, and no detail is lost to resizing.  The Privacy-Net-style direct
generator has no field; it is run at the training size and resized back.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medveil.cxr import warp as W


@torch.no_grad()
def anonymise_image(gen: torch.nn.Module, image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H, W) float in [0, 1] -> anonymised (H, W) float in [0, 1]."""
    gen.eval()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    small = F.interpolate(x, size=(size, size), mode="area") if x.shape[-2:] != (size, size) else x
    if gen.config["kind"] != "warp":
        out = gen(small)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out[0, 0].clamp(0, 1).numpy()
    cfg = gen.config
    raw = gen.raw(small)
    h, w = x.shape[-2:]
    grid = W.identity_grid(1, h, w)
    if cfg.get("smooth_whole_grid"):
        full = W.identity_grid(1, size, size).permute(0, 3, 1, 2) - cfg["mu"] * torch.tanh(raw)
        new = W.smooth(full, cfg["sigma"], "zeros")
        disp = W.identity_grid(1, size, size).permute(0, 3, 1, 2) - new
    else:
        disp = W.displacement(raw, cfg["mu"], cfg["sigma"])
    if disp.shape[-2:] != (h, w):
        disp = F.interpolate(disp, size=(h, w), mode="bilinear", align_corners=True)
    out = F.grid_sample(x, grid - disp.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[0, 0].clamp(0, 1).numpy()
