"""``medveil validate``: score de-identified output against a MIDI-B answer key."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from medveil.cli.common import console, fail
from medveil.cli.progress import RunProgress
from medveil.errors import MedveilError


def validate(
    output_dir: Path = typer.Argument(..., metavar="OUTPUT_DIR",
                                      help="De-identified files to score (searched recursively)."),
    answer_key: Path = typer.Option(..., "--answer-key", help="MIDI-B answer key (SQLite, table answer_data)."),
    mappings: Path | None = typer.Option(
        None, "--mappings", help="Folder with uid_mapping.csv and patid_mapping.csv (id_old,id_new)."),
    original: Path | None = typer.Option(
        None, "--original",
        help="The input the tool was given: mappings a tool did not write are inferred by pairing "
             "input and output files (same relative path, else identical Pixel Data)."),
    series: bool = typer.Option(False, "--series", metavar="", help="Headline the series-level score."),
    instance: bool = typer.Option(False, "--instance", metavar="", help="Headline the instance-level score (default)."),
    report: Path | None = typer.Option(
        None, "--report",
        help="Discrepancy CSV, one row per failed or errored check. It holds the values found, "
             "which may be PHI: keep it where the data may be kept."),
    ocr: str = typer.Option("auto", "--ocr",
                            help="OCR for pixels_hidden: auto (every installed engine; a box passes only if none "
                            "reads the text), tesseract or rapidocr."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the scores as JSON on stdout."),
) -> None:
    """Score OUTPUT_DIR against a MIDI-B answer key: share of required actions done right."""
    from medveil.evaluate.report import (
        render_summary,
        summary_json,
        write_discrepancies,
    )
    from medveil.evaluate.validator import ValidationSettings, validate_outputs

    if series and instance:
        fail("--series and --instance exclude each other")
    if not output_dir.is_dir():
        fail(f"not a folder: {output_dir}")
    settings = ValidationSettings(ocr_engine=ocr)
    try:
        with RunProgress("scoring", quiet=as_json, held_label="missing", unit="instances") as progress:
            result = validate_outputs(output_dir, answer_key, mappings_dir=mappings, original_dir=original,
                                      settings=settings, progress=progress, on_total=progress.set_total)
    except MedveilError as exc:
        fail(str(exc))
    if report is not None:
        try:
            written = write_discrepancies(result, report)
        except OSError as exc:
            fail(f"cannot write the report: {type(exc).__name__}")
        console.print(f"discrepancies: {written} rows in {report}")
    level = "series" if series else "instance"
    if as_json:
        typer.echo(json.dumps(summary_json(result, headline=level), indent=2, sort_keys=True))
    else:
        render_summary(result, Console(), headline=level)


def register(app: typer.Typer) -> None:
    app.command()(validate)
