"""``medveil deidentify``: a folder (or file) in, a release tree out, and a summary of what was done.

The summary names what a curator must look at (each quarantined input with
its reason, each skipped one, each image whose pixels were masked) by its
path within INPUT, and where the release, the mapping files, the workspace
and the quarantine are.  It quotes no value read from a file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from medveil.cli.common import console, fail
from medveil.cli.progress import RunProgress
from medveil.errors import MedveilError
from medveil.policy import Option, get_profile, load_recipe
from medveil.pseudonym import key_file_warnings, load_key, throwaway_key
from medveil.quiet import silenced

KEY_ENV = "MEDVEIL_KEY_FILE"
POLICY, PIXELS, PSEUDONYMS, RUN, OUTPUT = "Policy", "Pixels", "Pseudonyms", "Run", "Output"
#: Most entries a summary list shows; the rest are counted ("medveil report" lists them all).
LISTED = 20
EXIT_INTERRUPTED = 130


class Runner(str, Enum):
    local = "local"
    thread = "thread"
    dask = "dask"


class BurnedIn(str, Enum):
    quarantine = "quarantine"
    pass_ = "pass"


class PixelPolicy(str, Enum):
    auto = "auto"
    all_text = "all-text"
    phi_only = "phi-only"


class PixelScan(str, Enum):
    all = "all"
    flagged = "flagged"


class PixelScreen(str, Enum):
    recall = "recall"
    balanced = "balanced"
    off = "off"


class Overlays(str, Enum):
    text = "text"
    all = "all"
    keep = "keep"


def build_policy(profile: str, recipe: Path | None, option: list[str], burned_in: BurnedIn | None,
            without: Sequence[str] = ()):
    extra = frozenset(Option.parse(o) for o in option)
    removed = frozenset(Option.parse(o) for o in without)
    if extra & removed:
        fail("an option cannot be both added (--option) and removed (--without)")
    if recipe is not None:
        policy = load_recipe(recipe, profile=profile, extra_options=extra)
    else:
        policy = get_profile(profile, extra_options=extra)
    if removed:
        policy = replace(policy, options=policy.options - removed)
    if burned_in is not None:
        policy = replace(policy, burned_in=burned_in.value)
    return policy


def _pixel_settings(policy, pixel_policy, pixel_scan, ocr, pixel_rules, overlays, pixel_padding,
                    pixel_screen=None):
    changes = {}
    if pixel_screen is not None:
        changes["screen"] = pixel_screen.value
    if pixel_policy is not None:
        changes["policy"] = pixel_policy.value
    if pixel_scan is not None:
        changes["scan"] = pixel_scan.value
    if ocr is not None:
        changes["engines"] = tuple(e.strip() for e in ocr.split(",") if e.strip())
    if pixel_rules is not None:
        changes["rules_file"] = str(pixel_rules.resolve())
    if overlays is not None:
        changes["overlays"] = overlays.value
    if pixel_padding is not None:
        changes["padding"] = pixel_padding
    if not changes:
        return policy
    if not policy.cleans_pixels:
        fail("pixel settings need the Clean Pixel Data option: add -o clean_pixel_data (the tcia profile has it)")
    return replace(policy, pixels=replace(policy.pixels, **changes))


def _check_ocr(policy) -> None:
    """Stop before anything is read when the policy needs OCR and no engine is installed."""
    if not (policy.cleans_pixels or policy.verify):
        return
    from medveil.pixels.ocr import OcrUnavailable, available_engines

    try:
        for engine in policy.pixels.engines:
            available_engines(engine)
    except OcrUnavailable as exc:
        needs = "Clean Pixel Data (in the tcia profile)" if policy.cleans_pixels else "--verify"
        fail(f"{exc}. {needs} reads burned-in text with OCR: install it (pip install 'medveil[ocr]'), "
             "or drop the option (--without clean_pixel_data) and decide about burned-in text with --burned-in")


def load_run_key(key_file: Path | None, throwaway: bool):
    """The key from --key-file or $MEDVEIL_KEY_FILE (warning about its mode), or a throw-away one."""
    if key_file is None and os.environ.get(KEY_ENV):
        key_file = Path(os.environ[KEY_ENV])
    if key_file is not None:
        key = load_key(key_file)
        for warning in key_file_warnings(key_file):
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        return key, key_file
    if throwaway:
        console.print("[yellow]warning:[/] using a throw-away key: pseudonyms will differ on every run "
                      "and cannot be linked to later releases.")
        return throwaway_key(), None
    fail(f"no key: pass --key-file (create one with 'medveil keygen'), set {KEY_ENV}, "
         "or pass --throwaway-key for a one-off run")


def _size(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    from medveil.runner.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        fail(f"{what}: {exc}")


def deidentify(
    input: str = typer.Argument(..., metavar="INPUT", show_default=False,
                                help="A DICOM file or a folder (searched recursively); a URL with --runner dask."),
    output: str = typer.Argument(..., metavar="OUTPUT", show_default=False,
                                 help="The release tree: PatientID/StudyUID/SeriesUID/SOPUID.dcm."),
    profile: str = typer.Option("basic", "--profile", "-p", metavar="NAME", rich_help_panel=POLICY,
                                help="basic or tcia (see 'medveil profiles')."),
    option: list[str] = typer.Option([], "--option", "-o", metavar="NAME", rich_help_panel=POLICY,
                                     help="Add an option (repeatable)."),
    without: list[str] = typer.Option([], "--without", metavar="NAME", rich_help_panel=POLICY,
                                      help="Drop an option of the profile (repeatable)."),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", exists=True, metavar="FILE", rich_help_panel=POLICY,
                                       help="YAML recipe: actions, additions, ID formats."),
    burned_in: BurnedIn | None = typer.Option(None, "--burned-in", rich_help_panel=POLICY,
                                              help="Without Clean Pixel Data: files presumed to carry "
                                                   "burned-in text are quarantined (default) or passed."),
    clean_visual_features: str | None = typer.Option(None, "--clean-visual-features", metavar="cxr",
                                                     rich_help_panel=POLICY,
                                                     help="cxr: warp frontal chest radiographs (research, not a "
                                                          "guarantee of anonymity; docs/cxr.md)."),
    cxr_model: Path | None = typer.Option(None, "--cxr-model", metavar="FILE", rich_help_panel=POLICY,
                                          help="Checkpoint for --clean-visual-features cxr."),
    pixel_policy: PixelPolicy | None = typer.Option(None, "--pixel-policy", rich_help_panel=PIXELS,
                                                    help="Text to mask (default auto)."),
    pixel_scan: PixelScan | None = typer.Option(None, "--pixel-scan", rich_help_panel=PIXELS,
                                                help="all: screen every image (default); flagged: trust the header."),
    pixel_screen: PixelScreen | None = typer.Option(None, "--pixel-screen", rich_help_panel=PIXELS,
                                                    help="Text screen before OCR (default recall; off: OCR "
                                                         "whole frames)."),
    ocr: str | None = typer.Option(None, "--ocr", metavar="ENGINES", rich_help_panel=PIXELS,
                                   help="ppocr (default), ppocr-v5, ppocr-v6, rapidocr, tesseract or auto; "
                                        "comma-separated."),
    pixel_rules: Path | None = typer.Option(None, "--pixel-rules", exists=True, dir_okay=False, metavar="FILE",
                                            rich_help_panel=PIXELS, help="Your devices' text locations."),
    overlays: Overlays | None = typer.Option(None, "--overlays", rich_help_panel=PIXELS,
                                             help="Overlays to remove (default: those with text)."),
    pixel_padding: int | None = typer.Option(None, "--pixel-padding", min=0, metavar="PX", rich_help_panel=PIXELS,
                                             help="Grow each masked box (default 3)."),
    verify: bool = typer.Option(False, "--verify", metavar="", rich_help_panel=PIXELS,
                                help="Rescan each output (OCR too); refuse what still looks like PHI."),
    key_file: Path | None = typer.Option(None, "--key-file", "-k", metavar="FILE", rich_help_panel=PSEUDONYMS,
                                         help=f"Secret key (or set {KEY_ENV})."),
    throwaway_key_: bool = typer.Option(False, "--throwaway-key", metavar="", rich_help_panel=PSEUDONYMS,
                                        help="A random key for this run only."),
    sequential_ids: bool = typer.Option(False, "--sequential-ids", metavar="", rich_help_panel=PSEUDONYMS,
                                        help="Number patients 1, 2, ... instead of keyed IDs."),
    mappings: Path | None = typer.Option(None, "--mappings", metavar="DIR", rich_help_panel=PSEUDONYMS,
                                         help="Write uid_/patid_mapping.csv here (originals!)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, metavar="N", rich_help_panel=RUN,
                                help="Workers: processes (threads with --runner thread)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", metavar="", rich_help_panel=RUN,
                                help="Skip inputs released before with the same settings."),
    memory_budget: str | None = typer.Option(None, "--memory-budget", metavar="SIZE", rich_help_panel=RUN,
                                             help="Per worker, e.g. 2G (default: a share of free memory)."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", metavar="", rich_help_panel=RUN,
                                         help="Follow links that lead out of INPUT."),
    force: bool = typer.Option(False, "--force", metavar="", rich_help_panel=RUN,
                               help="Write into an OUTPUT holding files medveil did not write."),
    dry: bool = typer.Option(False, "--dry-run", metavar="", rich_help_panel=RUN,
                             help="Show what would change in the first file; write nothing."),
    runner: Runner = typer.Option(Runner.local, "--runner", metavar="NAME", rich_help_panel=RUN,
                                  help="local (processes), thread (threads) or dask (a cluster)."),
    engine: Runner | None = typer.Option(None, "--engine", hidden=True,
                                         help="The old name of --runner."),
    scheduler: str | None = typer.Option(None, "--scheduler", metavar="ADDRESS", rich_help_panel=RUN,
                                         help="Dask scheduler (default: a local cluster)."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, metavar="N", rich_help_panel=RUN,
                                          help="Files per Dask task."),
    workspace: Path | None = typer.Option(None, "--workspace", metavar="DIR", rich_help_panel=OUTPUT,
                                          help="Audit store and quarantine (default: beside OUTPUT)."),
    record_originals: bool = typer.Option(False, "--record-originals", metavar="", rich_help_panel=OUTPUT,
                                          help="Keep original input paths in the workspace."),
    quarantine_max: str | None = typer.Option(None, "--quarantine-max", metavar="SIZE", rich_help_panel=OUTPUT,
                                              help="Copy no larger file to quarantine (default 1G)."),
    progress_every: float = typer.Option(0.0, "--progress-every", min=0, metavar="SECONDS",
                                         rich_help_panel=OUTPUT,
                                         help="Off a terminal (a log file, CI): a progress line on stderr this "
                                              "often (default 0: quiet)."),
    as_json: bool = typer.Option(False, "--json", metavar="", rich_help_panel=OUTPUT,
                                 help="Print the summary as JSON on stdout."),
    report: Path | None = typer.Option(None, "--report", metavar="FILE.html", rich_help_panel=OUTPUT,
                                       help="Also write the summary as one self-contained HTML file "
                                       "(docs/review.md)."),
) -> None:
    """De-identify INPUT into OUTPUT.

    Exit status: 0 all released, 1 some inputs quarantined, 2 usage or setup
    error, 3 internal error, 130 interrupted.
    """
    from medveil import deidentify_path
    from medveil.runner.locations import is_url

    if not is_url(input) and not Path(input).exists() and not Path(input).is_symlink():
        fail(f"the input path {input} does not exist")
    if engine is not None:
        runner = engine
    if scheduler and runner is not Runner.dask:
        fail("--scheduler needs --runner dask")
    budget = _size(memory_budget, "--memory-budget")
    quarantine_limit = _size(quarantine_max, "--quarantine-max")
    try:
        policy = build_policy(profile, recipe, option, burned_in, without)
        if clean_visual_features is not None or cxr_model is not None:
            policy = replace(policy, visual_features=clean_visual_features or "cxr",
                             visual_features_model=str(cxr_model) if cxr_model else None)
        if sequential_ids:
            policy = replace(policy, sequential_patient_ids=True)
        policy = _pixel_settings(policy, pixel_policy, pixel_scan, ocr, pixel_rules, overlays, pixel_padding,
                                 pixel_screen)
        if verify:
            policy = replace(policy, verify=True)
        _check_ocr(policy)
        key, key_path = load_run_key(key_file, throwaway_key_)
        if dry:
            if is_url(input):
                fail("--dry-run reads a local file or folder")
            _dry_run(Path(input), policy, key)
            return
        with RunProgress(quiet=as_json, every=progress_every) as progress:
            try:
                summary = deidentify_path(input, output, policy=policy, key=key, mappings_dir=mappings,
                                          workspace=workspace, workers=workers,
                                          record_originals=record_originals, resume=resume,
                                          runner=runner.value, scheduler=scheduler, batch_size=batch_size,
                                          progress=progress, on_total=progress.set_total,
                                          follow_symlinks=follow_symlinks,
                                          protected=(key_path,) if key_path else (), force=force,
                                          memory_budget=budget, quarantine_limit=quarantine_limit)
            except KeyboardInterrupt as exc:
                summary = getattr(exc, "summary", None)
                if summary is None:
                    raise
    except MedveilError as exc:
        fail(str(exc))
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] before the run started; nothing was written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug: say so without quoting values; details on request
        if os.environ.get("MEDVEIL_DEBUG"):
            raise
        fail(f"internal error ({type(exc).__name__}); rerun with MEDVEIL_DEBUG=1 for details "
             "(they may show file paths and values)", code=3)
    if report is not None and not summary.interrupted:
        _write_report(summary, report, output)
    if as_json:
        typer.echo(json.dumps(summary_dict(summary, policy), indent=2, sort_keys=True))
    else:
        print_summary(summary, policy)
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.quarantined:
        raise typer.Exit(1)


def _write_report(summary, report: Path, output: str) -> None:
    """The run's summary as HTML, masked regions read back from the release tree (docs/review.md)."""
    from medveil.review.static import write_report
    from medveil.runner.locations import is_url

    try:
        write_report(summary.workspace, report, run_id=summary.run_id,
                     output=None if is_url(output) else Path(output))
    except MedveilError as exc:
        fail(f"the report could not be written: {exc}")
    console.print(f"report: {escape(str(report))}")


