"""The documentation stays true to the repository: links resolve, the README stays short, and
docs/cli.md names every command and option the command line has.

A page that links to a moved or deleted file, or a README that grows back into a manual, fails here
rather than in a reader's hands.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200

#: [text](target) and ![alt](target); the target ends at whitespace or ")".  Code spans are removed
#: before matching, so `[x](y)` inside backticks is not a link.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...

#: Links to files a command writes that are not committed yet, each with its reason, as
#: ``("docs/page.md", "target")``.  An entry whose file appears must be removed (the test below says so),
#: so this list cannot hide a fixed link.
NOT_YET_WRITTEN: set[tuple[str, str]] = set()


def _pages() -> list[Path]:
    return [README, ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def _links(page: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _FENCE.sub("", page.read_text(encoding="utf-8")))
    return _LINK.findall(text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    for line in text.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            title = match.group(1).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path) -> None:
    broken = []
    name = str(page.relative_to(ROOT))
    for target in _links(page):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        if (name, target) in NOT_YET_WRITTEN:
            assert not resolved.exists(), f"{target} exists now: remove it from NOT_YET_WRITTEN"
            continue
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files or headings: {broken}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_in_page_anchors_exist(page: Path) -> None:
    anchors = _anchors(page)
    missing = [t for t in _links(page) if t.startswith("#") and t[1:] not in anchors]
    assert not missing, f"{page.relative_to(ROOT)} links to headings it does not have: {missing}"


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_every_doc_page_is_on_the_index() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    listed = {Path(t.partition("#")[0]).name for t in _links(DOCS / "index.md")}
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.name not in listed]
    assert index and not missing, f"docs/index.md does not list: {missing}"


def _commands():
    from medveil.cli import app

    def walk(command, path):
        yield path, command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), ["medveil"]))


def test_cli_reference_names_every_command_and_option() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = []
    for path, command in _commands():
        name = " ".join(path)
        if len(path) > 1 and f"`{name}`" not in reference:
            missing.append(name)
        for param in command.params:
            if param.param_type_name == "argument":
                continue
            for flag in (*param.opts, *param.secondary_opts):
                if f"`{flag}`" not in reference:
                    missing.append(f"{name} {flag}")
    assert not missing, f"docs/cli.md does not mention: {missing}"
