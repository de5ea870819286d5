"""Every defence against the two stronger attackers, with matched controls and training variance (issue 17).

The first protocol (``evaluate``) measured defences against a Siamese network that reached AUC 0.61-0.65 on real
images: too weak for any difference between defences to mean much.  This protocol keeps its folds, pairs, utility
models and trained generators (the same ``--work`` cache) and measures each defence against

- the **registration attacker** (``registration``): no training, affine then deformable registration of the pair,
  a similarity over the lung fields.  Its score variant (``registration.PRIMARY``) was fixed on validation pairs of
  the undefended images before any defence was measured; every variant's scores are kept in the JSON;
- the **learned attacker** (``attackers``): metric learning on (anonymised, real) pairs made with the defence
  itself (the generator is public), with augmentation; trained with several attacker seeds per run, so the table
  shows how much of a difference is the attacker's seed.

Defences: no anonymisation; the PriCheXy-Net warp in the shipped configuration (mu = 0.02, one generator per run:
five runs are five generator trainings on five different training sets); its **matched control**, a
phase-randomised surrogate of each image's trained field (same spectrum, same mean displacement, no targeting);
the same surrogate at 4x and 16x the displacement (how much warp a registration absorbs, and what that costs);
the first protocol's random warp of the same mu (attenuated by the smoothing to about half); DP-Pix, Gaussian blur,
and the Privacy-Net-style generator.

Confidence intervals: each row's AUC is a mean over runs.  "CI (runs x patients)" is a two-level bootstrap that
resamples runs (so generator training, test fold and attacker training vary) and, within each, test patients;
it contains the training variance the first protocol's within-run intervals left out.  The paired difference to
"none" is bootstrapped the same way on the same resamples.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medveil.cxr import controls as C
from medveil.cxr import evaluate as E
from medveil.cxr import metrics as M
from medveil.cxr import registration as R
from medveil.cxr import train as T
from medveil.cxr import warp as W
from medveil.cxr.attackers import MetricBudget, pair_similarity, train_metric_attacker
from medveil.cxr.data import Dataset
from medveil.cxr.models import Anonymiser

log = logging.getLogger(__name__)

ATTACKERS = ("registration", "metric")


@dataclass(frozen=True)
class Defence:
    name: str
    label: str
    method: str | None = None  # an ``evaluate`` method (its cached generator or control), or the field's source
    matched_scale: float | None = None  # a phase-randomised surrogate of ``method``'s field, at this scale


MATCH_SOURCE = "prichexy_mu0.02"
DEFENCES = [
    Defence("none", "no anonymisation"),
    Defence("prichexy", "PriCheXy-Net warp (μ=0.02, shipped configuration)", MATCH_SOURCE),
    Defence("matched", "random warp matched to the trained field (×1)", MATCH_SOURCE, 1.0),
    Defence("random_warp", "random smooth warp of the same μ (first protocol)", "random_warp_mu0.02"),
    Defence("matched_x4", "random warp, 4× the trained field's displacement", MATCH_SOURCE, 4.0),
    Defence("matched_x16", "random warp, 16× the trained field's displacement", MATCH_SOURCE, 16.0),
    Defence("dppix_b4_e0.1", "DP-Pix b=4, ε=0.1", "dppix_b4_e0.1"),
    Defence("dppix_b4_e1", "DP-Pix b=4, ε=1", "dppix_b4_e1"),
    Defence("dppix_b8_e0.1", "DP-Pix b=8, ε=0.1", "dppix_b8_e0.1"),
    Defence("dppix_b8_e1", "DP-Pix b=8, ε=1", "dppix_b8_e1"),
    Defence("blur", "Gaussian blur (σ=2 px)", "blur"),
    Defence("privacynet", "Privacy-Net-style direct generator", "privacynet"),
    Defence("shipped", "the shipped checkpoint itself (run 0 only)", "shipped"),
]
#: Runs a defence is measured on, where not all: the shipped generator was trained on run 0's training folds
#: (validated on its validation fold), so only run 0's test patients are new to it.
ONLY_RUNS = {"shipped": {0}}
BY_NAME = {d.name: d for d in DEFENCES}


# ------------------------------------------------------------------------------------------------ defences

def anonymise(defence: Defence, ds: Dataset, setup: E.RunSetup, budget: T.Budget,
              device: str = "cpu") -> tuple[np.ndarray, list[float] | None]:
    """Every image of ``ds`` under ``defence`` (trained generators come from, or go into, the run's cache)."""
    if defence.method is None:
        return ds.images, None
    if defence.method == "shipped":
        return _shipped(ds, device)
    method = E.ALL[defence.method]
    anon, disp = E._anonymise_all(method, ds, setup.split, setup.classifier, setup.real_attacker, budget,
                                  setup.seed, setup.rdir, device)
    if defence.matched_scale is None:
        return anon, disp
    gen = T.load_generator(setup.rdir / f"{method.name}.gen.pt", device)
    if not isinstance(gen, Anonymiser):
        raise ValueError("a matched-scale control needs a warp anonymiser's field")
    g = torch.Generator().manual_seed(setup.seed + 11)
    out, fields = [], []
    with torch.no_grad():
        for i in range(0, len(ds.images), 64):
            x = torch.from_numpy(ds.images[i:i + 64]).to(device)
            trained = W.displacement(gen.raw(x), method.mu, method.sigma).cpu()
            bound = method.mu if defence.matched_scale == 1.0 else None
            field = C.phase_randomised(trained, g, defence.matched_scale, bound)
            fields.append(field)
            out.append(W.warp_by(x.cpu(), field).numpy())
    return np.concatenate(out).astype(np.float32), list(W.displacement_px(torch.cat(fields)))


def _shipped(ds: Dataset, device: str) -> tuple[np.ndarray, list[float]]:
    from medveil.cxr.dicom import load_model

    gen, size = load_model(device=device)
    if size != ds.images.shape[-1]:
        raise ValueError("the shipped generator is measured at its training size only")
    anon = T.apply(gen, ds.images, device)
    with torch.no_grad():
        raw = torch.cat([gen.raw(torch.from_numpy(ds.images[i:i + 64]).to(device)).cpu()
                         for i in range(0, len(ds.images), 64)])
    return anon, list(W.measured_displacement_px(raw, gen.mu, gen.sigma))


def utility(anon: np.ndarray, ds: Dataset, setup: E.RunSetup, device: str = "cpu") -> dict:
    test = setup.split["test"]
    seg_test = test[ds.has_mask[test]] if ds.has_mask is not None else test[:0]
    probs = T.predict_labels(setup.classifier, anon[test], device)
    return {"clf_auc": M.mean_label_auc(ds.labels[test], probs),
            "dice": M.dice(T.predict_masks(setup.segmenter, anon[seg_test], device), ds.masks[seg_test])
            if len(seg_test) and ds.masks is not None else None,
            "ssim": M.ssim(anon[test], ds.images[test]), "psnr": M.psnr(anon[test], ds.images[test])}


# ------------------------------------------------------------------------------------------------ the runs

def attack_run(ds: Dataset, run: int, defences: list[Defence], attackers: list[str], budget: T.Budget,
               work: Path, *, metric_budget: MetricBudget = MetricBudget(), attacker_seeds: int = 2,
               reg_config: R.RegistrationConfig = R.RegistrationConfig(), device: str = "cpu",
               on_defence: Callable[[str], None] = lambda outcome: None) -> None:
    """Measure ``defences`` of fold ``run`` against ``attackers``; every part is cached under
    ``work/run<r>/attack/`` (so a long evaluation resumes, and runs can go to separate processes).

    *on_defence* hears ``skipped``, ``cached`` or ``done`` after each defence (progress)."""
    setup = E.prepare_run(ds, run, budget, work, device)
    adir = setup.rdir / "attack"
    adir.mkdir(exist_ok=True)
    pairs = setup.test_pairs
    lungs = None
    for defence in defences:
        if run not in ONLY_RUNS.get(defence.name, {run}):
            on_defence("skipped")
            continue
        base = adir / defence.name
        needed = [a for a in attackers if not _done(base, a, attacker_seeds)]
        if not needed and Path(f"{base}.utility.json").exists():
            on_defence("cached")
            continue
        started = time.monotonic()
        anon, disp = anonymise(defence, ds, setup, budget, device)
        info = {"defence": defence.name, "label": defence.label, "run": run, "size": int(ds.images.shape[-1]),
                "pairs": pairs.tolist(), "anchor_patient": ds.patients[pairs[:, 0]].tolist(),
                "hannover": (ds.sources[pairs[:, 0]] == "hannover").tolist()}
        utility_path = Path(f"{base}.utility.json")
        if not utility_path.exists():
            utility_path.write_text(json.dumps({**info, **utility(anon, ds, setup, device),
                                                "displacement_px": disp}))
        if "registration" in needed:
            if lungs is None:
                lungs = T.predict_masks(setup.segmenter, ds.images, device)
            scores = R.register_and_score(anon[pairs[:, 0]], ds.images[pairs[:, 1]], lungs[pairs[:, 1]], reg_config)
            primary = scores[R.PRIMARY]
            Path(f"{base}.registration.json").write_text(json.dumps({
                **info, "scores": primary.tolist(), "variant": R.PRIMARY, "auc": M.auc(pairs[:, 2], primary),
                "variants": {k: {"auc": M.auc(pairs[:, 2], v), "scores": v.tolist()} for k, v in scores.items()}}))
            log.info("run %d %s registration AUC %.3f", run, defence.name, M.auc(pairs[:, 2], primary))
        if "metric" in needed:
            for k in range(attacker_seeds):
                path = Path(f"{base}.metric{k}.json")
                if path.exists():
                    continue
                model = train_metric_attacker(anon, ds.images, ds.patients, ds.sources, setup.split["train"],
                                              setup.val_pairs, metric_budget, setup.seed + 101 + 17 * k)
                s = pair_similarity(model, anon, ds.images, pairs)
                path.write_text(json.dumps({**info, "seed": k, "scores": s.tolist(), "auc": M.auc(pairs[:, 2], s)}))
                log.info("run %d %s metric attacker seed %d AUC %.3f", run, defence.name, k, M.auc(pairs[:, 2], s))
        log.info("run %d %s done (%.0f s)", run, defence.name, time.monotonic() - started)
        on_defence("done")


def _done(base: Path, attacker: str, seeds: int) -> bool:
    if attacker == "registration":
        return Path(f"{base}.registration.json").exists()
    return all(Path(f"{base}.metric{k}.json").exists() for k in range(seeds))


# ---------------------------------------------------------------------------------------------- aggregation

def load(work: Path, attacker: str) -> dict[str, dict[int, list[dict]]]:
    """``{defence: {run: [result, ...]}}`` (one result per attacker seed; one for registration)."""
    out: dict[str, dict[int, list[dict]]] = {}
    pattern = "*.registration.json" if attacker == "registration" else "*.metric*.json"
    for path in sorted(work.glob(f"run*/attack/{pattern}")):
        r = json.loads(path.read_text())
        out.setdefault(r["defence"], {}).setdefault(r["run"], []).append(r)
    return out


def _utility(work: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in sorted(work.glob("run*/attack/*.utility.json")):
        r = json.loads(path.read_text())
        out.setdefault(r["defence"], []).append(r)
    return out


def _arrays(r: dict, subset: str | None):
    y = np.array(r["pairs"])[:, 2]
    keep = np.array(r["hannover"]) if subset == "hannover" else np.ones(len(y), bool)
    return y[keep], np.array(r["scores"])[keep], np.array(r["anchor_patient"])[keep]


def two_level_bootstrap(runs: dict[int, list[dict]], n_boot: int = 1000, baseline: dict[int, list[dict]] | None = None,
                        subset: str | None = None, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of the run-mean AUC (minus the baseline's on the same resample): resample runs, then
    test patients within each; several attacker seeds of one run are averaged.  NaN when nothing to resample."""
    rng = np.random.default_rng(seed)
    ids = sorted(r for r in runs if baseline is None or r in baseline)
    if not ids:
        return np.array([np.nan])
    prepared = []
    for r in ids:
        items = [_arrays(x, subset) for x in runs[r]]
        base = [_arrays(x, subset) for x in baseline[r]] if baseline is not None else []
        y, _, groups = items[0]
        if not len(y):
            continue
        uniq, inv = np.unique(groups, return_inverse=True)
        prepared.append((y, [s for _, s, _ in items], [s for _, s, _ in base], [np.flatnonzero(inv == g)
                                                                                   for g in range(len(uniq))]))
    if not prepared:
        return np.array([np.nan])
    out = np.empty(n_boot)
    for b in range(n_boot):
        vals = []
        for k in rng.integers(len(prepared), size=len(prepared)):
            y, scores, base, members = prepared[k]
            idx = np.concatenate([members[g] for g in rng.integers(len(members), size=len(members))])
            v = np.mean([M.auc(y[idx], s[idx]) for s in scores])
            if base:
                v -= np.mean([M.auc(y[idx], s[idx]) for s in base])
            vals.append(v)
        out[b] = _nanmean(vals)
    return out


def _run_aucs(runs: dict[int, list[dict]], subset: str | None = None) -> dict[int, float]:
    out = {}
    for r, items in runs.items():
        vals = []
        for x in items:
            y, s, _ = _arrays(x, subset)
            vals.append(M.auc(y, s))
        out[r] = _nanmean(vals)
    return out


def _nanmean(values) -> float:
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def aggregate(work: Path, attacker: str, n_boot: int = 1000) -> list[dict]:
    """One row per defence for ``attacker``, in table order."""
    results = load(work, attacker)
    util = _utility(work)
    none = results.get("none")
    rows = []
    for name in [d.name for d in DEFENCES if d.name in results] + sorted(set(results) - set(BY_NAME)):
        runs = results[name]
        first = next(iter(runs.values()))[0]
        per_run = _run_aucs(runs)
        values = np.array([per_run[r] for r in sorted(per_run)])
        row = {"defence": name, "label": first["label"], "runs": sorted(runs), "size": first["size"],
               "auc": _nanmean(values), "auc_std": _std(values),
               "auc_ci": M.ci(two_level_bootstrap(runs, n_boot)),
               "auc_hannover": _nanmean(_run_aucs(runs, "hannover").values()),
               "auc_hannover_ci": M.ci(two_level_bootstrap(runs, n_boot, subset="hannover"))}
        seeds = [np.std([x["auc"] for x in items], ddof=1) for items in runs.values() if len(items) > 1]
        row["attacker_seeds"] = max(len(items) for items in runs.values())
        row["attacker_seed_std"] = float(np.mean(seeds)) if seeds else None
        if attacker == "registration":
            variants: dict[str, list[float]] = {}
            for items in runs.values():
                for k, v in items[0].get("variants", {}).items():
                    variants.setdefault(k, []).append(v["auc"])
            row["variants"] = {k: float(np.mean(v)) for k, v in variants.items()}
        if none is not None and name != "none":
            base = _run_aucs(none)
            deltas = [per_run[r] - base[r] for r in per_run if r in base]
            row["delta_auc"] = float(np.mean(deltas)) if deltas else None
            row["delta_auc_ci"] = M.ci(two_level_bootstrap(runs, n_boot, baseline=none))
        us = util.get(name, [])
        for key in ("clf_auc", "dice", "ssim", "psnr"):
            v = np.array([u[key] for u in us if u.get(key) is not None], float)
            row[key], row[key + "_std"] = (float(v.mean()), _std(v)) if len(v) else (None, None)
        disp = [u["displacement_px"] for u in us if u.get("displacement_px")]
        if disp:
            row["disp_mean_px"] = float(np.mean([d[0] for d in disp]))
            row["disp_max_px"] = float(np.max([d[1] for d in disp]))
        rows.append(row)
    return rows


def _std(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _f(v, std=None, digits=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    s = f"{v:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {std:.{digits}f}"
    return s


def _fci(c) -> str:
    return "–" if c is None or c[0] is None or math.isnan(c[0]) else f"[{c[0]:.3f}, {c[1]:.3f}]"


def markdown_table(rows: list[dict], attacker: str) -> str:
    seed_col = attacker == "metric"
    head = ("| defence | runs | AUC (published vs real), mean ± sd over runs | CI (runs × patients) "
            "| Δ vs none [CI] " + ("| attacker-seed sd " if seed_col else "") +
            "| Hannover-only AUC [CI] | classifier AUC | lung Dice | SSIM | displacement px (mean / max) |")
    cols = 11 if seed_col else 10
    lines = [head, "|" + "---|" * cols]
    for r in rows:
        disp = f"{r['disp_mean_px']:.2f} / {r['disp_max_px']:.2f}" if "disp_mean_px" in r else "–"
        delta = f"{r['delta_auc']:+.3f} {_fci(r['delta_auc_ci'])}" if r.get("delta_auc") is not None else "–"
        seeds = (f"| {_f(r['attacker_seed_std'])} ({r['attacker_seeds']} seeds) " if seed_col else "")
        lines.append(
            f"| {r['label']} | {len(r['runs'])} | {_f(r['auc'], r['auc_std'])} | {_fci(r['auc_ci'])} | {delta} "
            f"{seeds}| {_f(r['auc_hannover'])} {_fci(r['auc_hannover_ci'])} "
            f"| {_f(r['clf_auc'], r['clf_auc_std'])} | {_f(r['dice'], r['dice_std'])} | {_f(r['ssim'])} | {disp} |")
    return "\n".join(lines)


BEGIN, END = "<!-- cxr-attack:begin (written by medveil cxr attack) -->", "<!-- cxr-attack:end -->"


def plot(tables: dict[str, list[dict]], path: Path) -> None:
    """AUC of each attacker against lung Dice, one point per defence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.8), squeeze=False)
    for ax, (attacker, rows) in zip(axes[0], tables.items(), strict=True):
        for r in rows:
            if r.get("dice") is None:
                continue
            lo, hi = r["auc_ci"]
            xerr = [[r["auc"] - lo], [hi - r["auc"]]] if not math.isnan(lo) else None
            ax.errorbar(r["auc"], r["dice"], xerr=xerr, fmt="o", ms=4)
            ax.annotate(r["defence"], (r["auc"], r["dice"]), fontsize=7)
        ax.axvline(0.5, color="grey", lw=0.5)
        ax.set_title(f"{attacker} attacker")
        ax.set_xlabel("linkage AUC, published vs real (lower = more private); 95% CI runs × patients")
        ax.set_ylabel("lung Dice on the published images")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(tables: dict[str, list[dict]], md_path: Path, config: dict) -> None:
    """JSON and PNG beside ``md_path``; the tables between the markers (hand-written text around them is kept)."""
    md_path.with_suffix(".json").write_text(json.dumps({"config": config, "tables": tables}, indent=1,
                                                       ensure_ascii=False) + "\n")
    plot(tables, md_path.with_suffix(".png"))
    parts = [BEGIN, "",
             f"Configuration: {config.get('data')} at {config.get('size')}×{config.get('size')}, budget "
             f"`{config.get('budget')}`, device {config.get('device')}; {config.get('bootstrap')} two-level "
             f"bootstrap resamples (runs, then test patients).", ""]
    names = {"registration": "Registration attacker (no training; score: "
                             f"`{R.PRIMARY}`, fixed on validation pairs)",
             "metric": "Learned attacker (metric learning on published-vs-real pairs made with the defence)"}
    for attacker, rows in tables.items():
        parts += [f"**{names.get(attacker, attacker)}**", "", markdown_table(rows, attacker), ""]
    parts += [f"![linkage AUC against lung Dice]({md_path.with_suffix('.png').name})", "", END]
    block = "\n".join(parts)
    title = "# Chest-radiograph anonymisation against stronger attackers\n\n"
    text = md_path.read_text() if md_path.exists() else title
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    md_path.write_text(text)
