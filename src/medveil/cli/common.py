"""What every ``medveil`` subcommand shares: the error console and the exit helper."""

from __future__ import annotations

from typing import NoReturn

import typer
import typer.core
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


def unwrap(text: str | None) -> str | None:
    """*text* with each paragraph on one line, so that the terminal, not the source, decides where it breaks.

    Docstrings are wrapped to the source's width; typer prints the lines of every paragraph after the first
    as they are, which leaves ragged lines on a wide terminal and stray breaks on a narrow one.
    """
    if not text:
        return text
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n"))


class Group(typer.core.TyperGroup):
    """The ``medveil`` command group (and ``medveil cxr``): help that reads the same at any width.

    * Typer labels an option with its type; on an on/off flag that label (``--json <bool>``) is noise.
      medveil's own flags set ``metavar=""``; the help option is typer's own, made per command, so it is
      blanked here.
    * Each command's help is unwrapped (:func:`unwrap`).
    """

    def get_help_option(self, ctx):
        return _plain_flag(super().get_help_option(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, Group):
            command.help = unwrap(command.help)
            _plain_flag(command.get_help_option(ctx))
        return command


def _plain_flag(option):
    if option is not None:
        option.metavar = ""
    return option
