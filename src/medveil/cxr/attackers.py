"""A learned linkage attacker made of what can be had offline: a metric-learning embedding network trained on
(anonymised, real) pairs produced with the defence itself.

Why this attacker and not the Siamese network of ``models``:

- The threat is linkage: a published anonymised image against a real image of the same patient held elsewhere.  The
  generator is public (it ships with medveil), so an attacker can anonymise real images of their own and train on
  exactly the pairs they will face: anonymised on one side, real on the other.  The first protocol trained on
  (anonymised, anonymised) pairs and tested on (anonymised, real) ones.
- Metric learning (an L2-normalised embedding, cosine similarity, an in-batch InfoNCE loss: every other patient
  in the batch is a negative) uses far more negatives per step than a balanced binary pair loss, which matters
  with a few hundred training patients.
- Augmentation (small rotation, scale and translation, gamma, contrast and noise, independently on both images)
  keeps a small network from memorising exposures and positions instead of anatomy.

No pretrained weights can be had offline, so the trunk is trained from scratch; that, and a 128x128 input on a
shared 2-core CPU, are why it stays far from the 0.9+ of ImageNet-pretrained attackers on 100k+ images.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medveil.cxr import metrics as M
from medveil.cxr.data import sample_pairs
from medveil.cxr.models import Trunk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricBudget:
    epochs: int = 24
    batch: int = 32  # positive pairs per step (so 2 x batch images)
    lr: float = 1e-3
    widths: tuple[int, ...] = (16, 32, 64, 128)
    embed: int = 128
    temperature: float = 0.1
    pair_cap: int = 10

    @classmethod
    def tiny(cls) -> MetricBudget:
        return cls(epochs=3, batch=16, widths=(8, 16, 32), embed=32)


class Embedder(nn.Module):
    """Image -> unit-length embedding; two images' similarity is the dot product."""

    def __init__(self, widths: tuple[int, ...], embed: int) -> None:
        super().__init__()
        self.embed = embed
        self.trunk = Trunk(widths)
        self.head = nn.Sequential(nn.Linear(self.trunk.out_dim, self.trunk.out_dim), nn.ReLU(inplace=True),
                                  nn.Linear(self.trunk.out_dim, embed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.trunk(x)), dim=1)


def augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Per-image random similarity transform (+-6 degrees, scale 0.9-1.1, shift +-6%), gamma, contrast, noise."""
    n = x.shape[0]
    ang = np.radians(rng.uniform(-6, 6, n))
    sc = rng.uniform(0.9, 1.1, n)
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = np.cos(ang) / sc
    theta[:, 0, 1] = -np.sin(ang) / sc
    theta[:, 1, 0] = np.sin(ang) / sc
    theta[:, :, 2] = rng.uniform(-0.06, 0.06, (n, 2))
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    gamma = torch.from_numpy(rng.uniform(0.75, 1.33, (n, 1, 1, 1)).astype(np.float32))
    gain = torch.from_numpy(rng.uniform(0.85, 1.15, (n, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32))
    noise = torch.from_numpy(rng.normal(0, 0.01, x.shape).astype(np.float32))
    return ((x.clamp(0, 1) ** gamma) * gain + bias + noise).clamp(0, 1)


@torch.no_grad()
def embed_all(model: Embedder, images: np.ndarray, batch: int = 128) -> np.ndarray:
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(images[i:i + batch]))).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.embed), np.float32)


def pair_similarity(model: Embedder, published: np.ndarray, real: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``published[i]`` and ``real[j]`` for each pair (only the images used are embedded)."""
    a_idx, b_idx = np.unique(pairs[:, 0]), np.unique(pairs[:, 1])
    ea = dict(zip(a_idx.tolist(), embed_all(model, published[a_idx]), strict=True))
    eb = dict(zip(b_idx.tolist(), embed_all(model, real[b_idx]), strict=True))
    return np.array([float(ea[i] @ eb[j]) for i, j in pairs[:, :2]])


def train_metric_attacker(published: np.ndarray, real: np.ndarray, patients: np.ndarray, sources: np.ndarray,
                          train_idx: np.ndarray, val_pairs: np.ndarray, budget: MetricBudget, seed: int) -> Embedder:
    """Train on (``published[i]``, ``real[j]``) positive pairs of training patients, in-batch negatives; keep the
    epoch with the best AUC on ``val_pairs`` scored the same way."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Embedder(budget.widths, budget.embed)
    opt = torch.optim.AdamW(model.parameters(), budget.lr, weight_decay=1e-4)
    steps = max(1, budget.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * e / steps)))
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(budget.epochs):
        pairs = sample_pairs(train_idx, patients, sources, rng, budget.pair_cap)
        pos = pairs[pairs[:, 2] == 1]
        # both directions are in ``pos`` already (ordered pairs): published anchor, real partner
        model.train()
        order = rng.permutation(len(pos))
        for s in range(0, len(order), budget.batch):
            p = pos[order[s:s + budget.batch]]
            if len(p) < 2:
                continue
            a = augment(torch.from_numpy(published[p[:, 0]]), rng)
            b = augment(torch.from_numpy(real[p[:, 1]]), rng)
            ea, eb = model(a), model(b)
            logits = ea @ eb.T / budget.temperature
            same = torch.from_numpy(patients[p[:, 0]][:, None] == patients[p[:, 1]][None, :])
            eye = torch.eye(len(p), dtype=torch.bool)
            logits = logits.masked_fill(same & ~eye, float("-inf"))  # another image of the same patient: no negative
            target = torch.arange(len(p))
            loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        score = M.auc(val_pairs[:, 2], pair_similarity(model, published, real, val_pairs))
        log.info("metric attacker epoch %d val AUC %.3f", epoch, score)
        if score >= best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()