def summary_dict(summary, policy) -> dict:
    """The run summary as JSON-ready data (counts, lists of inputs by path within INPUT, places)."""
    return {
        "run_id": summary.run_id, "files_total": summary.files_total, "written": summary.written,
        "unchanged": summary.unchanged, "quarantined": summary.quarantined, "skipped": summary.skipped,
        "interrupted": summary.interrupted, "reasons": dict(summary.reasons), "actions": dict(summary.actions),
        "events": dict(summary.events), "repairs": dict(summary.repairs),
        "reprocessed": dict(summary.reprocessed), "notices": summary.notices,
        "quarantined_inputs": [{"input": path, "reason": reason} for path, reason in summary.quarantined_inputs],
        "skipped_inputs": [{"input": path, "reason": reason} for path, reason in summary.skipped_inputs],
        "masked_inputs": summary.masked_inputs,
        "duplicates": [{"input": path, "duplicate_of": first} for path, first in summary.duplicates],
        "pixel_scan": pixel_scan_mode(policy), "not_scanned": summary.events.get("pixel-not-scanned", 0),
        "output": str(summary.output), "workspace": str(summary.workspace),
        "quarantine": str(summary.quarantine_dir),
        "mappings": str(summary.mappings_dir) if summary.mappings_dir else None,
        "memory_budget": summary.memory_budget,
    }


