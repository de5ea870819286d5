"""``medveil cxr``: train, evaluate and apply the chest-radiograph anonymiser (needs the ``[cxr]`` extra)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer
from rich.console import Console

from medveil.cli.common import Group, fail
from medveil.cli.progress import RunProgress

cxr_app = typer.Typer(cls=Group, no_args_is_help=True,
                      help="Research: chest-radiograph warping after PriCheXy-Net, not a guarantee of anonymity.\n\n"
                           "Measured here, the warp does not stop an attacker holding another radiograph of the "
                           "patient from linking the two (docs/cxr.md). Needs: pip install 'medveil\\[cxr]'.")

#: Help shared by the options every cxr command has.
# Options several cxr commands take, declared once.
_DATA = typer.Option(None, "--data", help="Folder with index.csv and images/ (default ../shared/cxr).")
_TRAINED_SIZE = typer.Option(128, "--size", help="Image size (as the models were trained).")
_REPORT_ONLY = typer.Option(False, "--report-only", metavar="", help="Only aggregate what --work already holds.")
_THREADS = typer.Option(1, "--threads", help="torch CPU threads (0: torch's default).")
_DEVICE = typer.Option("cpu", "--device", help="torch device: cpu, or cuda where a GPU is present.")
_VERBOSE = typer.Option(True, "--verbose/--quiet", metavar="",
                        help="Log progress and scores (never file names or pixel values).")

BUDGETS = ("cpu", "gpu", "tiny")


def _torch(threads: int):
    try:
        import torch
    except ImportError:
        fail("torch is not installed: pip install 'medveil[cxr]'")
    if threads > 0:
        torch.set_num_threads(threads)
    return torch


def _logging(verbose: bool, progress: RunProgress | None = None) -> None:
    """Log lines (counters and scores only; never file names, patient ids or pixel values) to stderr.

    While *progress* shows a bar they go through its console, so each appears above the bar.
    """
    level = logging.INFO if verbose else logging.WARNING
    console = progress.console if progress is not None else None
    if console is not None:
        from rich.logging import RichHandler

        logging.basicConfig(level=level, format="%(message)s", force=True,
                            handlers=[RichHandler(console=console, show_path=False, show_level=False)])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(message)s", force=True)


def _steps(what: str, unit: str, verbose: bool) -> RunProgress:
    """A bar over a research command's steps (epochs, methods, defences); --quiet hides it."""
    return RunProgress(what, quiet=not verbose, held_label="", unit=unit)


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
    data: Path | None = _DATA,
    phantom: bool = typer.Option(False, "--phantom", metavar="", help="Train on generated phantoms instead."),
    size: int = typer.Option(128, "--size", help="Image size (divisible by 8)."),
    kind: str = typer.Option("warp", "--kind", help="warp (PriCheXy-Net) or direct (Privacy-Net-style)."),
    mu: float = typer.Option(0.01, "--mu", help="Maximum displacement in normalised units."),
    sigma: float = typer.Option(2.0, "--sigma", help="Gaussian smoothing of the displacement, pixels."),
    whole_grid: bool = typer.Option(False, "--whole-grid", metavar="",
                                    help="The original operator (smooth the whole grid)."),
    run: int = typer.Option(0, "--run", help="Patient fold: test fold = run, validation = run + 1 (of 5)."),
    all_patients: bool = typer.Option(False, "--all", metavar="",
                                      help="Train on all folds but the validation fold (for shipping)."),
    budget: str = typer.Option("cpu", "--budget", help="cpu, gpu or tiny (epochs and network sizes)."),
    threads: int = _THREADS,
    device: str = _DEVICE,
    verbose: bool = _VERBOSE,
) -> None:
    """Train an anonymiser: classifier and attacker on real images, identity pre-training, adversarial training."""
    _torch(threads)
    import numpy as np

    from medveil.cxr import train as T
    from medveil.cxr.data import split_indices

    b = _budget(budget)
    ds, source = _dataset(data, phantom, size)
    split = split_indices(ds.patients, ds.sources, run)
    train_idx = np.concatenate([split["train"], split["test"]]) if all_patients else split["train"]
    started = time.monotonic()
    seed = 1000 * (run + 1)
    from medveil.cxr.data import sample_pairs

    val_pairs = sample_pairs(split["val"], ds.patients, ds.sources, np.random.default_rng(seed + 1), b.pair_cap)
    with _steps("training", "epochs", verbose) as progress:
        _logging(verbose, progress)
        progress.set_total(b.clf_epochs + b.snn_epochs + b.pre_epochs + b.adv_epochs)
        step = lambda: progress("done")  # noqa: E731
        clf = T.train_classifier(ds, train_idx, split["val"], b, seed, device, on_epoch=step)
        snn = T.train_attacker(ds.images, ds, train_idx, ds.images, ds.images, val_pairs, b, seed, device,
                               on_epoch=step)
        gen = T.train_anonymiser(ds, train_idx, split["val"], clf, snn, b, seed + 5, kind, mu, sigma, whole_grid,
                                 device, on_epoch=step)
    out.parent.mkdir(parents=True, exist_ok=True)
    T.save_generator(gen, out, {"size": size, "trained_on": "phantoms" if phantom else "cxr",
                                "budget": budget, "run": run, "all": all_patients})
    Console().print(f"[bold]medveil cxr train[/]: {kind} anonymiser written to {out} "
                    f"({out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")


