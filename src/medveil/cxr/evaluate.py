"""The evaluation protocol of PriCheXy-Net, with controls, and the results table.

For each run (a patient-level fold: test fold ``run % k``, validation the next one, seeds derived from ``run``):

1. utility models trained on real training images and frozen: the finding classifier and the lung segmenter;
   the baseline attacker trained on real pairs (also the starting point of the adversarial training);
2. for each method, every image is anonymised once; a *fresh* attacker is trained on anonymised pairs (both images
   anonymised) and tested on anonymised-vs-real pairs (the linkage attack: a published anonymised image against a
   real image of the patient held elsewhere).  The test pairs are the same for every method of a run, so
   differences between methods are paired.  "none" uses the baseline attacker; "none_fresh" trains one more
   attacker on real pairs with the seed every other method's fresh attacker gets, which shows how much of a
   difference between rows is the attacker's training seed alone;
3. utility on the anonymised test images: classifier mean AUC, lung Dice against the masks of the real images,
   SSIM/PSNR to the real images, and for warps the measured displacement.

Results of each (run, method) are cached as JSON under the work folder, so a long evaluation can be resumed and
split across processes; ``aggregate`` turns whatever is cached into the table (mean +- std over runs, 95% CI from
a bootstrap that resamples test patients within every run and averages over runs, the same for the paired
difference to "none").
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from medveil.cxr import controls as C
from medveil.cxr import metrics as M
from medveil.cxr import train as T
from medveil.cxr import warp as W
from medveil.cxr.data import Dataset, sample_pairs, split_indices
from medveil.cxr.models import Anonymiser, Classifier, SiameseNet, UNet

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

log = logging.getLogger(__name__)

BEGIN, END = "<!-- cxr-results:begin (written by medveil cxr evaluate) -->", "<!-- cxr-results:end -->"


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # none | warp | direct | random_warp | dppix | blur
    mu: float = 0.0
    sigma: float = 2.0
    b: int = 0
    eps: float = 0.0
    smooth_whole_grid: bool = False
    label: str = ""


MU = 0.01
SIGMA = 2.0
MAIN = [
    Method("none", "none", label="no anonymisation"),
    Method("none_fresh", "none", label="no anonymisation, attacker seed of the other rows"),
    Method("prichexy", "warp", MU, SIGMA, label=f"PriCheXy-Net warp (μ={MU})"),
    Method("random_warp", "random_warp", MU, SIGMA, label=f"random smooth warp (μ={MU})"),
    Method("dppix_b4_e0.1", "dppix", b=4, eps=0.1, label="DP-Pix b=4, ε=0.1"),
    Method("dppix_b4_e1", "dppix", b=4, eps=1.0, label="DP-Pix b=4, ε=1"),
    Method("dppix_b8_e0.1", "dppix", b=8, eps=0.1, label="DP-Pix b=8, ε=0.1"),
    Method("dppix_b8_e1", "dppix", b=8, eps=1.0, label="DP-Pix b=8, ε=1"),
    Method("blur", "blur", sigma=2.0, label="Gaussian blur (σ=2 px)"),
    Method("privacynet", "direct", label="Privacy-Net-style direct generator"),
]
SWEEP = [m for mu in (0.02, 0.005, 0.001) for m in (
    Method(f"prichexy_mu{mu}", "warp", mu, SIGMA, label=f"PriCheXy-Net warp (μ={mu})"),
    Method(f"random_warp_mu{mu}", "random_warp", mu, SIGMA, label=f"random smooth warp (μ={mu})"))]
EXTRA = [Method("prichexy_wholegrid", "warp", MU, SIGMA, smooth_whole_grid=True,
                label=f"PriCheXy-Net, original whole-grid smoothing (μ={MU})")]
ALL = {m.name: m for m in MAIN + SWEEP + EXTRA}


def _save_state(model: torch.nn.Module, path: Path) -> None:
    torch.save(model.state_dict(), path)


def _cached(model: ModuleT, path: Path, build: Callable[[], ModuleT]) -> ModuleT:
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    trained = build()
    _save_state(trained, path)
    return trained


@dataclass
class RunSetup:
    """What every method of a run shares: the split, the pairs and the models trained on real images."""

    run: int
    seed: int
    split: dict[str, np.ndarray]
    val_pairs: np.ndarray
    test_pairs: np.ndarray
    classifier: Classifier
    segmenter: UNet
    real_attacker: SiameseNet
    rdir: Path


def prepare_run(ds: Dataset, run: int, budget: T.Budget, work: Path, device: str = "cpu", k: int = 5) -> RunSetup:
    """Split, pairs and the utility models and baseline attacker of fold ``run`` (trained once, cached)."""

    rdir = work / f"run{run}"
    rdir.mkdir(parents=True, exist_ok=True)
    split = split_indices(ds.patients, ds.sources, run, k)
    seed = 1000 * (run + 1)
    val_pairs = sample_pairs(split["val"], ds.patients, ds.sources, np.random.default_rng(seed + 1), budget.pair_cap)
    test_pairs = sample_pairs(split["test"], ds.patients, ds.sources, np.random.default_rng(seed + 2), budget.pair_cap)
    real = ds.images
    clf = _cached(Classifier(ds.labels.shape[1], budget.widths), rdir / "classifier.pt",
                  lambda: T.train_classifier(ds, split["train"], split["val"], budget, seed, device))
    seg = _cached(UNet(1, 1, budget.seg_base, 3), rdir / "segmenter.pt",
                  lambda: T.train_segmenter(ds, split["train"], split["val"], budget, seed, device))
    real_attacker = _cached(SiameseNet(budget.widths), rdir / "attacker_real.pt",
                            lambda: T.train_attacker(real, ds, split["train"], real, real, val_pairs, budget, seed,
                                                     device))
    return RunSetup(run, seed, split, val_pairs, test_pairs, clf, seg, real_attacker, rdir)


def evaluate_run(ds: Dataset, run: int, methods: list[Method], budget: T.Budget, work: Path,
                 device: str = "cpu", k: int = 5,
                 on_method: Callable[[str], None] = lambda outcome: None) -> list[dict]:
    """Evaluate ``methods`` on fold ``run``; returns the per-method result dicts (cached under ``work``).

    *on_method* hears ``cached`` or ``done`` after each method (progress)."""
    setup = prepare_run(ds, run, budget, work, device, k)
    rdir, split, seed = setup.rdir, setup.split, setup.seed
    val_pairs, test_pairs = setup.val_pairs, setup.test_pairs
    clf, seg, real_attacker = setup.classifier, setup.segmenter, setup.real_attacker
    real = ds.images
    test = split["test"]
    seg_test = test[ds.has_mask[test]] if ds.has_mask is not None else test[:0]
    results = []
    for method in methods:
        out_path = rdir / f"{method.name}.json"
        if out_path.exists():
            results.append(json.loads(out_path.read_text()))
            on_method("cached")
            continue
        started = time.monotonic()
        anon, displacement = _anonymise_all(method, ds, split, clf, real_attacker, budget, seed, rdir, device)
        if method.name == "none":
            attacker = real_attacker
        else:
            attacker = T.train_attacker(anon, ds, split["train"], anon, real, val_pairs, budget, seed + 7, device)
        scores = T.pair_scores(attacker, anon, real, test_pairs, device)
        probs = T.predict_labels(clf, anon[test], device)
        result = {
            "method": method.name, "label": method.label, "run": run, "size": int(real.shape[-1]),
            "pairs": test_pairs.tolist(), "scores": scores.tolist(),
            "anchor_patient": ds.patients[test_pairs[:, 0]].tolist(),
            "hannover": (ds.sources[test_pairs[:, 0]] == "hannover").tolist(),
            "auc": M.auc(test_pairs[:, 2], scores),
            "clf_auc": M.mean_label_auc(ds.labels[test], probs),
            "dice": M.dice(T.predict_masks(seg, anon[seg_test], device), ds.masks[seg_test])
            if len(seg_test) and ds.masks is not None else None,
            "ssim": M.ssim(anon[test], real[test]), "psnr": M.psnr(anon[test], real[test]),
            "displacement_px": displacement, "seconds": round(time.monotonic() - started, 1),
        }
        hann = np.array(result["hannover"])
        result["auc_hannover"] = M.auc(test_pairs[hann, 2], scores[hann]) if hann.any() else None
        log.info("run %d %s: AUC %.3f clf %.3f dice %s (%.0f s)", run, method.name, result["auc"],
                 result["clf_auc"], result["dice"], result["seconds"])
        out_path.write_text(json.dumps(result))
        results.append(result)
        on_method("done")
    return results


def _anonymise_all(method: Method, ds: Dataset, split, clf, attacker, budget: T.Budget, seed: int, rdir: Path,
                   device: str) -> tuple[np.ndarray, list[float] | None]:
    real = ds.images
    g = torch.Generator().manual_seed(seed + 3)
    if method.kind == "none":
        return real, None
    if method.kind == "dppix":
        return T.apply(lambda x: C.dp_pix(x, method.b, method.eps, generator=g), real), None
    if method.kind == "blur":
        return T.apply(lambda x: C.gaussian_blur(x, method.sigma), real), None
    if method.kind == "random_warp":
        raws = []

        def fn(x):
            raw = torch.randn(x.shape[0], 2, *x.shape[-2:], generator=g)
            raws.append(raw)
            return W.warp(x, raw, method.mu, method.sigma)

        anon = T.apply(fn, real)
        return anon, list(W.measured_displacement_px(torch.cat(raws), method.mu, method.sigma))
    if method.kind in ("warp", "direct"):
        path = rdir / f"{method.name}.gen.pt"
        if path.exists():
            gen = T.load_generator(path, device)
        else:
            gen = T.train_anonymiser(ds, split["train"], split["val"], clf, attacker, budget, seed + 5, method.kind,
                                     method.mu, method.sigma, method.smooth_whole_grid, device)
            T.save_generator(gen, path, {"size": int(real.shape[-1])})
        anon = T.apply(gen, real, device)
        disp = None
        if method.kind == "warp":
            assert isinstance(gen, Anonymiser)
            with torch.no_grad():
                raw = torch.cat([gen.raw(torch.from_numpy(real[i:i + 64]).to(device)).cpu()
                                 for i in range(0, len(real), 64)])
            disp = list(W.measured_displacement_px(raw, method.mu, method.sigma))
        return anon, disp
    raise ValueError(method.kind)


# ---------------------------------------------------------------------------------------------- aggregation

def load_results(work: Path) -> dict[str, list[dict]]:
    by_method: dict[str, list[dict]] = {}
    for path in sorted(work.glob("run*/*.json")):
        r = json.loads(path.read_text())
        by_method.setdefault(r["method"], []).append(r)
    return by_method


def _boot(results: list[dict], n_boot: int, subset: str | None = None, baseline: list[dict] | None = None,
          seed: int = 0) -> np.ndarray:
    """Bootstrap of the run-averaged AUC (minus the baseline's on the same resample when ``baseline`` is given)."""
    rng = np.random.default_rng(seed)
    base_by_run = {b["run"]: b for b in baseline or []}
    per_run = []
    for r in results:
        if baseline is not None and r["run"] not in base_by_run:
            continue
        y = np.array(r["pairs"])[:, 2]
        keep = np.array(r["hannover"]) if subset == "hannover" else np.ones(len(y), bool)
        groups = np.array(r["anchor_patient"])[keep]
        s = np.array(r["scores"])[keep]
        sb = np.array(base_by_run[r["run"]]["scores"])[keep] if baseline is not None else None
        if keep.any():
            per_run.append((y[keep], s, sb, groups))
    if not per_run:
        return np.array([np.nan])
    out = np.zeros(n_boot)
    for y, s, sb, groups in per_run:
        uniq, inv = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inv == g) for g in range(len(uniq))]
        for b in range(n_boot):
            idx = np.concatenate([members[g] for g in rng.integers(len(uniq), size=len(uniq))])
            v = M.auc(y[idx], s[idx])
            if sb is not None:
                v = v - M.auc(y[idx], sb[idx])
            out[b] += v / len(per_run)
    return out


