"""The ``medveil`` command line.

Every command prints counts, reasons, pseudonyms and paths inside the
release tree, never an original identifier: terminals are logged.
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydicom.datadict import keyword_for_tag
from rich.console import Console
from rich.table import Table as RichTable

from medveil._version import __version__
from medveil.cli.common import Group, console
from medveil.cli.common import fail as _fail
from medveil.engine.actions import ACTIONS
from medveil.errors import MedveilError
from medveil.policy import PROFILES, Option, load_table
from medveil.pseudonym import generate_key_file

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True,
                  help="De-identify DICOM files (PS3.15 Annex E) with keyed pseudonymisation.")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"medveil {__version__} (DICOM PS3.15 Table E.1-1, edition {load_table().edition})")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, metavar="",
                                       help="Show the version and the standard edition, then exit.")) -> None:
    """medveil: de-identify medical images so they can be shared."""


@app.command()
def keygen(path: Path = typer.Argument(..., metavar="PATH",
                                       help="Where to write the new key file (mode 0600).")) -> None:
    """Create a new secret pseudonymisation key."""
    try:
        key = generate_key_file(path)
    except MedveilError as exc:
        _fail(str(exc))
    console.print(f"key written to {path} (fingerprint {key.fingerprint()}); keep it secret and backed up: "
                  "the same key reproduces the same pseudonyms, a lost key cannot be recovered.")


@app.command()
def profiles() -> None:
    """List the named profiles and what each option does."""
    out = Console(soft_wrap=True)
    table = RichTable(title=f"Profiles (PS3.15 Table E.1-1 {load_table().edition})")
    table.add_column("profile")
    table.add_column("options")
    for name, spec in PROFILES.items():
        table.add_row(name, ", ".join(sorted(o.value for o in spec["options"])) or "(Basic Profile only)")
    out.print(table)
    out.print("options (-o NAME adds one, --without NAME drops one):")
    width = max(len(option.value) for option in Option)
    for option in Option:
        out.print(f"  {option.value:<{width}}  {option.summary}", soft_wrap=True)
    out.print("actions (Table E.1-1 codes, and P for a keyed pseudonym):")
    for code, action in ACTIONS.items():
        out.print(f"  {code:<2}  {action.describe()}", soft_wrap=True)
    for name, spec in PROFILES.items():
        conventions = spec.get("conventions", {})
        if conventions:
            out.print(f"{name} conventions (where the curators' practice differs from the table; docs/precision.md):")
        for tag, convention in conventions.items():
            attribute = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
            out.print(f"  {attribute} {convention.decision.action}: {convention.reason}", soft_wrap=True)


def _register_subcommands() -> None:
    """Subcommands that live in their own modules add themselves to ``app``."""
    from medveil.cli import cxr, deidentify, gateway, report, review, synth, validate, verify

    deidentify.register(app)
    validate.register(app)
    synth.register(app)
    verify.register(app)
    cxr.register(app)
    gateway.register(app)
    report.register(app)
    review.register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
