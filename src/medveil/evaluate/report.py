"""What a validation tells its user: a terminal summary, JSON, and a discrepancy CSV.

The summary and the JSON hold counts and scores only.  The discrepancy CSV
holds, for each failed or errored check, the value found in the output, which
is PHI when the check failed; it is written only where the user asks.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medveil.evaluate.answer_key import ACTIONS
from medveil.evaluate.checks import PASSED, expected_text
from medveil.evaluate.score import FAMILY_WEIGHTS, Scores
from medveil.evaluate.validator import ValidationResult

DISCREPANCY_COLUMNS = ("file", "instance", "series", "tag", "tag_name", "action", "status",
                       "expected", "found", "reason")

OCR_NOTE = ("pixels_hidden uses medveil's own OCR ({engine}); the MIDI-B script used EasyOCR, "
            "which downloads its models at run time")


def summary_json(result: ValidationResult, headline: str = "instance") -> dict[str, object]:
    return {
        "headline": headline,
        "score": _level(result, headline).overall.score,
        "weighted": _level(result, headline).weighted,
        "instance": result.instance.as_dict(),
        "series": result.series.as_dict(),
        "rows": result.rows,
        "matched_instances": result.matched_rows,
        "missing_instances": result.missing_rows,
        "unreadable_instances": result.unreadable_rows,
        "output_files": result.output_files,
        "unreadable_outputs": result.unreadable_outputs,
        "unmatched_outputs": result.unmatched_outputs,
        "duplicate_outputs": result.duplicate_outputs,
        "mappings": {"source": result.mapping_source, "conflicts": result.mapping_conflicts},
        "ocr": {"engine": result.ocr_engine, "note": result.ocr_note or (
            OCR_NOTE.format(engine=result.ocr_engine) if result.ocr_engine else None)},
        "family_weights": FAMILY_WEIGHTS,
    }


def _level(result: ValidationResult, headline: str) -> Scores:
    return result.series if headline == "series" else result.instance


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def render_summary(result: ValidationResult, console: Console, headline: str = "instance") -> None:
    level = _level(result, headline)
    console.print(f"[bold]{headline}-level score: {_percent(level.overall.score)}[/]  "
                  f"(weighted 70/20/10: {_percent(level.weighted)}; "
                  f"{level.overall.passed} passed, {level.overall.failed} failed, "
                  f"{level.overall.errored} errored)")
    other = "series" if headline == "instance" else "instance"
    console.print(f"{other}-level score: {_percent(_level(result, other).overall.score)}")
    table = Table(title="by action")
    for column in ("action", "instance", "series", "passed", "failed", "errored"):
        table.add_column(column, justify="left" if column == "action" else "right")
    for action in ACTIONS:
        tally = result.instance.actions.get(action)
        if tally is None or tally.total == 0:
            continue
        series = result.series.actions.get(action)
        table.add_row(action, _percent(tally.score), _percent(series.score if series else None),
                      str(tally.passed), str(tally.failed), str(tally.errored))
    console.print(table)
    families = Table(title="by rule family")
    for column in ("family", "weight", "instance", "series", "checks"):
        families.add_column(column, justify="left" if column == "family" else "right")
    for name, tally in sorted(result.instance.families.items()):
        series = result.series.families.get(name)
        families.add_row(name, str(FAMILY_WEIGHTS.get(name, 0)), _percent(tally.score),
                         _percent(series.score if series else None), str(tally.total))
    console.print(families)
    console.print(f"instances: {result.rows} in the key, {result.matched_rows} scored, "
                  f"{result.missing_rows} missing, {result.unreadable_rows} unreadable; "
                  f"output files: {result.output_files} ({result.unmatched_outputs} not in the key, "
                  f"{result.unreadable_outputs} not DICOM, {result.duplicate_outputs} duplicate UIDs)")
    console.print(f"mappings: {result.mapping_source}"
                  + (f" ({result.mapping_conflicts} conflicting pairs)" if result.mapping_conflicts else ""))
    if result.ocr_engine:
        console.print(OCR_NOTE.format(engine=result.ocr_engine))
    elif result.ocr_note:
        console.print(f"[yellow]pixels_hidden checks errored:[/] {result.ocr_note}")


def write_discrepancies(result: ValidationResult, path: Path) -> int:
    """One row per failed or errored check; returns the number of rows.

    The file is created with mode 0600: it holds the values found, which may be PHI.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(DISCREPANCY_COLUMNS)
        for item in result.results:
            outcome = item.outcome
            if outcome.status == PASSED:
                continue
            check = item.check
            expected = expected_text(check)
            writer.writerow((item.file or "", item.instance, item.series, check.tag_ds, check.tag_name,
                             check.action, outcome.status, expected or "", outcome.found or "",
                             outcome.reason or ""))
            written += 1
    return written