def _ms(values: list) -> tuple[float, float]:
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def aggregate(work: Path, n_boot: int = 1000) -> list[dict]:
    """One summary row per method found in ``work``, in table order."""
    by_method = load_results(work)
    none = by_method.get("none")
    order = [m for m in ALL if m in by_method] + sorted(set(by_method) - set(ALL))
    rows = []
    for name in order:
        rs = sorted(by_method[name], key=lambda r: r["run"])
        row = {"method": name, "label": rs[0]["label"], "runs": [r["run"] for r in rs], "size": rs[0]["size"]}
        for key in ("auc", "auc_hannover", "clf_auc", "dice", "ssim", "psnr"):
            row[key], row[key + "_std"] = _ms([r[key] for r in rs])
        row["auc_ci"] = M.ci(_boot(rs, n_boot))
        row["auc_hannover_ci"] = M.ci(_boot(rs, n_boot, "hannover"))
        if none is not None and name != "none":
            d = _boot(rs, n_boot, baseline=none)
            row["delta_auc_ci"] = M.ci(d)
            base = {b["run"]: b["auc"] for b in none}
            row["delta_auc"] = _ms([r["auc"] - base[r["run"]] for r in rs if r["run"] in base])[0]
        disp = [r["displacement_px"] for r in rs if r.get("displacement_px")]
        if disp:
            row["disp_mean_px"] = float(np.mean([d[0] for d in disp]))
            row["disp_max_px"] = float(np.max([d[1] for d in disp]))
        rows.append(row)
    return rows


