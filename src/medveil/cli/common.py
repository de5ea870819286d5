"""What every ``medveil`` subcommand shares: the error console and the exit helper."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)
"""Messages go to stderr so that ``--json`` output on stdout stays parseable."""


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as an error and exit with ``code`` (2: bad setup or input)."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)