@cxr_app.command("train-lungs")
def train_lungs_cmd(
    out: Path = typer.Argument(..., help="Checkpoint to write (.pt); the shipped one is "
                                         "src/medveil/cxr/data/lungs_cxr128.pt."),
    data: Path | None = _DATA,
    epochs: int = typer.Option(20, "--epochs", help="Training epochs."),
    threads: int = _THREADS,
    verbose: bool = _VERBOSE,
) -> None:
    """Train the lung-field model of the image check (which undecided CR/DX images are frontal chest images)."""
    _torch(threads)
    import numpy as np

    from medveil.cxr import lungs as L
    from medveil.cxr.data import split_indices

    ds, _ = _dataset(data, False, L.SIZE)
    if ds.has_mask is None or not ds.has_mask.any():
        fail("no lung masks: install torchxrayvision (pip install --no-deps torchxrayvision)")
    split = split_indices(ds.patients, ds.sources, 0)
    train_idx = np.concatenate([split["train"], split["test"]])
    with _steps("training", "epochs", verbose) as progress:
        _logging(verbose, progress)
        progress.set_total(epochs)
        model, dice = L.train_lung_model(ds, train_idx, split["val"], epochs=epochs,
                                         on_epoch=lambda: progress("done"))
    out.parent.mkdir(parents=True, exist_ok=True)
    L.save_lung_model(model, out, {"val_dice": float(dice), "epochs": epochs})
    Console().print(f"[bold]medveil cxr train-lungs[/]: validation Dice {dice:.3f}; written to {out}")


@cxr_app.command("evaluate")
def evaluate_cmd(
    data: Path | None = _DATA,
    phantom: bool = typer.Option(False, "--phantom", metavar="", help="Evaluate on generated phantoms instead."),
    size: int = _TRAINED_SIZE,
    runs: str = typer.Option("0,1,2", "--runs", help="Comma-separated patient folds (0-4); each is one seed."),
    methods: str = typer.Option("main", "--methods",
                                help="main, sweep, extra, all, or comma-separated method names."),
    budget: str = typer.Option("cpu", "--budget", help="cpu, gpu or tiny."),
    work: Path = typer.Option(Path(".cxr-work"), "--work", help="Cache of models and per-run results (resumable)."),
    out: Path = typer.Option(Path("docs/cxr.md"), "--out", help="Markdown report; .json and .png go beside it."),
    report_only: bool = _REPORT_ONLY,
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples per run."),
    threads: int = _THREADS,
    device: str = _DEVICE,
    verbose: bool = _VERBOSE,
) -> None:
    """Run the evaluation protocol (fresh attacker per method, linkage test) and write the results table."""
    _torch(threads)
    _logging(verbose)  # again below, through the bar's console, while the bar is shown
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
        with _steps("evaluating", "methods", verbose) as progress:
            _logging(verbose, progress)
            progress.set_total(len(run_ids) * len(chosen))
            for run in run_ids:
                E.evaluate_run(ds, run, chosen, b, work, device, on_method=progress)
        _logging(verbose)
    rows = E.aggregate(work, bootstrap)
    if not rows:
        fail(f"no results under {work}")
    out.parent.mkdir(parents=True, exist_ok=True)
    E.write_report(rows, out, {"data": "phantoms" if phantom else "../shared/cxr" if "shared" in source else source,
                               "size": size, "budget": budget, "device": device, "bootstrap": bootstrap})
    Console().print(E.markdown_table(rows))
    Console().print(f"report: {out} (+ {out.with_suffix('.json').name}, {out.with_suffix('.png').name})")


