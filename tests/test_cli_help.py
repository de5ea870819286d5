"""``medveil --help`` and every subcommand's ``--help``, rendered at 80 and 120 columns.

What a newcomer reads first must read whole: option names never cut, every option explained, no line past
the terminal, the deidentify options in their panels, every command listed, flags without a ``<bool>``
label, and the research status of the cxr option said where it is offered.  The rendering is checked, not
the source, because typer and rich decide the layout.
"""

from __future__ import annotations

import re

import pytest
import typer.main
import typer.rich_utils
from typer.testing import CliRunner

from medveil.cli import app

WIDTHS = (80, 120)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: The commands of ``medveil`` and ``medveil cxr``: a command dropped from registration fails here, and a new
#: one is added here on purpose.
TOP_LEVEL = {"keygen", "profiles", "deidentify", "validate", "synth", "verify", "serve", "pull", "report",
             "review", "cxr"}
CXR = {"train", "train-lungs", "evaluate", "attack", "anonymize"}
#: Commands whose options come in panels, and the panels each must show.
PANELS = {
    ("deidentify",): {"Arguments", "Policy", "Pixels", "Pseudonyms", "Run", "Output"},
    ("serve",): {"Network", "Policy", "Pseudonyms", "Run"},
    ("pull",): {"Network", "Selection", "Policy", "Pseudonyms", "Run"},
}


def _commands(group=None, path=()):
    group = group if group is not None else typer.main.get_command(app)
    yield path, group
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = list(_commands())


def render(path: tuple[str, ...], width: int) -> str:
    """The help of ``medveil PATH`` on a terminal *width* columns wide.

    typer reads $TERMINAL_WIDTH once, at import, into ``rich_utils.MAX_WIDTH``; rich reads $COLUMNS per
    console.  Both are set, so that neither an earlier render nor the CI's environment decides the width.
    """
    saved = typer.rich_utils.MAX_WIDTH
    typer.rich_utils.MAX_WIDTH = width
    try:
        result = CliRunner().invoke(app, [*path, "--help"], prog_name="medveil",
                                    env={"COLUMNS": str(width), "NO_COLOR": "1"})
    finally:
        typer.rich_utils.MAX_WIDTH = saved
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def _params(path, command):
    """The command's parameters, its help option included (typer adds that one per context)."""
    context = command.make_context(" ".join(("medveil", *path)), [], resilient_parsing=True)
    return [*(p for p in command.params if not getattr(p, "hidden", False)), command.get_help_option(context)]


@pytest.fixture(scope="module", params=WIDTHS, ids=lambda w: f"{w}cols")
def helps(request):
    return request.param, {path: render(path, request.param) for path, _command in COMMANDS}


def _id(path):
    return " ".join(path) or "medveil"


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=_id)
def test_no_line_runs_past_the_terminal(helps, path):
    width, texts = helps
    long = [line for line in texts[path].splitlines() if len(line.rstrip()) > width]
    assert not long, "\n".join(long)


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=_id)
def test_nothing_is_cut(helps, path):
    width, texts = helps
    text = texts[path]
    assert "…" not in text, next(line for line in text.splitlines() if "…" in line)


@pytest.mark.parametrize("path,command", COMMANDS, ids=[_id(p) for p, _ in COMMANDS])
def test_every_option_name_shows_whole_with_its_help(helps, path, command):
    width, texts = helps
    text = texts[path]
    for param in _params(path, command):
        assert (param.help or "").strip(), f"{_id(path)}: {param.name} has no help text"
        names = [*param.opts, *getattr(param, "secondary_opts", [])]
        if param.param_type_name == "argument":
            names = [param.metavar or param.name]
        for name in names:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{_id(path)}: {name} at {width}"
        words = " ".join(param.help.split())
        assert words[:30] in " ".join(text.replace("│", " ").split()), f"{_id(path)}: help of {param.name}"


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=_id)
def test_flags_carry_no_type_label(helps, path):
    _width, texts = helps
    assert "<bool>" not in texts[path]


@pytest.mark.parametrize("path,command", COMMANDS, ids=[_id(p) for p, _ in COMMANDS])
def test_command_help_paragraphs_are_wrapped_by_the_terminal(helps, path, command):
    """A paragraph that fits the width is on one line; a docstring's own line breaks do not show."""
    width, texts = helps
    lines = [" ".join(line.split()) for line in texts[path].splitlines()]
    for paragraph in (command.help or "").split("\n\n"):
        words = " ".join(paragraph.split()).replace("\\[", "[")
        if words and len(words) <= width - 4:
            assert words in lines, f"{_id(path)}: {words!r} is broken across lines at {width}"


@pytest.mark.parametrize("path", list(PANELS), ids=_id)
def test_options_come_in_their_panels(helps, path):
    _width, texts = helps
    shown = set(re.findall(r"╭─ (.+?) ─", texts[path]))
    assert PANELS[path] <= shown, PANELS[path] - shown
    assert "Options" in shown  # only --help is left outside the panels
    command = dict(COMMANDS)[path]
    assert {p.rich_help_panel for p in command.params
            if p.param_type_name == "option" and not getattr(p, "hidden", False)} <= PANELS[path]


def test_every_command_is_listed(helps):
    _width, texts = helps
    registered = {path[-1] for path, _ in COMMANDS if len(path) == 1}
    cxr = {path[-1] for path, _ in COMMANDS if len(path) == 2 and path[0] == "cxr"}
    assert registered == TOP_LEVEL and cxr == CXR
    for group, names in (((), TOP_LEVEL), (("cxr",), CXR)):
        listed = set(re.findall(r"^│ (\S+) ", texts[group].split("Commands", 1)[1], re.M))
        assert listed == names


def test_the_cxr_option_says_it_is_research_not_a_guarantee(helps):
    _width, texts = helps
    for path in (("cxr",), ("deidentify",), ("cxr", "anonymize")):
        words = " ".join(texts[path].replace("│", " ").split())
        assert "research" in words.lower(), path
        assert "not a guarantee of anonymity" in words, path
    top = " ".join(texts[()].replace("│", " ").split())
    assert "research" in top.split("cxr", 1)[1].lower()  # already in the command list