def pixel_scan_mode(policy) -> str:
    if not policy.cleans_pixels:
        return "off (Clean Pixel Data not in the policy)"
    if policy.pixels.scan == "flagged":
        return "flagged (only images presumed to carry burned-in text)"
    return "all (every image)"


_ACTION_NAMES = {"X": "removed", "Z": "emptied", "D": "dummy", "K": "kept", "C": "cleaned/shifted",
                 "U": "UIDs replaced", "U*": "references remapped", "P": "pseudonymised", "R": "recipe value"}


def _listing(out: Console, title: str, rows: list[str]) -> None:
    if not rows:
        return
    out.print(title)
    for row in rows[:LISTED]:
        out.print(f"  {escape(row)}")
    if len(rows) > LISTED:
        out.print(f"  ... and {len(rows) - LISTED} more (all of them: medveil report WORKSPACE)")


def print_summary(summary, policy, out: Console | None = None) -> None:
    out = out or Console(soft_wrap=True)
    state = "[yellow]interrupted[/]: " if summary.interrupted else ""
    out.print(f"[bold]medveil[/] {escape(policy.describe())}")
    out.print(f"pixel scan: {pixel_scan_mode(policy)}")
    out.print(f"{state}files: {summary.files_total}  written: {summary.written}  unchanged: {summary.unchanged}  "
              f"quarantined: {summary.quarantined}  skipped: {summary.skipped}")
    if summary.actions:
        out.print("actions: " + ", ".join(f"{_ACTION_NAMES.get(a, a)} {n}" for a, n in sorted(summary.actions.items())))
    if summary.repairs:
        out.print("repaired instead of quarantined: " + ", ".join(
            f"{keyword} {count}" for keyword, count in sorted(summary.repairs.items())))
    not_scanned = summary.events.get("pixel-not-scanned", 0)
    if not_scanned:
        out.print(f"[yellow]warning:[/] {not_scanned} images were not scanned for burned-in text "
                  "(--pixel-scan flagged trusts the header); use --pixel-scan all to scan them")
    _listing(out, f"pixels masked in {len(summary.masked_inputs)} images:", summary.masked_inputs)
    _listing(out, "quarantined (not released; copies and reasons in the quarantine):",
             [f"{path}: {reason}" for path, reason in summary.quarantined_inputs])
    _listing(out, "skipped:", [f"{path}: {reason}" for path, reason in summary.skipped_inputs])
    _listing(out, "duplicates (same output as an earlier input):",
             [f"{path}: duplicate of {first}" for path, first in summary.duplicates])
    for why, count in summary.reprocessed.most_common():
        out.print(f"processed again: {count} (released before, but {why})")
    for notice in summary.notices:
        out.print(f"[yellow]notice:[/] {escape(notice)}")
    # Plain lines, never wrapped: paths must survive copy and paste.
    places = [("release", f"{summary.output}", "")]
    if summary.mappings_dir:
        places.append(("mappings", f"{summary.mappings_dir}", " (original identifiers: keep private)"))
    places.append(("workspace", f"{summary.workspace}", " (private: audit store, quarantine)"))
    if summary.quarantined:
        places.append(("quarantine", f"{summary.quarantine_dir}", ""))
    for label, place, note in places:
        out.print(f"[bold]{label + ':':<11}[/]{escape(place)}{note}", soft_wrap=True)
    if summary.interrupted:
        out.print("[yellow]interrupted:[/] run the same command again to finish; it resumes where this run "
                  "stopped")


