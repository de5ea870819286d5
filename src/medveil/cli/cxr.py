"""``medveil cxr``: train, evaluate and apply the chest-radiograph anonymiser (needs the ``[cxr]`` extra)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer
from rich.console import Console

from medveil.cli.common import fail

cxr_app = typer.Typer(help="Chest-radiograph anonymisation after PriCheXy-Net (needs: pip install 'medveil\\[cxr]').",
                      no_args_is_help=True)

BUDGETS = ("cpu", "gpu", "tiny")


def _torch(threads: int):
    try:
        import torch
    except ImportError:
        fail("torch is not installed: pip install 'medveil[cxr]'")
    if threads > 0:
        torch.set_num_threads(threads)
    return torch


def _logging(verbose: bool) -> None:
    # Only counters and scores are logged; never file names, patient ids or pixel values.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")


def _dataset(data: Path | None, phantom: bool, size: int):
    from medveil.cxr import data as D

    if phantom:
        return D.make_phantoms(n_patients=60, images_per_patient=4, size=size, seed=0), "phantoms"
    if data is None:
        from medveil.synth.corpus import shared_root

        root = shared_root()
        data = root / "cxr" if root else None
    if data is None or not (data / "index.csv").is_file():
        fail("no chest-radiograph data: give --data DIR (with index.csv) or --phantom")
    return D.load_cxr(data, size), str(data)


def _budget(name: str):
    from medveil.cxr.train import Budget

    if name not in BUDGETS:
        fail(f"--budget must be one of {', '.join(BUDGETS)}")
    return getattr(Budget, name)()


@cxr_app.command("train")
def train_cmd(
    out: Path = typer.Argument(..., help="Checkpoint to write (.pt)."),
    data: Path | None = typer.Option(None, "--data", help="Folder with index.csv and images/ (default ../shared/cxr)."),
    phantom: bool = typer.Option(False, "--phantom", help="Train on generated phantoms instead."),
    size: int = typer.Option(128, "--size", help="Image size (divisible by 8)."),
    kind: str = typer.Option("warp", "--kind", help="warp (PriCheXy-Net) or direct (Privacy-Net-style)."),
    mu: float = typer.Option(0.01, "--mu", help="Maximum displacement in normalised units."),
    sigma: float = typer.Option(2.0, "--sigma", help="Gaussian smoothing of the displacement, pixels."),
    whole_grid: bool = typer.Option(False, "--whole-grid", help="The original operator (smooth the whole grid)."),
    run: int = typer.Option(0, "--run", help="Patient fold: test fold = run, validation = run + 1 (of 5)."),
    all_patients: bool = typer.Option(False, "--all", help="Train on all folds but the validation fold (for shipping)."),
    budget: str = typer.Option("cpu", "--budget", help="cpu, gpu or tiny (epochs and network sizes)."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (0: torch's default)."),
    device: str = typer.Option("cpu", "--device"),
    verbose: bool = typer.Option(True, "--verbose/--quiet"),
) -> None:
    """Train an anonymiser: classifier and attacker on real images, identity pre-training, adversarial training."""
    _torch(threads)
    _logging(verbose)
    import numpy as np

    from medveil.cxr import train as T
    from medveil.cxr.data import split_indices

    b = _budget(budget)
    ds, source = _dataset(data, phantom, size)
    split = split_indices(ds.patients, ds.sources, run)
    train_idx = np.concatenate([split["train"], split["test"]]) if all_patients else split["train"]
    started = time.monotonic()
    seed = 1000 * (run + 1)
    clf = T.train_classifier(ds, train_idx, split["val"], b, seed, device)
    from medveil.cxr.data import sample_pairs

    val_pairs = sample_pairs(split["val"], ds.patients, ds.sources, np.random.default_rng(seed + 1), b.pair_cap)
    snn = T.train_attacker(ds.images, ds, train_idx, ds.images, ds.images, val_pairs, b, seed, device)
    gen = T.train_anonymiser(ds, train_idx, split["val"], clf, snn, b, seed + 5, kind, mu, sigma, whole_grid, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    T.save_generator(gen, out, {"size": size, "trained_on": "phantoms" if phantom else "cxr",
                                "budget": budget, "run": run, "all": all_patients})
    Console().print(f"[bold]medveil cxr train[/]: {kind} anonymiser written to {out} "
                    f"({out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")


@cxr_app.command("evaluate")
def evaluate_cmd(
    data: Path | None = typer.Option(None, "--data", help="Folder with index.csv and images/ (default ../shared/cxr)."),
    phantom: bool = typer.Option(False, "--phantom", help="Evaluate on generated phantoms instead."),
    size: int = typer.Option(128, "--size"),
    runs: str = typer.Option("0,1,2", "--runs", help="Comma-separated patient folds (0-4); each is one seed."),
    methods: str = typer.Option("main", "--methods",
                                help="main, sweep, extra, all, or comma-separated method names."),
    budget: str = typer.Option("cpu", "--budget", help="cpu, gpu or tiny."),
    work: Path = typer.Option(Path(".cxr-work"), "--work", help="Cache of models and per-run results (resumable)."),
    out: Path = typer.Option(Path("docs/cxr.md"), "--out", help="Markdown report; .json and .png go beside it."),
    report_only: bool = typer.Option(False, "--report-only", help="Only aggregate what --work already holds."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples per run."),
    threads: int = typer.Option(1, "--threads"),
    device: str = typer.Option("cpu", "--device"),
    verbose: bool = typer.Option(True, "--verbose/--quiet"),
) -> None:
    """Run the evaluation protocol (fresh attacker per method, linkage test) and write the results table."""
    _torch(threads)
    _logging(verbose)
    from medveil.cxr import evaluate as E

    b = _budget(budget)
    groups = {"main": E.MAIN, "sweep": E.SWEEP, "extra": E.EXTRA, "all": list(E.ALL.values())}
    chosen = []
    for part in methods.split(","):
        part = part.strip()
        if part in groups:
            chosen += groups[part]
        elif part in E.ALL:
            chosen.append(E.ALL[part])
        else:
            fail(f"unknown method {part!r}; known: {', '.join(E.ALL)}")
    if chosen and chosen[0].name != "none":
        chosen = [E.ALL["none"]] + [m for m in chosen if m.name != "none"]
    run_ids = [int(r) for r in runs.split(",") if r.strip()]
    source = "phantoms" if phantom else str(data or "../shared/cxr")
    if not report_only:
        ds, source = _dataset(data, phantom, size)
        for run in run_ids:
            E.evaluate_run(ds, run, chosen, b, work, device)
    rows = E.aggregate(work, bootstrap)
    if not rows:
        fail(f"no results under {work}")
    out.parent.mkdir(parents=True, exist_ok=True)
    E.write_report(rows, out, {"data": "phantoms" if phantom else "../shared/cxr" if "shared" in source else source,
                               "size": size, "budget": budget, "device": device, "bootstrap": bootstrap})
    Console().print(E.markdown_table(rows))
    Console().print(f"report: {out} (+ {out.with_suffix('.json').name}, {out.with_suffix('.png').name})")


@cxr_app.command("anonymize")
def anonymize_cmd(
    src: Path = typer.Argument(..., help="Input image (PNG or any 8/16-bit greyscale Pillow reads)."),
    dst: Path = typer.Argument(..., help="Output PNG (same size and bit depth as the input)."),
    model: Path | None = typer.Option(None, "--model", help="Checkpoint from 'medveil cxr train' (default: shipped)."),
    threads: int = typer.Option(1, "--threads"),
) -> None:
    """Anonymise one chest radiograph image."""
    _torch(threads)
    import numpy as np
    from PIL import Image

    from medveil.cxr.apply import anonymise_image
    from medveil.cxr.dicom import load_model

    if not src.is_file():
        fail(f"no such file: {src}")
    gen, size = load_model(model)
    with Image.open(src) as im:
        arr = np.asarray(im)
    if arr.ndim != 2:
        arr = np.asarray(Image.fromarray(arr).convert("L"))
    top = 65535.0 if arr.dtype == np.uint16 or arr.max() > 255 else 255.0
    out = anonymise_image(gen, arr.astype(np.float32) / top, size)
    dtype = np.uint16 if top > 255 else np.uint8
    Image.fromarray(np.round(out * top).astype(dtype)).save(dst)
    Console().print(f"anonymised image written to {dst}")


def register(app: typer.Typer) -> None:
    app.add_typer(cxr_app, name="cxr")