@cxr_app.command("attack")
def attack_cmd(
    data: Path | None = _DATA,
    phantom: bool = typer.Option(False, "--phantom", metavar="",
                                 help="Generated phantoms instead (what the tests do)."),
    size: int = _TRAINED_SIZE,
    runs: str = typer.Option("0,1,2,3,4", "--runs", help="Comma-separated patient folds (0-4); each is one seed of "
                                                         "every trained model."),
    defences: str = typer.Option("all", "--defences", help="all, or comma-separated names: "
                                                           "none, prichexy, matched, random_warp, matched_x4, ..."),
    attackers: str = typer.Option("registration,metric", "--attackers", help="registration and/or metric."),
    attacker_seeds: int = typer.Option(2, "--attacker-seeds", min=1, help="Learned-attacker seeds per run."),
    budget: str = typer.Option("cpu", "--budget", help="cpu, gpu or tiny (the generators' and the attackers')."),
    work: Path = typer.Option(Path(".cxr-work"), "--work", help="The same cache as 'evaluate' (models, results)."),
    out: Path = typer.Option(Path("docs/cxr-attack.md"), "--out", help="Markdown report; .json and .png beside it."),
    report_only: bool = _REPORT_ONLY,
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Two-level bootstrap resamples."),
    threads: int = _THREADS,
    device: str = _DEVICE,
    verbose: bool = _VERBOSE,
) -> None:
    """Measure every defence against the registration attacker and a learned metric attacker (docs/cxr.md)."""
    _torch(threads)
    _logging(verbose)  # again below, through the bar's console, while the bar is shown
    from medveil.cxr import attack as A
    from medveil.cxr import registration as R
    from medveil.cxr.attackers import MetricBudget

    b = _budget(budget)
    chosen_attackers = [a.strip() for a in attackers.split(",") if a.strip()]
    if not chosen_attackers or set(chosen_attackers) - set(A.ATTACKERS):
        fail(f"--attackers must name {', '.join(A.ATTACKERS)}")
    if defences.strip() == "all":
        chosen = list(A.DEFENCES)
    else:
        chosen = []
        for name in (n.strip() for n in defences.split(",") if n.strip()):
            if name not in A.BY_NAME:
                fail(f"unknown defence {name!r}; known: {', '.join(A.BY_NAME)}")
            chosen.append(A.BY_NAME[name])
        if "none" not in [d.name for d in chosen]:
            chosen.insert(0, A.BY_NAME["none"])
    tiny = budget == "tiny"
    metric_budget = MetricBudget.tiny() if tiny else MetricBudget()
    reg_config = R.RegistrationConfig.tiny() if tiny else R.RegistrationConfig()
    if not report_only:
        ds, _ = _dataset(data, phantom, size)
        run_ids = [int(r) for r in runs.split(",") if r.strip()]
        with _steps("attacking", "defences", verbose) as progress:
            _logging(verbose, progress)
            progress.set_total(len(run_ids) * len(chosen))
            for run in run_ids:
                A.attack_run(ds, run, chosen, chosen_attackers, b, work, metric_budget=metric_budget,
                             attacker_seeds=attacker_seeds, reg_config=reg_config, device=device,
                             on_defence=progress)
        _logging(verbose)
    tables = {a: A.aggregate(work, a, bootstrap) for a in A.ATTACKERS}
    tables = {a: rows for a, rows in tables.items() if rows}
    if not tables:
        fail(f"no attack results under {work}")
    out.parent.mkdir(parents=True, exist_ok=True)
    A.write_report(tables, out, {"data": "phantoms" if phantom else "../shared/cxr", "size": size,
                                 "budget": budget, "device": device, "bootstrap": bootstrap,
                                 "attacker_seeds": attacker_seeds})
    for attacker, rows in tables.items():
        Console().print(f"[bold]{attacker}[/]")
        Console().print(A.markdown_table(rows, attacker))
    Console().print(f"report: {out} (+ {out.with_suffix('.json').name}, {out.with_suffix('.png').name})")