def _dry_run(input: Path, policy, key) -> None:
    from medveil.dicomio.discover import discover
    from medveil.records import Status
    from medveil.runner.dryrun import FIRST_PATIENT, dry_run

    with silenced():
        target = next((d for d in discover(input) if d.kind == "dicom"), None)
    if target is None:
        fail("no DICOM file found for the dry run")
    record = dry_run(target.real or target.path, policy, key)
    shown = target.path.relative_to(input) if input.is_dir() else target.path
    out = Console(soft_wrap=True)
    out.print(f"dry run of {escape(str(shown))} (the first DICOM file in INPUT); nothing is written")
    if policy.sequential_patient_ids:
        out.print(f"sequential IDs: the patient is shown numbered {FIRST_PATIENT}; a run numbers patients "
                  "in input order, continuing the workspace's numbering")
    if record.status is not Status.WRITTEN:
        out.print(f"[yellow]would be quarantined:[/] {escape(record.reason or 'unknown')}")
        return
    review = record.review
    changes = review.changes if review is not None else []
    table = RichTable(title=f"{len(changes)} attributes change ({escape(policy.describe())})")
    for column in ("tag", "attribute", "change", "new value"):
        table.add_column(column)
    for change in changes:
        table.add_row(change.tag, escape(change.attribute), change.action, escape(change.value))
    out.print(table)
    if review is not None and review.changes_left_out:
        out.print(f"... and {review.changes_left_out} more changes")
    for (category, detail), count in Counter(record.events).most_common():
        out.print(f"event: {escape(category)}: {escape(detail)}" + (f" (x{count})" if count > 1 else ""))


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(deidentify)
