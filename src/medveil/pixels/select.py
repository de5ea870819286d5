"""Which of the text found in an image must be masked.

``all-text`` masks every region OCR found: right for ultrasound screens,
secondary captures and scanned documents, where text is annotation, not
anatomy. ``phi-only`` masks the text lines that say something about the
patient and keeps the rest, because on radiographs and cross-sectional
images labels such as "L", "PORTABLE" or "SEMI-ERECT" are part of the
clinical record. A line is PHI when the free-text detectors flag any of it
(the file's own names, IDs and dates in every written form, generic dates,
IDs, phone numbers, names from the gazetteer, institutions ...) or when it
is labelled as a patient field ("Name:", "DOB", "MRN", "Age" ...). The whole
line goes, label and value, since OCR splits a value into words unevenly
and a surname left beside a masked first name is still an identifier.

Ultrasound objects describe their clinical regions (Sequence of Ultrasound
Regions): text inside them is judged ``phi-only``, so a "LIVER" or "RT
KIDNEY" annotation survives on the anatomy while the header bar around it
is masked whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydicom import Dataset

from medveil.pixels.detect import TextBox
from medveil.pixels.misread import MisreadMatcher, misread_label
from medveil.text import KnownIdentifiers, TextCleaner

ALL_TEXT = "all-text"
PHI_ONLY = "phi-only"
PIXEL_POLICIES = (ALL_TEXT, PHI_ONLY)

#: Field labels that announce patient data on a screen or a film label.
_LABEL = re.compile(
    r"(?<![A-Za-z])(?:patient|pat|pt|name|nom|id|mrn|dob|d\.o\.b|birth|born|geb|age|sex|gender|acc|accession"
    r"|institution|hospital|clinic|physician|doctor|referring|ref\.?\s*phys|operator|tech|address"
    r"|phone|tel|ssn|study\s*date|exam\s*date|date|ward|room|bed)(?![A-Za-z])\s*[:#.]?",
    re.IGNORECASE,
)
#: DICOM Age String and similar: "045Y", "45 Y", "3 M".
_AGE = re.compile(r"^\s*\d{1,3}\s?[YMWD]\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LineToMask:
    """A line (or word) to mask and why (``all-text``, ``phi``, ``label``); never the text itself.

    ``block`` numbers the block of stacked lines the line belongs to: the
    geometry of a mask follows its block (:mod:`medveil.pixels.fit`).
    """

    box: TextBox
    reason: str
    block: int = 0


def group_lines(boxes: Sequence[TextBox]) -> list[list[TextBox]]:
    """Boxes of one frame on one text line, left to right.

    Two boxes share a line when they overlap vertically by half the smaller
    height and the horizontal gap between them is under two line heights.
    """
    lines: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: (b.frame, b.x1)):
        for line in lines:
            last = line[-1]
            if last.frame != box.frame:
                continue
            overlap = min(last.y2, box.y2) - max(last.y1, box.y1)
            height = min(last.y2 - last.y1, box.y2 - box.y1)
            tall = max(last.y2 - last.y1, box.y2 - box.y1)
            if height > 0 and overlap >= height / 2 and box.x1 - last.x2 <= 2 * tall:
                line.append(box)
                break
        else:
            lines.append([box])
    return lines


def group_blocks(lines: Sequence[list[TextBox]]) -> list[list[list[TextBox]]]:
    """Lines stacked into blocks: a line joins the block above it when it starts within one
    and a half line heights below and overlaps it horizontally (a line OCR missed between
    two it read leaves such a gap).

    Screens wrap long values ("Nielsen, Jimenez / and Aguilar / Community / Hospital"):
    the continuation lines say nothing on their own and must go with their first line.
    """
    blocks: list[list[list[TextBox]]] = []
    for line in sorted(lines, key=lambda ln: (ln[0].frame, min(b.y1 for b in ln))):
        x1, y1 = min(b.x1 for b in line), min(b.y1 for b in line)
        x2, y2 = max(b.x2 for b in line), max(b.y2 for b in line)
        for block in blocks:
            last = block[-1]
            if last[0].frame != line[0].frame:
                continue
            lx1, lx2 = min(b.x1 for b in last), max(b.x2 for b in last)
            ly2 = max(b.y2 for b in last)
            height = max(y2 - y1, ly2 - min(b.y1 for b in last))
            if 0 <= y1 - ly2 + 2 <= 1.5 * height and min(x2, lx2) > max(x1, lx1):
                block.append(line)
                break
        else:
            blocks.append([line])
    return blocks


def is_phi_line(text: str, cleaner: TextCleaner, misread: MisreadMatcher | None = None) -> str | None:
    """Why a line of recognised text is PHI (``phi`` or ``label``), or None.

    *misread* finds the file's own identifiers as OCR misreads them
    (:mod:`medveil.pixels.misread`).
    """
    if cleaner.find(text) or (misread is not None and misread.found_in(text)):
        return "phi"
    if _LABEL.search(text) or _AGE.match(text) or misread_label(text):
        return "label"
    return None


def select(
    boxes: Sequence[TextBox],
    policy: str,
    *,
    known: KnownIdentifiers | Callable[[], KnownIdentifiers] | None = None,
    protected: Sequence[tuple[int, int, int, int]] = (),
) -> list[LineToMask]:
    """The lines (and, in blocks that say nothing about the patient, the words) to mask under
    *policy*, each as the box round its words; how far each mask reaches is
    :func:`medveil.pixels.fit.line_masks`'s business.

    *known*: the file's identifiers, or a function that collects them (called only when some
    text must be judged). *protected* rectangles (ultrasound clinical regions) are judged
    ``phi-only`` even under ``all-text``: a box counts as inside one when
    most of its area is.
    """
    if policy not in PIXEL_POLICIES:
        raise ValueError(f"pixel policy must be one of {', '.join(PIXEL_POLICIES)}")
    decisions: list[LineToMask] = []
    judged: list[TextBox] = []
    free: list[TextBox] = []
    for box in boxes:
        (free if policy == ALL_TEXT and not _inside_any(box, protected) else judged).append(box)
    if judged:  # the file's identifiers are collected, and the detectors built, only to judge text
        known = known() if callable(known) else known
        cleaner, misread = _judges(known if known is not None else KnownIdentifiers())
    blocks = group_blocks(group_lines(free))
    for number, block in enumerate(blocks):
        decisions.extend(LineToMask(_line(line), ALL_TEXT, number) for line in block)
    for number, block in enumerate(group_blocks(group_lines(judged)), start=len(blocks)):
        reasons = [is_phi_line(" ".join(box.text for box in line), cleaner, misread) for line in block]
        whole = is_phi_line(" ".join(box.text for line in block for box in line), cleaner, misread)
        if any(reasons) or whole:
            # A PHI line takes its block with it: wrapped values continue on the next lines, and
            # a label's value may sit on a line OCR read apart from it.
            reason = next((r for r in reasons if r), whole)
            assert reason is not None  # some line, or the whole block, gave a reason
            decisions.extend(LineToMask(_line(line), reason, number) for line in block)
            continue
        for line in block:
            # A word may be PHI that its neighbours hide from the line's reading.
            for box in line:
                why = is_phi_line(box.text, cleaner, misread)
                if why:
                    decisions.append(LineToMask(box, why, number))
    return decisions


@lru_cache(maxsize=8)
def _judges(known: KnownIdentifiers) -> tuple[TextCleaner, MisreadMatcher]:
    """The detectors for one set of identifiers, built once for the files of a series (they share
    their patient's); kept in this process's memory only, a few sets at most."""
    return TextCleaner(known), MisreadMatcher(known)


def _line(line: list[TextBox]) -> TextBox:
    """One box round the words of a line."""
    return _union([line])


def _union(block: list[list[TextBox]]) -> TextBox:
    """One box around lines of words (engines joined, the lowest confidence kept)."""
    boxes = [box for line in block for box in line]
    if len(boxes) == 1:
        return boxes[0]
    return TextBox(
        frame=boxes[0].frame,
        x1=min(b.x1 for b in boxes), y1=min(b.y1 for b in boxes),
        x2=max(b.x2 for b in boxes), y2=max(b.y2 for b in boxes),
        engine="+".join(sorted({b.engine for b in boxes})),
        confidence=min(b.confidence for b in boxes),
        text=" ".join(b.text for b in boxes),
    )


def _inside_any(box: TextBox, regions: Sequence[tuple[int, int, int, int]]) -> bool:
    for x1, y1, x2, y2 in regions:
        w = min(box.x2, x2) - max(box.x1, x1)
        h = min(box.y2, y2) - max(box.y1, y1)
        if w > 0 and h > 0 and w * h * 2 >= box.area:
            return True
    return False


def ultrasound_regions(ds: Dataset) -> list[tuple[int, int, int, int]]:
    """Clinical regions of an ultrasound image: rectangles of its Sequence of Ultrasound Regions.

    Regions with a spatial format (2D, M-mode, spectral, waveform) hold the
    image data; a region of format 0 (none) is not protected.
    """
    regions = []
    for item in ds.get("SequenceOfUltrasoundRegions") or []:
        try:
            if int(item.get("RegionSpatialFormat", 0) or 0) == 0:
                continue
            x1, y1 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x2, y2 = int(item.RegionLocationMaxX1) + 1, int(item.RegionLocationMaxY1) + 1
        except (AttributeError, TypeError, ValueError):
            continue
        if x2 > x1 and y2 > y1:
            regions.append((x1, y1, x2, y2))
    return regions
