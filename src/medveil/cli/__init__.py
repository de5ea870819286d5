"""The ``medveil`` command line.

Every command prints counts, reasons, pseudonyms and paths inside the
release tree, never an original identifier: terminals are logged.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table as RichTable

from medveil import deidentify_path
from medveil._version import __version__
from medveil.cli.common import console
from medveil.cli.common import fail as _fail
from medveil.errors import MedveilError
from medveil.policy import PROFILES, Option, get_profile, load_recipe, load_table
from medveil.pseudonym import generate_key_file, load_key, throwaway_key
from medveil.quiet import silenced
from medveil.runner.discover import discover
from medveil.runner.dryrun import dry_run
from medveil.runner.locations import is_url

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="De-identify DICOM files (PS3.15 Annex E) with keyed pseudonymisation.")
KEY_ENV = "MEDVEIL_KEY_FILE"


class Engine(str, Enum):
    local = "local"
    dask = "dask"


class BurnedIn(str, Enum):
    quarantine = "quarantine"
    pass_ = "pass"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"medveil {__version__} (DICOM PS3.15 Table E.1-1, edition {load_table().edition})")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                       help="Show the version and the standard edition, then exit.")) -> None:
    """medveil: de-identify medical images so they can be shared."""


@app.command()
def keygen(path: Path = typer.Argument(..., help="Where to write the new key file (mode 0600).")) -> None:
    """Create a new secret pseudonymisation key."""
    try:
        key = generate_key_file(path)
    except MedveilError as exc:
        _fail(str(exc))
    console.print(f"key written to {path} (fingerprint {key.fingerprint()}); keep it secret and backed up: "
                  "the same key reproduces the same pseudonyms, a lost key cannot be recovered.")


@app.command()
def profiles() -> None:
    """List the named profiles and the options."""
    table = RichTable(title=f"Profiles (PS3.15 Table E.1-1 {load_table().edition})")
    table.add_column("profile")
    table.add_column("options")
    for name, spec in PROFILES.items():
        table.add_row(name, ", ".join(sorted(o.value for o in spec["options"])) or "(Basic Profile only)")
    Console().print(table)
    Console().print("options: " + ", ".join(o.value for o in Option))


def _load_key(key_file: Path | None, throwaway: bool):
    if key_file is None and os.environ.get(KEY_ENV):
        key_file = Path(os.environ[KEY_ENV])
    if key_file is not None:
        return load_key(key_file)
    if throwaway:
        console.print("[yellow]warning:[/] using a throw-away key: pseudonyms will differ on every run "
                      "and cannot be linked to later releases.")
        return throwaway_key()
    _fail(f"no key: pass --key-file (create one with 'medveil keygen'), set {KEY_ENV}, "
          "or pass --throwaway-key for a one-off run")


def _policy(profile: str, recipe: Path | None, option: list[str], burned_in: BurnedIn | None,
            without: list[str] = ()):
    extra = frozenset(Option.parse(o) for o in option)
    removed = frozenset(Option.parse(o) for o in without)
    if extra & removed:
        _fail("an option cannot be both added (--option) and removed (--without)")
    if recipe is not None:
        policy = load_recipe(recipe, profile=profile, extra_options=extra)
    else:
        policy = get_profile(profile, extra_options=extra)
    if removed:
        policy = replace(policy, options=policy.options - removed)
    if burned_in is not None:
        policy = replace(policy, burned_in=burned_in.value)
    return policy


def _pixel_settings(policy, pixel_policy, pixel_scan, ocr, pixel_rules, overlays, pixel_padding):
    changes = {}
    if pixel_policy is not None:
        changes["policy"] = pixel_policy
    if pixel_scan is not None:
        changes["scan"] = pixel_scan
    if ocr is not None:
        changes["engines"] = tuple(e.strip() for e in ocr.split(",") if e.strip())
    if pixel_rules is not None:
        changes["rules_file"] = str(pixel_rules.resolve())
    if overlays is not None:
        changes["overlays"] = overlays
    if pixel_padding is not None:
        changes["padding"] = pixel_padding
    if not changes:
        return policy
    if not policy.cleans_pixels:
        _fail("pixel settings need the Clean Pixel Data option: add -o clean_pixel_data (the tcia profile has it)")
    pixels = replace(policy.pixels, **changes)
    if "engines" in changes:
        from medveil.pixels.ocr import OcrUnavailable, available_engines

        try:
            for engine in pixels.engines:
                available_engines(engine)
        except OcrUnavailable as exc:
            _fail(str(exc))
    return replace(policy, pixels=pixels)


@app.command()
def deidentify(
    input: str = typer.Argument(..., help="A DICOM file or a directory (searched recursively); "
                                "with --engine dask also a URL such as s3://bucket/prefix."),
    output: str = typer.Argument(..., help="The release tree: <PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm "
                                 "(a directory, or a URL with --engine dask)."),
    profile: str = typer.Option("basic", "--profile", "-p", help=f"One of: {', '.join(PROFILES)}."),
    key_file: Path | None = typer.Option(None, "--key-file", "-k", help=f"Secret key (or set {KEY_ENV})."),
    throwaway_key_: bool = typer.Option(False, "--throwaway-key", help="Use a random key for this run only."),
    mappings: Path | None = typer.Option(
        None, "--mappings", help="Write uid_mapping.csv and patid_mapping.csv here (original identifiers!)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Parallel worker processes."),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", exists=True, help="YAML recipe."),
    option: list[str] = typer.Option([], "--option", "-o", help="Add an option (repeatable)."),
    without: list[str] = typer.Option(
        [], "--without", help="Drop an option the profile or recipe has (repeatable), e.g. clean_pixel_data."),
    workspace: Path | None = typer.Option(
        None, "--workspace", help="Private workspace (audit store, quarantine); default: beside OUTPUT."),
    burned_in: BurnedIn | None = typer.Option(
        None, "--burned-in", help="Files presumed to carry burned-in text: quarantine (default) or pass."),
    pixel_policy: Optional[str] = typer.Option(
        None, "--pixel-policy", help="With clean_pixel_data: auto (default), all-text or phi-only."),
    pixel_scan: Optional[str] = typer.Option(
        None, "--pixel-scan", help="With clean_pixel_data: all (default: OCR every image) or flagged "
        "(only images presumed to carry burned-in text; faster, trusts the header)."),
    ocr: Optional[str] = typer.Option(
        None, "--ocr", help="OCR engines, comma-separated: rapidocr (default), tesseract, auto (all installed)."),
    pixel_rules: Optional[Path] = typer.Option(
        None, "--pixel-rules", exists=True, dir_okay=False, help="Your devices' known text locations (YAML/JSON)."),
    overlays: Optional[str] = typer.Option(
        None, "--overlays", help="With clean_pixel_data: remove overlays with text (default), all, or keep."),
    pixel_padding: Optional[int] = typer.Option(
        None, "--pixel-padding", min=0, help="Grow each masked box by this many pixels (default 3)."),
    verify: bool = typer.Option(
        False, "--verify", help="Rescan every output (header, overlays, OCR of pixels); quarantine what still "
        "looks like PHI."),
    sequential_ids: bool = typer.Option(
        False, "--sequential-ids", help="Number patients 1, 2, ... (kept in the workspace) instead of keyed IDs."),
    record_originals: bool = typer.Option(
        False, "--record-originals", help="Store original input paths in the audit store."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Skip inputs already done identically."),
    dry: bool = typer.Option(False, "--dry-run", help="Show what would change for one file; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the run's summary as one self-contained HTML file (no original "
        "values; masked regions shown from the output)."),
    engine: Engine = typer.Option(
        Engine.local, "--engine", help="local (a process pool) or dask (a cluster; local unless --scheduler)."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (tcp://host:8786); default: start a local cluster."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Files per Dask task (default: up to 1000, several tasks per worker)."),
    clean_visual_features: str | None = typer.Option(
        None, "--clean-visual-features", help="cxr: anonymise chest CR/DX pixels with a trained model "
                                               "(needs the [cxr] extra; see docs/cxr.md)."),
    cxr_model: Path | None = typer.Option(None, "--cxr-model", help="Checkpoint for --clean-visual-features cxr."),
) -> None:
    """De-identify INPUT into OUTPUT."""
    if not is_url(input) and not Path(input).exists():
        _fail("the input path does not exist")
    if scheduler and engine is not Engine.dask:
        _fail("--scheduler needs --engine dask")
    try:
        policy = _policy(profile, recipe, option, burned_in, without)
        if clean_visual_features is not None or cxr_model is not None:
            policy = replace(policy, visual_features=clean_visual_features or "cxr",
                             visual_features_model=str(cxr_model) if cxr_model else None)
        if sequential_ids:
            policy = replace(policy, sequential_patient_ids=True)
        policy = _pixel_settings(policy, pixel_policy, pixel_scan, ocr, pixel_rules, overlays, pixel_padding)
        if verify:
            policy = replace(policy, verify=True)
        key = _load_key(key_file, throwaway_key_)
        if dry:
            if is_url(input):
                _fail("--dry-run reads a local file or directory")
            _dry_run(Path(input), policy, key)
            return
        with Progress(TextColumn("de-identifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("files", total=None)
            summary = deidentify_path(input, output, policy=policy, key=key, mappings_dir=mappings,
                                      workspace=workspace, workers=workers,
                                      record_originals=record_originals, resume=resume,
                                      engine=engine.value, scheduler=scheduler, batch_size=batch_size,
                                      progress=lambda n: bar.advance(task, n),
                                      on_total=lambda total: bar.update(task, total=total))
    except MedveilError as exc:
        _fail(str(exc))
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug: say so without quoting values; details on request
        if os.environ.get("MEDVEIL_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}); rerun with MEDVEIL_DEBUG=1 for details "
              "(they may show file paths and values)", code=3)
    if report is not None:
        _write_report(summary, report, output)
    if as_json:
        typer.echo(json.dumps({
            "run_id": summary.run_id, "files_total": summary.files_total, "written": summary.written,
            "unchanged": summary.unchanged, "quarantined": summary.quarantined, "skipped": summary.skipped,
            "reasons": dict(summary.reasons), "actions": dict(summary.actions), "events": dict(summary.events),
            "workspace": str(summary.workspace)}, indent=2, sort_keys=True))
    else:
        _print_summary(summary, policy)
    if summary.quarantined:
        raise typer.Exit(1)


def _write_report(summary, report: Path, output: str) -> None:
    from medveil.review.static import write_report

    try:
        write_report(summary.workspace, report, run_id=summary.run_id,
                     output=None if is_url(output) else Path(output))
    except MedveilError as exc:
        _fail(f"the report could not be written: {exc}")
    console.print(f"report: {report}")


def _print_summary(summary, policy) -> None:
    out = Console()
    out.print(f"[bold]medveil[/] {policy.describe()}")
    out.print(f"files: {summary.files_total}  written: {summary.written}  unchanged: {summary.unchanged}  "
              f"quarantined: {summary.quarantined}  skipped: {summary.skipped}")
    if summary.actions:
        names = {"X": "removed", "Z": "emptied", "D": "dummy", "K": "kept", "C": "cleaned/shifted",
                 "U": "UIDs replaced", "U*": "references remapped", "P": "pseudonymised", "R": "recipe value"}
        out.print("actions: " + ", ".join(f"{names.get(a, a)} {n}" for a, n in sorted(summary.actions.items())))
    if summary.reasons:
        table = RichTable(title="not written")
        table.add_column("reason")
        table.add_column("files", justify="right")
        for reason, count in summary.reasons.most_common():
            table.add_row(reason, str(count))
        out.print(table)
        out.print(f"quarantined files and reasons: {summary.quarantine_dir}")
    out.print(f"audit store: {summary.workspace / 'audit.sqlite'}")


def _dry_run(input: Path, policy, key) -> None:
    with silenced():
        target = next((d.path for d in discover(input) if d.kind == "dicom"), None)
    if target is None:
        _fail("no DICOM file found for the dry run")
    changes, events = dry_run(target, policy, key)
    table = RichTable(title=f"dry run: {len(changes)} top-level attributes change ({policy.describe()})")
    for column in ("tag", "keyword", "change", "new value"):
        table.add_column(column)
    for change in changes:
        table.add_row(change.tag, change.keyword, change.change, change.new_value)
    Console().print(table)
    for (category, detail), count in Counter(events).most_common():
        Console().print(f"event: {category}: {detail}" + (f" (x{count})" if count > 1 else ""))


def _register_subcommands() -> None:
    """Subcommands that live in their own modules add themselves to ``app``."""
    from medveil.cli import cxr, report, review, synth, validate, verify

    validate.register(app)
    synth.register(app)
    verify.register(app)
    cxr.register(app)
    report.register(app)
    review.register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