@cxr_app.command("anonymize")
def anonymize_cmd(
    src: Path = typer.Argument(..., metavar="SRC",
                               help="Input: a DICOM file, or a PNG (any 8/16-bit greyscale image Pillow reads)."),
    dst: Path = typer.Argument(..., metavar="DST",
                               help="Output file: DICOM for a DICOM input, else an image of the input's size "
                               "and bit depth."),
    model: Path | None = typer.Option(None, "--model", help="Checkpoint from 'medveil cxr train' (default: shipped)."),
    profile: str = typer.Option("basic", "--profile", "-p", help="DICOM only: the de-identification profile."),
    key_file: Path | None = typer.Option(None, "--key-file", "-k", help="DICOM only: secret key (or set "
                                                                         "MEDVEIL_KEY_FILE)."),
    throwaway_key_: bool = typer.Option(False, "--throwaway-key", metavar="",
                                        help="DICOM only: a random key for this file."),
    threads: int = _THREADS,
) -> None:
    """Warp one chest radiograph against linkage: research, not a guarantee of anonymity (docs/cxr.md).

    A DICOM file goes through exactly what 'medveil deidentify --clean-visual-features cxr' does to it (header
    de-identification with the profile and key, the frontal-chest decision, the warp, fail closed): the output is
    written only when the image was warped; anything else (not a frontal chest radiograph, or quarantined) writes
    nothing and exits 1 with the reason.  Other files are read as images (PNG) and warped.
    """
    _torch(threads)
    if not src.is_file():
        fail("no such input file")
    if _is_dicom(src):
        _anonymize_dicom(src, dst, model, profile, key_file, throwaway_key_)
        return
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from medveil.cxr.apply import anonymise_values
    from medveil.cxr.dicom import load_model
    from medveil.cxr.intensity import display_window

    try:
        with Image.open(src) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError):
        fail("the input is neither DICOM nor an image Pillow can read")
    if arr.ndim != 2:
        arr = np.asarray(Image.fromarray(arr).convert("L"))
    bits = 8 if arr.dtype == np.uint8 else 16
    gen, size = load_model(model)
    out = anonymise_values(gen, arr, display_window(arr, bits=bits), size)
    dtype = np.uint8 if bits == 8 else np.uint16
    Image.fromarray(np.clip(np.rint(out), 0, np.iinfo(dtype).max).astype(dtype)).save(dst)
    Console().print("anonymised image written")


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM" or head[:4] == b"DICM":
        return True
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return False
    import pydicom

    from medveil.quiet import silenced

    try:
        with silenced():
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        return "SOPClassUID" in ds
    except Exception:
        return False


def _anonymize_dicom(src: Path, dst: Path, model: Path | None, profile: str, key_file: Path | None,
                     throwaway: bool) -> None:
    """One DICOM file through the same core as ``deidentify --clean-visual-features cxr``."""
    import json
    from dataclasses import replace

    from medveil.cli.deidentify import build_policy, load_run_key
    from medveil.errors import MedveilError
    from medveil.pipeline import deidentify_bytes
    from medveil.records import Status

    try:
        policy = build_policy(profile, None, [], None)
        policy = replace(policy, visual_features="cxr", visual_features_model=str(model) if model else None)
        key, _ = load_run_key(key_file, throwaway)
    except MedveilError as exc:
        fail(str(exc))
    out, record = deidentify_bytes(src.read_bytes(), policy, key)
    if record.status is not Status.WRITTEN or not isinstance(out, bytes):
        fail(f"not written (quarantined): {record.reason}", code=1)
    events = dict(record.events)
    if "visual-features-cleaned" not in events:
        why = json.loads(events.get("visual-features-not-applicable", "{}")).get("why", "not a frontal chest image")
        fail(f"not written: the anonymiser does not apply to this image ({why})", code=1)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(out)
    done = json.loads(events["visual-features-cleaned"])
    Console().print(f"de-identified and anonymised DICOM written ({done['frames']} frame(s), decided by "
                    f"{done['decided_by']}: {done['why']})")


def register(app: typer.Typer) -> None:
    app.add_typer(cxr_app, name="cxr")
