"""What every ``medveil`` subcommand shares: the error console and the exit helper."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
"""Messages go to stderr so that ``--json`` output on stdout stays parseable."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as an error and exit with ``code`` (2: bad setup or input).

    The message is printed as it is written: brackets in it (``'medveil[ocr]'``,
    a path) are not read as rich markup.
    """
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)
