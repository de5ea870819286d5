"""Attribute paths in the notation of MIDI-B answer keys and the TCIA knowledge base.

An answer key names the attribute a check applies to by a path such as
``<(0008,1140)>[<0000>]<(0008,1155)>``: a sequence, the item number, an
attribute inside that item.  Private attributes are named by block owner, not
by element number, because the block a vendor's creator lands in differs from
file to file: ``<(0019,"GEMS_ACQU_01",92)>`` is the element whose last two hex
digits are 92 in whichever block of group 0019 "GEMS_ACQU_01" reserved.  The
TCIA knowledge base writes the same thing without angle brackets around tags
(``(0008,1084)[<0>](0019,"GEMS_ACQU_01",92)``); both spellings parse.

One formatter serves the synthetic answer keys and the validator's flattened
view of a file, so the two always spell a path the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medveil.errors import MedveilError


class PathSyntaxError(MedveilError):
    """An attribute path that does not follow the answer-key notation."""


@dataclass(frozen=True, slots=True)
class Step:
    """One attribute on a path.

    ``creator`` is None for public attributes, where ``element`` is the full
    16-bit element number; for private attributes ``element`` is the offset
    within the creator's block (0x00-0xFF).  ``item`` is the item number when
    the path goes on into this attribute's sequence.
    """

    group: int
    element: int
    creator: str | None = None
    item: int | None = None

    @property
    def private(self) -> bool:
        return self.creator is not None

    def tag_text(self) -> str:
        if self.creator is None:
            return f"({self.group:04X},{self.element:04X})"
        return f'({self.group:04X},"{self.creator}",{self.element:02X})'


Path = tuple[Step, ...]

_TAG = r'\(\s*([0-9A-Fa-f]{4})\s*,\s*(?:"((?:[^"]|"")*)"\s*,\s*([0-9A-Fa-f]{2})|([0-9A-Fa-f]{4}))\s*\)'
_STEP = re.compile(r"<?" + _TAG + r">?(?:\[<?\s*(\d+)\s*>?\])?")


def parse_path(text: str) -> Path:
    """Parse ``<(gggg,eeee)>[<nnnn>]<(gggg,"CREATOR",ee)>`` into steps."""
    raw = text.strip()
    if not raw:
        raise PathSyntaxError("empty attribute path")
    steps: list[Step] = []
    position = 0
    while position < len(raw):
        match = _STEP.match(raw, position)
        if match is None:
            raise PathSyntaxError(f"cannot parse attribute path at character {position}")
        group_text, creator, offset, element = match.group(1, 2, 3, 4)
        item = match.group(5)
        group = int(group_text, 16)
        if creator is not None:
            steps.append(Step(group, int(offset, 16), creator.replace('""', '"').strip(), _int(item)))
        else:
            steps.append(Step(group, int(element, 16), None, _int(item)))
        position = match.end()
    for step in steps[:-1]:
        if step.item is None:
            raise PathSyntaxError("a sequence on an attribute path lacks its item number")
    if steps[-1].item is not None:
        raise PathSyntaxError("an attribute path ends in an item number, not an attribute")
    return tuple(steps)


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def format_path(steps: Path) -> str:
    """The answer-key spelling: every tag in angle brackets, upper-case hex, private
    creators upper-cased (as the MIDI-B script writes them), items as ``[<nnnn>]``."""
    parts: list[str] = []
    for step in steps:
        if step.creator is not None and step.creator != step.creator.upper():
            step = Step(step.group, step.element, step.creator.upper(), step.item)
        parts.append(f"<{step.tag_text()}>")
        if step.item is not None:
            parts.append(f"[<{step.item:04d}>]")
    return "".join(parts)


def normalise(text: str) -> str:
    """Canonical spelling of any accepted path text (case, brackets, item width)."""
    return format_path(parse_path(text))


def public(tag: int, *, item: int | None = None) -> Step:
    """A step for a public (or private-creator-less) attribute given as a 32-bit tag."""
    return Step(tag >> 16, tag & 0xFFFF, None, item)


def private(group: int, creator: str, offset: int, *, item: int | None = None) -> Step:
    """A step for the element at ``offset`` (0x00-0xFF) in ``creator``'s block of ``group``."""
    return Step(group, offset & 0xFF, creator.strip(), item)