def _f(v, std=None, digits=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    s = f"{v:.{digits}f}"
    if std is not None and not math.isnan(std):
        s += f" ± {std:.{digits}f}"
    return s


def _fci(c) -> str:
    return "–" if c is None or math.isnan(c[0]) else f"[{c[0]:.3f}, {c[1]:.3f}]"


def markdown_table(rows: list[dict]) -> str:
    head = ("| method | runs | verification AUC (anon vs real) | 95% CI | Δ vs none [95% CI] "
            "| Hannover-only AUC [95% CI] | classifier AUC | lung Dice | SSIM | PSNR (dB) "
            "| displacement px (mean / max) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        disp = f"{r['disp_mean_px']:.2f} / {r['disp_max_px']:.2f}" if "disp_mean_px" in r else "–"
        delta = (f"{r['delta_auc']:+.3f} {_fci(r['delta_auc_ci'])}" if "delta_auc" in r else "–")
        lines.append(
            f"| {r['label']} | {len(r['runs'])} | {_f(r['auc'], r['auc_std'])} | {_fci(r['auc_ci'])} | {delta} "
            f"| {_f(r['auc_hannover'], r['auc_hannover_std'])} {_fci(r['auc_hannover_ci'])} "
            f"| {_f(r['clf_auc'], r['clf_auc_std'])} | {_f(r['dice'], r['dice_std'])} "
            f"| {_f(r['ssim'], r['ssim_std'])} | {_f(r['psnr'], r['psnr_std'], 1)} | {disp} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Privacy-utility plot: verification AUC against classifier AUC and lung Dice, warps joined by mu."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, name in ((axes[0], "clf_auc", "classifier mean AUC"), (axes[1], "dice", "lung Dice")):
        for family, marker in (("prichexy", "o-"), ("random_warp", "s--")):
            pts = sorted((ALL[r["method"]].mu, r["auc"], r[key]) for r in rows
                         if r["method"] in ALL and ALL[r["method"]].kind == ("warp" if family == "prichexy" else family)
                         and not ALL[r["method"]].smooth_whole_grid)
            if pts:
                ax.plot([p[1] for p in pts], [p[2] for p in pts], marker, label=family.replace("_", " "))
                for mu, x, y in pts:
                    ax.annotate(f"μ={mu:g}", (x, y), fontsize=7)
        for r in rows:
            method = ALL.get(r["method"])
            if method is not None and method.kind in ("warp", "random_warp") and not method.smooth_whole_grid:
                continue  # on the lines above
            ax.errorbar(r["auc"], r[key], xerr=r["auc_std"] if r["auc_std"] == r["auc_std"] else None, fmt="^")
            ax.annotate(r["label"], (r["auc"], r[key]), fontsize=7)
        ax.axvline(0.5, color="grey", lw=0.5)
        ax.set_xlabel("verification AUC, anonymised vs real (lower = more private)")
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[dict], md_path: Path, config: dict) -> None:
    """Write the JSON and PNG beside ``md_path`` and put the table into it between the result markers (keeping
    any hand-written text around them)."""
    json_path, png_path = md_path.with_suffix(".json"), md_path.with_suffix(".png")
    json_path.write_text(json.dumps({"config": config, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    plot(rows, png_path)
    block = "\n".join([
        BEGIN, "",
        f"Configuration: {config.get('data')} at {config.get('size')}×{config.get('size')}, budget "
        f"`{config.get('budget')}`, device {config.get('device')}; "
        f"{config.get('bootstrap')} bootstrap resamples of test patients per run.", "",
        markdown_table(rows), "",
        f"![privacy–utility plot]({png_path.name})", "", END])
    text = md_path.read_text() if md_path.exists() else "# Chest-radiograph anonymisation results\n\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    md_path.write_text(text)
