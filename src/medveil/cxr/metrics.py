"""Metrics of the results table: verification and classifier AUC, bootstrap-by-patient confidence intervals, Dice,
SSIM and PSNR.  numpy only (SSIM uses the usual 11x11 Gaussian window, sigma 1.5), so they are easy to test.

Why bootstrap by patient: pairs and images of one patient are not independent (a few patients have 13-22 images),
so resampling pairs would give intervals that are too narrow.
"""

from __future__ import annotations

import numpy as np


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with mid-ranks for ties); NaN when one class is absent."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, dtype=np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    ranks = (upper - (counts - 1) / 2)[inv]
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def mean_label_auc(y: np.ndarray, p: np.ndarray, min_pos: int = 2) -> float:
    """Mean AUC over labels that have at least ``min_pos`` known positives and negatives (NaN labels ignored)."""
    values = []
    for k in range(y.shape[1]):
        known = ~np.isnan(y[:, k])
        yk = y[known, k]
        if yk.sum() >= min_pos and (1 - yk).sum() >= min_pos:
            values.append(auc(yk, p[known, k]))
    return float(np.mean(values)) if values else float("nan")


def bootstrap_auc_by_patient(y: np.ndarray, s: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
                             seed: int = 0) -> np.ndarray:
    """AUCs of ``n_boot`` resamples that draw whole patients (``groups``: each pair's anchor patient)."""
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
    out = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(len(uniq), size=len(uniq))
        idx = np.concatenate([members[g] for g in pick])
        out[b] = auc(y[idx], s[idx])
    return out


def ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    a = (1 - level) / 2
    return (float(np.quantile(v, a)), float(np.quantile(v, 1 - a))) if len(v) else (float("nan"), float("nan"))


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean per-image Dice of binary masks (an image where both are empty counts as 1)."""
    p = pred.reshape(len(pred), -1) > 0.5
    t = target.reshape(len(target), -1) > 0.5
    inter = (p & t).sum(1)
    denom = p.sum(1) + t.sum(1)
    d = np.where(denom == 0, 1.0, 2 * inter / np.maximum(denom, 1))
    return float(d.mean()) if len(d) else float("nan")


def psnr(a: np.ndarray, b: np.ndarray, max_value: float = 1.0) -> float:
    """Mean per-image PSNR in dB (identical images are capped at 100 dB)."""
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
    return float(np.mean(np.where(mse == 0, 100.0, 10 * np.log10(max_value ** 2 / np.maximum(mse, 1e-20)))))


def _gauss_filter(x: np.ndarray, sigma: float = 1.5, size: int = 11) -> np.ndarray:
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    # separable 'valid' convolution over the last two axes
    x = np.lib.stride_tricks.sliding_window_view(x, size, axis=-1) @ g
    return np.swapaxes(np.lib.stride_tricks.sliding_window_view(np.swapaxes(x, -1, -2), size, axis=-1) @ g, -1, -2)


def ssim(a: np.ndarray, b: np.ndarray, max_value: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03) over images (N,1,H,W)."""
    c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
    a = a.reshape(-1, *a.shape[-2:]).astype(np.float64)
    b = b.reshape(-1, *b.shape[-2:]).astype(np.float64)
    mu_a, mu_b = _gauss_filter(a), _gauss_filter(b)
    saa = _gauss_filter(a * a) - mu_a ** 2
    sbb = _gauss_filter(b * b) - mu_b ** 2
    sab = _gauss_filter(a * b) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return float(m.mean()) if m.size else float("nan")
