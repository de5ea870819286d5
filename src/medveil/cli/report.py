"""``medveil report``: what a run did to each file, from its workspace."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from medveil.cli.common import fail
from medveil.errors import MedveilError


def report(
    workspace: Path = typer.Argument(..., metavar="WORKSPACE",
                                     help="The run's private workspace (e.g. OUTPUT.medveil-workspace)."),
    run: str | None = typer.Option(None, "--run", help="A run id (or its start); default: the latest run."),
    as_json: bool = typer.Option(False, "--json", metavar="",
                                 help="Print the summary and every file as JSON on stdout."),
    notable: bool = typer.Option(False, "--notable", metavar="", help="List only files with repairs, masked boxes, a "
                                 "reason or a curator's decision."),
    show_originals: bool = typer.Option(
        False, "--show-originals", metavar="", help="Show original input paths where the run recorded them "
        "(--record-originals); they may hold names and MRNs."),
    masked_png: Path | None = typer.Option(
        None, "--masked-png", help="Also write the masked images before and after, boxes drawn, to this PNG "
        "(original pixels: keep it private)."),
) -> None:
    """List per file: status, repairs, masked boxes and reasons (terminal table or --json)."""
    from medveil.review.composite import write_masked_png
    from medveil.review.overview import ACTION_NAMES, load

    try:
        overview = load(workspace, run)
        shown = write_masked_png(overview, masked_png) if masked_png is not None else 0
    except MedveilError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(overview.as_dict(originals=show_originals), indent=2, sort_keys=True))
    else:
        _print(overview, notable, show_originals, ACTION_NAMES)
    if masked_png is not None:
        message = (f"masked images (before/after, original pixels): {masked_png} ({shown} image(s))" if shown
                   else "no masked images in this run: nothing written")
        Console(stderr=True).print(Text(message))


def _print(overview, notable: bool, show_originals: bool, names: dict[str, str]) -> None:
    out = Console()
    summary = overview.summary_dict()
    out.print(Text(f"run {summary['run_id']}  started {summary['started_at']}  profile {summary['profile']}  "
                   f"options {', '.join(summary['options'].get('options', [])) or '-'}"))
    if overview.run.get("finished_at") is None:
        out.print(Text("this run did not finish (interrupted): files after the last one listed were not processed",
                       style="yellow"))
    counts = "  ".join(f"{status}: {n}" for status, n in sorted(summary["run_status"].items()))
    out.print(Text(f"files: {summary['files']}  {counts}"))
    if summary["status_now"] != summary["run_status"]:
        now = "  ".join(f"{status}: {n}" for status, n in sorted(summary["status_now"].items()))
        out.print(Text(f"now, after curators' decisions: {now}"))
    if summary["actions"]:
        actions = sorted(summary["actions"].items())
        out.print(Text("actions: " + ", ".join(f"{names.get(a, a)} {n}" for a, n in actions)))
    if summary["repairs"]:
        out.print(Text("repairs: " + ", ".join(f"{a} {n}" for a, n in sorted(summary["repairs"].items()))))
    out.print(Text(f"masked pixels: {summary['masked_boxes']} box(es) in {summary['masked_files']} file(s)"))
    for reason, count in sorted(summary["quarantine_reasons"].items(), key=lambda item: -item[1]):
        out.print(Text(f"quarantined ({count}): {reason}"))
    table = Table(title="files")
    table.add_column("input ref", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("repairs")
    table.add_column("masked", justify="right")
    table.add_column("reason / decision", overflow="fold")  # a reason is read whole, never cut short
    table.add_column("original path" if show_originals else "output", overflow="fold")
    listed = 0
    for state in overview.files:
        decided = state.decisions[-1] if state.decisions else None
        if notable and not (state.repairs or state.boxes or state.reason or decided):
            continue
        listed += 1
        status = state.status if state.status == state.run_status else f"{state.run_status} -> {state.status}"
        repairs = ", ".join(sorted({r.get("attribute", "?") for r in state.repairs}))
        note = state.reason or ""
        if decided:
            note = (note + "; " if note else "") + f"{decided.get('decision')} {decided.get('at', '')}".strip()
        where = (state.original_path or "(not recorded)") if show_originals else _short(state.output_relpath)
        table.add_row(Text(state.input_ref[:12]), Text(status), Text(repairs), str(state.masked or ""), Text(note),
                      Text(where))
    out.print(table)
    if notable and listed < len(overview.files):
        out.print(Text(f"{len(overview.files) - listed} other file(s) released with nothing to note"))
    if summary["status_now"].get("quarantined"):
        out.print(Text(f"quarantined copies: {overview.workspace / 'quarantine'}; review them with "
                       f"'medveil review {overview.workspace}'"))
    else:
        out.print(Text(f"nothing quarantined; see masked pixels and header changes with "
                       f"'medveil review {overview.workspace}'"))


def _short(relpath: str | None) -> str:
    """PatientID/…/SOPInstanceUID.dcm: the parts a reader matches on (``--json`` has the whole path)."""
    if not relpath:
        return ""
    parts = relpath.split("/")
    return relpath if len(parts) < 4 else f"{parts[0]}/…/{parts[-1]}"


def register(app: typer.Typer) -> None:
    app.command(name="report")(report)
