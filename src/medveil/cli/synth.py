"""``medveil synth``: build a MIDI-B-style synthetic test set with its answer key."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from medveil.cli.common import fail
from medveil.cli.progress import RunProgress
from medveil.errors import MedveilError


def synth(
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", show_default=False,
                                   help="A new or empty folder for input/, answer_key.db and manifest.json."),
    seed: int = typer.Option(..., "--seed", metavar="N", help="Same seed and corpus: the same set, byte for byte."),
    corpus: Path | None = typer.Option(None, "--corpus", metavar="DIR",
                                       help="Real DICOM files to plant PHI in (default: the default corpora)."),
    patients: int | None = typer.Option(None, "--patients", min=1,
                                        help="Synthetic patients (default 10; at most one per source study)."),
    max_files: int | None = typer.Option(
        None, "--max-files", min=1, help="At most this many source files (one per series in turn)."),
    max_file_mb: int = typer.Option(20, "--max-file-mb", min=1, help="Skip source files larger than this."),
) -> None:
    """Build a test set: synthetic PHI in real DICOM files, input/, answer_key.db and manifest.json.

    The default corpora are pydicom's test files and the pydicom-data and deid-data packages, plus ../shared/corpora (or $MEDVEIL_SHARED/corpora) when present. The output holds synthetic PHI by design.
    """  # noqa: E501  (the help shows the docstring's line breaks, so the paragraph stays one line)
    from medveil.synth import synthesize
    from medveil.synth.build import LEFT_OUT

    if corpus is not None and not corpus.exists():
        fail(f"no such corpus: {corpus}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        fail(f"output folder is not empty: {out_dir} (choose a new or empty folder)")
    started = time.monotonic()
    try:
        with RunProgress("generating", held=LEFT_OUT, unit="sources") as progress:
            summary = synthesize(None if corpus is None else [corpus], out_dir, seed, patients,
                                 max_files=max_files, max_file_bytes=max_file_mb * 1024 * 1024,
                                 progress=progress, on_total=progress.set_total)
    except MedveilError as exc:
        fail(str(exc))
    elapsed = time.monotonic() - started
    out = Console()
    out.print(f"[bold]medveil synth[/] seed {seed}: {summary.files} files, {summary.patients} patients, "
              f"{summary.studies} studies, {summary.series} series ({summary.reports} generated reports, "
              f"{summary.burned_in} images with burned-in text) in {elapsed:.1f} s")
    out.print(f"sources: {summary.sources_found} usable; {summary.skipped} files left out (reasons in the manifest)")
    total = sum(summary.checks.values())
    out.print(f"checks: {total} — " + ", ".join(f"{action} {count}" for action, count in
                                                 sorted(summary.checks.items(), key=lambda kv: (-kv[1], kv[0]))))
    out.print("families: " + ", ".join(f"{family} {count}" for family, count in sorted(summary.families.items())))
    out.print(f"answer key: {summary.answer_key}\nmanifest: {summary.manifest}\ninput: {summary.out_dir / 'input'}")


def register(app: typer.Typer) -> None:
    app.command()(synth)
