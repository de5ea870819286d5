"""``medveil verify``: rescan a release tree for PHI and fail when any is found."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from medveil.cli.common import fail
from medveil.cli.progress import RunProgress
from medveil.errors import MedveilError
from medveil.policy import PixelSettings
from medveil.records import Status
from medveil.store.mappings import PATID_FILE, UID_FILE

#: Files medveil's --mappings writes: original identifiers, never part of a release.
MAPPING_FILES = frozenset({UID_FILE, PATID_FILE})


def verify(
    output_dir: Path = typer.Argument(..., metavar="OUTPUT_DIR", help="The de-identified release tree to check."),
    workspace: Path | None = typer.Option(
        None, "--workspace", help="The run's private workspace (default: beside OUTPUT_DIR); its keyed "
        "fingerprints of the input identifiers are what the output is checked against."),
    key_file: Path | None = typer.Option(
        None, "--key-file", "-k", help="The run's key (or set MEDVEIL_KEY_FILE); without it the files' own "
        "identifiers cannot be matched: only the de-identification structure and generic PHI patterns are checked."),
    ocr: str = typer.Option(",".join(PixelSettings().engines), "--ocr",
                            help="OCR engines for pixels and overlays, comma-separated "
                            "(ppocr, rapidocr, tesseract, auto)."),
    no_ocr: bool = typer.Option(False, "--no-ocr", metavar="", help="Check header text only."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the findings as JSON on stdout."),
) -> None:
    """Exit 1 listing files of OUTPUT_DIR that still carry PHI (header, private, SR, overlays, pixels)."""
    from medveil.pixels.ocr import OcrUnavailable, available_engines
    from medveil.pseudonym import load_key
    from medveil.quiet import silenced
    from medveil.runner.book import default_workspace, escaped
    from medveil.store.audit import AuditStore
    from medveil.verify import Fingerprints

    if not output_dir.is_dir():
        fail(f"not a folder: {output_dir}")
    engines = None if no_ocr else [e.strip() for e in ocr.split(",") if e.strip()]
    try:
        for engine in engines or []:
            available_engines(engine)
    except OcrUnavailable as exc:
        fail(f"{exc} (or pass --no-ocr)")
    if key_file is None and os.environ.get("MEDVEIL_KEY_FILE"):
        key_file = Path(os.environ["MEDVEIL_KEY_FILE"])
    matcher = None
    note = ("the de-identification structure and generic PHI patterns only: without the run's key the "
            "files' own identifiers cannot be matched (pass --key-file for that)")
    workspace = workspace or default_workspace(output_dir)
    try:
        if key_file is not None:
            key = load_key(key_file)
            store_path = workspace / "audit.sqlite"
            if not store_path.is_file():
                fail(f"no audit store in {workspace}: pass the run's --workspace")
            with AuditStore.open(store_path) as store:
                digests = store.fingerprints(key.fingerprint())
                known_keys = store.fingerprint_keys()
            if not digests and known_keys:
                fail("the workspace's fingerprints were made with another key")
            matcher = Fingerprints(key, digests)
            note = f"{len(digests)} input identifier fingerprints and generic PHI patterns"
    except MedveilError as exc:
        fail(str(exc))

    results: dict[str, list[str]] = {}
    checked = 0
    files = list(release_entries(output_dir))
    with silenced(), RunProgress("verifying", quiet=as_json, held_label="flagged") as progress:
        progress.set_total(len(files))
        for path, problem in files:
            checked += 1
            relpath = escaped(path.relative_to(output_dir))
            if problem is not None:
                results[relpath] = [problem]
            else:
                results.update(_check(path, relpath, matcher, engines))
            progress(Status.QUARANTINED if relpath in results else Status.WRITTEN)
    if as_json:
        typer.echo(json.dumps({"checked": checked, "failed": len(results), "against": note,
                               "ocr": engines or [], "files": results}, indent=2, sort_keys=True))
    else:
        out = Console(soft_wrap=True)
        out.print(f"checked {checked} files against {note}; OCR: {', '.join(engines) if engines else 'off'}")
        if results:
            # One plain line per file, never wrapped: paths must survive copy and paste.
            out.print(f"{len(results)} files still carry possible PHI (file: where (what)):")
            for relpath, findings in sorted(results.items()):
                out.print(f"  {escape(relpath)}: {escape('; '.join(findings))}", soft_wrap=True)
        else:
            out.print("[green]no PHI found[/]")
    if results:
        raise typer.Exit(1)


def release_entries(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Everything under *root*, sorted: ``(path, None)`` for a regular file to scan, else ``(path, finding)``.

    Nothing in a release tree is passed over unseen: hidden files, a DICOMDIR
    (its records name patients) and files named like medveil's mapping files
    are scanned or flagged like any other file.  Symbolic links are flagged,
    never followed (an archiver that follows them would ship whatever they
    point at), and so are FIFOs, devices and sockets, which are never opened.
    """
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        links = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        dirs[:] = [d for d in dirs if d not in links]
        for name in sorted(names + links):
            path = Path(directory, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                yield path, "file (could not be examined)"
                continue
            if stat.S_ISLNK(mode):
                yield path, "file (a symbolic link: not followed; a release holds files only)"
            elif not stat.S_ISREG(mode):
                yield path, "file (not a regular file: never opened)"
            elif name in MAPPING_FILES:
                yield path, "file (a mapping file: original identifiers)"
            else:
                yield path, None


def _check(path: Path, relpath: str, matcher, engines) -> dict[str, list[str]]:
    """One file's findings, as ``{relpath: [finding, ...]}``; empty when nothing was found."""
    from medveil.evaluate.files import read_dataset
    from medveil.verify import scan_dataset
    from medveil.verify.structure import structural_findings

    ds = read_dataset(path)
    if ds is None:
        return {relpath: ["file (not readable DICOM)"]}
    try:
        findings = structural_findings(ds) + scan_dataset(ds, matcher, ocr_engines=engines)
    except Exception as exc:  # noqa: BLE001  (a file that cannot be checked is not vouched for)
        return {relpath: [f"file (could not be checked: {type(exc).__name__})"]}
    return {relpath: [str(f) for f in findings]} if findings else {}


def register(app: typer.Typer) -> None:
    app.command(name="verify")(verify)
