"""Training loops.  Every network is trained from scratch on the CPU or GPU given; each loop keeps the weights of
the epoch with the best validation score (loss for the anonymiser, as the issue asks; AUC or Dice for the others).

The anonymiser is trained as in PriCheXy-Net:

1. identity pre-training of the U-Net (MSE between ``x_anon`` and ``x``);
2. adversarial training with ``L = w_u BCE(classifier(x_anon), y) + w_p mean(-log(1 - sigmoid(SNN(x_anon, x2))))``
   where ``x2`` is another (real) image of the same patient, so that the generator pushes same-patient pairs
   towards "different"; after each generator step the SNN (on anonymised/real pairs, balanced) and the classifier
   (on anonymised images) are updated too, so the generator always faces an adapted attacker.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medveil.cxr import metrics as M
from medveil.cxr.data import Dataset, sample_pairs
from medveil.cxr.models import Anonymiser, Classifier, DirectGenerator, Generator, SiameseNet, UNet

log = logging.getLogger(__name__)


@dataclass
class Budget:
    """Epochs and sizes; ``cpu()`` is the 128x128 configuration, ``tiny()`` the one for tests."""

    clf_epochs: int = 15
    seg_epochs: int = 6
    snn_epochs: int = 10
    pre_epochs: int = 2
    adv_epochs: int = 5
    batch: int = 32
    lr: float = 1e-3
    unet_base: int = 8
    seg_base: int = 8
    widths: tuple[int, ...] = (16, 32, 64, 128)
    pair_cap: int = 10
    w_u: float = 1.0
    w_p: float = 1.0

    @classmethod
    def cpu(cls) -> Budget:
        return cls()

    @classmethod
    def gpu(cls) -> Budget:
        return cls(clf_epochs=40, seg_epochs=30, snn_epochs=40, pre_epochs=10, adv_epochs=30, unet_base=32,
                   seg_base=16, widths=(32, 64, 128, 256))

    @classmethod
    def tiny(cls) -> Budget:
        return cls(clf_epochs=3, seg_epochs=2, snn_epochs=6, pre_epochs=1, adv_epochs=1, batch=16, unet_base=4,
                   seg_base=4, widths=(8, 16, 32))


def _t(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _chunks(n: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + size] for i in range(0, n, size)]


@torch.no_grad()
def apply(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: str = "cpu",
          batch: int = 64) -> np.ndarray:
    """Run an image -> image function (a network in eval mode or a control) over an array, batch by batch."""
    if isinstance(fn, torch.nn.Module):
        fn.eval()
    out = [fn(_t(images[i:i + batch], device)).float().cpu().numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.float32) if out else images[:0]


# ------------------------------------------------------------------------------------------------ classifier

def _masked_bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    known = ~torch.isnan(y)
    if not known.any():
        return logits.sum() * 0
    return F.binary_cross_entropy_with_logits(logits[known], y[known])


@torch.no_grad()
def predict_labels(model: Classifier, images: np.ndarray, device: str = "cpu") -> np.ndarray:
    return apply(lambda x: torch.sigmoid(model(x)), images, device)


def train_classifier(ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, budget: Budget, seed: int,
                     device: str = "cpu", on_epoch: Callable[[], None] = lambda: None) -> Classifier:
    """Multi-label finding classifier on real images (masked BCE; ``NaN`` labels are ignored)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Classifier(ds.labels.shape[1], budget.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), budget.lr, weight_decay=1e-4)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(budget.clf_epochs):
        model.train()
        for b in _chunks(len(train_idx), budget.batch, rng):
            idx = train_idx[b]
            x = _augment(_t(ds.images[idx], device), rng)
            loss = _masked_bce(model(x), _t(ds.labels[idx], device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = M.mean_label_auc(ds.labels[val_idx], predict_labels(model, ds.images[val_idx], device))
        log.info("classifier epoch %d val mean AUC %.3f", epoch, score)
        on_epoch()
        if score >= best or not np.isfinite(best):
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


def _augment(x: torch.Tensor, rng: np.random.Generator, shift: int = 4) -> torch.Tensor:
    """A random translation of up to ``shift`` pixels (replicate border) per batch: cheap, keeps anatomy."""
    dy, dx = (int(v) for v in rng.integers(-shift, shift + 1, 2))
    if dy == 0 and dx == 0:
        return x
    p = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    h, w = x.shape[-2:]
    return p[..., shift + dy:shift + dy + h, shift + dx:shift + dx + w]


# ---------------------------------------------------------------------------------------------- segmentation

def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (smoothed by 1): what the segmenter and the lung model train on."""
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * masks).sum() + 1) / (p.sum() + masks.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, masks) + dice


@torch.no_grad()
def predict_masks(model: UNet, images: np.ndarray, device: str = "cpu") -> np.ndarray:
    return apply(lambda x: (model(x) > 0).float(), images, device)


def train_segmenter(ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, budget: Budget, seed: int,
                    device: str = "cpu") -> UNet:
    """Lung segmentation U-Net on the images that have masks (BCE + soft Dice); best validation Dice kept."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if ds.has_mask is None or ds.masks is None:
        raise ValueError("the segmenter is trained on images with lung masks; this data set has none")
    has_mask, masks = ds.has_mask, ds.masks
    train_idx = train_idx[has_mask[train_idx]]
    val_idx = val_idx[has_mask[val_idx]]
    model = UNet(1, 1, budget.seg_base, 3).to(device)
    opt = torch.optim.Adam(model.parameters(), budget.lr)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(budget.seg_epochs):
        model.train()
        for b in _chunks(len(train_idx), budget.batch, rng):
            idx = train_idx[b]
            x, y = _t(ds.images[idx], device), _t(masks[idx], device)
            loss = segmentation_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = M.dice(predict_masks(model, ds.images[val_idx], device), masks[val_idx])
        log.info("segmenter epoch %d val Dice %.3f", epoch, score)
        if score >= best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


# --------------------------------------------------------------------------------------------------- attacker

@torch.no_grad()
def pair_scores(model: SiameseNet, a: np.ndarray, b: np.ndarray, pairs: np.ndarray, device: str = "cpu",
                batch: int = 64) -> np.ndarray:
    """Same-patient probability for each pair: first image from ``a``, second from ``b``."""
    model.eval()
    out = []
    for s in range(0, len(pairs), batch):
        p = pairs[s:s + batch]
        out.append(torch.sigmoid(model(_t(a[p[:, 0]], device), _t(b[p[:, 1]], device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_attacker(train_a: np.ndarray, ds: Dataset, train_idx: np.ndarray, val_a: np.ndarray,
                   val_b: np.ndarray, val_pairs: np.ndarray, budget: Budget, seed: int,
                   device: str = "cpu", on_epoch: Callable[[], None] = lambda: None) -> SiameseNet:
    """A fresh Siamese attacker trained on pairs of ``train_a`` images (both anonymised in the paper's protocol,
    real for the baseline), fresh balanced pairs each epoch; keeps the epoch with the best AUC on ``val_pairs``
    scored as ``(val_a[i], val_b[j])`` (anonymised vs real: the linkage attack)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SiameseNet(budget.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), budget.lr, weight_decay=1e-4)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(budget.snn_epochs):
        pairs = sample_pairs(train_idx, ds.patients, ds.sources, rng, budget.pair_cap)
        model.train()
        for b in _chunks(len(pairs), budget.batch, rng):
            p = pairs[b]
            x1 = _augment(_t(train_a[p[:, 0]], device), rng)
            x2 = _augment(_t(train_a[p[:, 1]], device), rng)
            loss = F.binary_cross_entropy_with_logits(model(x1, x2), _t(p[:, 2].astype(np.float32), device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = M.auc(val_pairs[:, 2], pair_scores(model, val_a, val_b, val_pairs, device))
        log.info("attacker epoch %d val AUC %.3f", epoch, score)
        on_epoch()
        if score >= best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


# ------------------------------------------------------------------------------------------------- anonymiser

def make_generator(kind: str, budget: Budget, mu: float = 0.01, sigma: float = 2.0,
                   smooth_whole_grid: bool = False) -> Generator:
    if kind == "warp":
        return Anonymiser(mu, sigma, budget.unet_base, 3, smooth_whole_grid)
    if kind == "direct":
        return DirectGenerator(budget.unet_base, 3)
    raise ValueError(f"unknown generator kind {kind!r}")


def train_anonymiser(ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, classifier: Classifier,
                     attacker: SiameseNet, budget: Budget, seed: int, kind: str = "warp", mu: float = 0.01,
                     sigma: float = 2.0, smooth_whole_grid: bool = False, device: str = "cpu",
                     on_epoch: Callable[[], None] = lambda: None) -> Generator:
    """Identity pre-training, then adversarial training against copies of ``classifier`` and ``attacker`` (both
    trained on real images, then updated on anonymised ones after every generator step).  Returns the generator
    of the epoch with the lowest validation loss ``L``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = make_generator(kind, budget, mu, sigma, smooth_whole_grid).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), budget.lr)
    for epoch in range(budget.pre_epochs):
        gen.train()
        total = 0.0
        for b in _chunks(len(train_idx), budget.batch, rng):
            x = _t(ds.images[train_idx[b]], device)
            loss = F.mse_loss(gen(x), x)
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            total += loss.item() * len(b)
        log.info("anonymiser identity pre-training epoch %d MSE %.2e", epoch, total / len(train_idx))
        on_epoch()

    clf = copy.deepcopy(classifier).to(device)
    snn = copy.deepcopy(attacker).to(device)
    opt_c = torch.optim.Adam(clf.parameters(), budget.lr * 0.1)
    opt_s = torch.optim.Adam(snn.parameters(), budget.lr * 0.1)
    val_pairs = sample_pairs(val_idx, ds.patients, ds.sources, np.random.default_rng(seed + 1), budget.pair_cap)
    best, best_state = np.inf, copy.deepcopy(gen.state_dict())
    for epoch in range(budget.adv_epochs):
        pairs = sample_pairs(train_idx, ds.patients, ds.sources, rng, budget.pair_cap)
        pos, neg = pairs[pairs[:, 2] == 1], pairs[pairs[:, 2] == 0]  # neg[k] shares its anchor with pos[k]
        for b in _chunks(len(pos), budget.batch, rng):
            p, n = pos[b], neg[b]
            x1, x2 = _t(ds.images[p[:, 0]], device), _t(ds.images[p[:, 1]], device)
            xn, y = _t(ds.images[n[:, 1]], device), _t(ds.labels[p[:, 0]], device)
            # generator step (the classifier and attacker are held fixed for it)
            gen.train()
            clf.eval()
            snn.eval()
            xa = gen(x1)
            loss_g = _generator_loss(clf, snn, xa, x2, y, budget)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            # attacker and classifier steps on the anonymised images
            xa = xa.detach()
            snn.train()
            clf.train()
            logits = torch.cat([snn(xa, x2), snn(xa, xn)])
            target = torch.cat([torch.ones(len(p)), torch.zeros(len(p))]).to(device)
            loss_s = F.binary_cross_entropy_with_logits(logits, target)
            opt_s.zero_grad()
            loss_s.backward()
            opt_s.step()
            loss_c = _masked_bce(clf(xa), y)
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        val = _validation_loss(gen, clf, snn, ds, val_pairs, budget, device)
        log.info("anonymiser adversarial epoch %d val loss %.4f", epoch, val)
        on_epoch()
        if val < best:
            best, best_state = val, copy.deepcopy(gen.state_dict())
    gen.load_state_dict(best_state)
    return gen.eval()


def _generator_loss(clf, snn, xa, x2, y, budget: Budget) -> torch.Tensor:
    utility = _masked_bce(clf(xa), y)
    # -log(1 - sigmoid(z)) == softplus(z), numerically stable
    privacy = F.softplus(snn(xa, x2)).mean()
    return budget.w_u * utility + budget.w_p * privacy


@torch.no_grad()
def _validation_loss(gen, clf, snn, ds: Dataset, val_pairs: np.ndarray, budget: Budget, device: str) -> float:
    gen.eval()
    clf.eval()
    snn.eval()
    pos = val_pairs[val_pairs[:, 2] == 1]
    total, n = 0.0, 0
    for b in _chunks(len(pos), 64, None):
        p = pos[b]
        xa = gen(_t(ds.images[p[:, 0]], device))
        loss = _generator_loss(clf, snn, xa, _t(ds.images[p[:, 1]], device), _t(ds.labels[p[:, 0]], device), budget)
        total += float(loss) * len(p)
        n += len(p)
    return total / max(n, 1)


def save_generator(gen: Generator, path, extra: dict | None = None) -> None:
    """Weights plus the config needed to rebuild them (``models.build_generator``)."""
    torch.save({"config": gen.config, "state": gen.state_dict(), **(extra or {})}, path)


def load_generator(path, device: str = "cpu") -> Generator:
    from medveil.cxr.models import build_generator

    ckpt = torch.load(path, map_location=device, weights_only=True)
    gen = build_generator(ckpt["config"])
    gen.load_state_dict(ckpt["state"])
    return gen.to(device).eval()
