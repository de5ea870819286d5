"""The shipped lung-field model and the cheap image check built on it.

Why an image check at all: a CR/DX header often leaves Body Part Examined or View Position empty (every chest CR of
``../shared/corpora`` has no View Position).  Guessing "chest" let a knee be warped and labelled 113102; guessing
"not chest" would release chest images the user asked to clean.  So where the header cannot tell, the image decides:

1. the aspect ratio must be one of a chest film's (portrait 14x17 to landscape 17x14, with margin);
2. the lung segmentation U-Net (``data/lungs_cxr128.pt``, trained by ``medveil cxr train-lungs`` on the lung
   masks of the ieee8023 images) must find lung fields covering a plausible part of the image, on *both* sides of
   the midline, with a dip between them in the column profile of the mask (frontal lungs are separated by the
   mediastinum; a lateral view has one field across the middle), centred in the upper two thirds of the image.

The thresholds are in :data:`LIMITS` and were set on images the anonymiser was not tuned to (the chest and
non-chest CR/DX of pydicom-data, deid-data and ``../shared/corpora``); ``docs/cxr.md`` gives the numbers.  The check
runs on the display view (``intensity``) at 128x128 and costs one small U-Net pass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medveil.cxr.applicable import Decision

log = logging.getLogger(__name__)

LUNG_MODEL = Path(__file__).with_name("data") / "lungs_cxr128.pt"
SIZE = 128
LIMITS: dict[str, Any] = {
    "aspect": (0.7, 1.45),  # rows / columns
    "fraction": (0.08, 0.7),  # lung pixels / image pixels
    "balance": 0.3,  # the smaller side's share of the lung pixels, at least
    "dip": 0.5,  # the column profile's minimum near the midline / the smaller side's peak, at most
    "centre_row": (0.25, 0.7),  # the lung pixels' mean row / image height
}


def load_lung_model(path: Path | str | None = None):
    """The lung segmentation U-Net (eval mode) from ``path`` (default: the shipped one)."""
    import torch

    from medveil.cxr.models import UNet
    from medveil.errors import MedveilError

    path = Path(path) if path is not None else LUNG_MODEL
    if not path.is_file():
        raise MedveilError("no lung-field model for the image check")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = UNet(1, 1, int(ckpt["base"]), int(ckpt["depth"]))
    model.load_state_dict({k: v.float() for k, v in ckpt["state"].items()})
    return model.eval()


_MODEL = None


def _shipped():
    global _MODEL
    if _MODEL is None:
        _MODEL = load_lung_model()
    return _MODEL


def lung_mask(view: np.ndarray, model=None) -> np.ndarray:
    """The predicted lung mask (128x128, bool) of a view (H, W) in [0, 1]."""
    import torch
    import torch.nn.functional as F

    model = model or _shipped()
    x = torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))[None, None]
    x = F.interpolate(x, size=(SIZE, SIZE), mode="area")
    with torch.no_grad():
        return (model(x)[0, 0] > 0).numpy()


def lung_field_stats(mask: np.ndarray) -> dict[str, float]:
    """The numbers the check compares with :data:`LIMITS`.

    ``dip``: the mask's column sums (smoothed over 5 columns), their minimum in the central quarter of the columns
    divided by the smaller of the two sides' maxima.  Near 0 for two lung fields, near 1 for one field across the
    middle.  (A plain "share of lung pixels on the midline" failed a quarter of the clinical AP images, where the
    model bleeds over the mediastinum; the dip survives that.)
    """
    h, w = mask.shape
    total = float(mask.sum())
    if total == 0:
        return {"fraction": 0.0, "balance": 0.0, "dip": 1.0, "centre_row": 0.0}
    left, right = float(mask[:, : w // 2].sum()), float(mask[:, w // 2:].sum())
    col = np.convolve(mask.sum(0).astype(np.float64), np.ones(5) / 5, mode="same")
    centre = col[int(0.38 * w):int(0.62 * w) + 1].min()
    side = min(col[int(0.05 * w):w // 2].max(), col[w // 2:int(0.95 * w)].max())
    rows = np.nonzero(mask)[0]
    return {"fraction": round(total / mask.size, 4), "balance": round(min(left, right) / total, 4),
            "dip": round(float(centre / side) if side > 0 else 1.0, 4),
            "centre_row": round(float(rows.mean()) / h, 4)}


def lung_field_check(view: np.ndarray, model=None) -> Decision:
    """Does this view look like a frontal chest radiograph?  A ``Decision`` by "image" with its numbers."""
    h, w = view.shape
    aspect = h / w
    details = {"aspect": round(aspect, 3)}
    lo, hi = LIMITS["aspect"]
    if not lo <= aspect <= hi:
        return Decision(False, "image", "aspect ratio unlike a chest film", details)
    stats = lung_field_stats(lung_mask(view, model))
    details.update(stats)
    f_lo, f_hi = LIMITS["fraction"]
    c_lo, c_hi = LIMITS["centre_row"]
    if not f_lo <= stats["fraction"] <= f_hi:
        return Decision(False, "image", "no lung fields of a chest radiograph found", details)
    if stats["balance"] < LIMITS["balance"] or stats["dip"] > LIMITS["dip"]:
        return Decision(False, "image", "lung fields not on both sides of the midline (not a frontal view)", details)
    if not c_lo <= stats["centre_row"] <= c_hi:
        return Decision(False, "image", "lung fields not where a frontal chest radiograph has them", details)
    return Decision(True, "image", "two lung fields found (frontal chest radiograph)", details)


def train_lung_model(ds, train_idx: np.ndarray, val_idx: np.ndarray, *, epochs: int = 20, base: int = 8,
                     seed: int = 0, batch: int = 16, lr: float = 1e-3, on_epoch=lambda: None):
    """A lung U-Net on the images with masks (BCE + soft Dice), with augmentation for other sources than the
    training images: random contrast (gamma), brightness, translation and scale.  No left-right flip: it would
    teach nothing about the heart side the check does not need, and real frontal images are not mirrored.
    Keeps the epoch with the best validation Dice."""
    import copy

    import torch

    from medveil.cxr import metrics as M
    from medveil.cxr.models import UNet
    from medveil.cxr.train import segmentation_loss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_idx = train_idx[ds.has_mask[train_idx]]
    val_idx = val_idx[ds.has_mask[val_idx]]
    model = UNet(1, 1, base, 3)
    opt = torch.optim.Adam(model.parameters(), lr)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train_idx))
        for s in range(0, len(order), batch):
            idx = train_idx[order[s:s + batch]]
            x = torch.from_numpy(ds.images[idx])
            y = torch.from_numpy(ds.masks[idx])
            x, y = _augment_pair(x, y, rng)
            loss = segmentation_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = (model(torch.from_numpy(ds.images[val_idx])) > 0).float().numpy()
        score = M.dice(pred, ds.masks[val_idx])
        log.info("lung model epoch %d val Dice %.3f", epoch, score)
        on_epoch()
        if score >= best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), best


def _augment_pair(x, y, rng: np.random.Generator):
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    gamma = torch.from_numpy(rng.uniform(0.6, 1.6, (n, 1, 1, 1)).astype(np.float32))
    gain = torch.from_numpy(rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 1, 1, 1)).astype(np.float32))
    x = (x.clamp(0, 1) ** gamma * gain + bias).clamp(0, 1)
    scale = rng.uniform(0.85, 1.15, n)
    shift = rng.uniform(-0.1, 0.1, (n, 2))
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    y = (F.grid_sample(y, grid, padding_mode="zeros", align_corners=False) > 0.5).float()
    return x, y


def save_lung_model(model, path: Path, extra: dict | None = None) -> None:
    """Half-precision weights (the check thresholds a logit; float16 changes no decision at this size)."""
    import torch

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"base": model.head.in_channels, "depth": len(model.up), "state": state, **(extra or {})}, path)
