"""How far a masked line of burned-in text reaches: the rectangles that are filled.

:mod:`medveil.pixels.select` decides which lines go; this module decides
their geometry. Each line is masked on its own, not its block's bounding
rectangle (which also takes the ragged ends of short lines and the space
between lines, a few percent of an image for nothing), and reaches as far
as the evidence says text goes:

* **along its ink.** A recogniser that loses a word at the end of a line
  (text over bright anatomy, a word it cannot read) leaves the word
  outside the line's box. Burned-in text is drawn in one value: the line
  is followed left and right through columns holding that value, within
  the line's band and not above or below it (anatomy that crosses the band
  is no glyph), for as long as the gaps stay under a line height;
* **over a wrapped value.** Screens wrap long values ("Nielsen, Jimenez /
  and Aguilar / Community Hospital"); a line that continues the one above
  it (it starts inside it, indented, right below) is masked as wide as
  every line above it that it continues: the value's column, where a word
  the recogniser lost at the end of a short continuation line would be;
* **across a missing line.** Where two masked lines of a frame are more
  than a line height apart and overlap side by side, the band between them
  is masked too (reason ``gap``): a line the recogniser could not read at
  all may be there;
* **by half a line height** each side, as before: engines clip a line's
  first and last glyphs by a stroke or two.

The masking step pads every rectangle further by the pixel padding setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medveil.pixels.detect import TextBox
from medveil.pixels.select import LineToMask

#: A line followed along its ink stops at a gap wider than this many line heights.
INK_GAP = 1.0
#: A column holds ink when at least this many of the band's pixels (and this share of its rows) do.
INK_PIXELS = 3
INK_SHARE = 0.25
#: Rows above and below the band that must hold no ink in a column for it to count (anatomy
#: crossing the band is not a glyph).
INK_CLEAR = 2
#: Each line is widened by this share of its height on either side.
GROW = 0.5
#: Masked lines further apart than this (in line heights, and closer than GAP_MAX) have the
#: band between them masked.
GAP_MIN = 1.0
GAP_MAX = 3.0


@dataclass(frozen=True, slots=True)
class Mask:
    """One rectangle to fill (x2, y2 exclusive) and the decision it serves."""

    frame: int
    x1: int
    y1: int
    x2: int
    y2: int
    reason: str
    engine: str
    confidence: float | None


def line_masks(decisions: Sequence[LineToMask], frames: Sequence[np.ndarray] | None,
               width: int) -> list[Mask]:
    """The rectangles that mask *decisions*' lines (see the module docstring).

    *frames*: the decoded frames, to follow lines along their ink; None
    (frames too large to keep) masks the lines as read.
    """
    by_frame: dict[int, list[LineToMask]] = {}
    for decision in decisions:
        by_frame.setdefault(decision.box.frame, []).append(decision)
    masks: list[Mask] = []
    for frame, chosen in sorted(by_frame.items()):
        image = _plane(frames[frame]) if frames is not None and frame < len(frames) else None
        lines = [_along_ink(image, d.box) if image is not None else d.box for d in chosen]
        lines_of = dict(zip((id(d) for d in chosen), lines, strict=True))
        ordered = sorted(chosen, key=lambda d: (lines_of[id(d)].y1, lines_of[id(d)].x1))
        for decision in ordered:
            line = lines_of[id(decision)]
            grow = int((line.y2 - line.y1) * GROW)
            x2 = max(line.x2, _column_end(line, [lines_of[id(d)] for d in ordered if d.block == decision.block]))
            masks.append(Mask(frame, max(0, line.x1 - grow), line.y1, min(width, x2 + grow), line.y2,
                              decision.reason, decision.box.engine, decision.box.confidence))
        masks.extend(_gaps(frame, [lines_of[id(d)] for d in ordered]))
    return masks


def _plane(frame: np.ndarray) -> np.ndarray:
    """One value per pixel: colour text is followed on its brightest channel (dark text on a
    light page is then still the darkest value)."""
    return frame.max(axis=2) if frame.ndim == 3 else frame


def _along_ink(image: np.ndarray, box: TextBox) -> TextBox:
    """*box* widened left and right along the columns of its band that hold the line's ink value."""
    rows, columns = image.shape[:2]
    y1, y2 = max(0, box.y1), min(rows, box.y2)
    x1, x2 = max(0, box.x1), min(columns, box.x2)
    if y2 <= y1 or x2 <= x1:
        return box
    band = image[y1:y2]
    inside = band[:, x1:x2]
    high, low = inside.max(), inside.min()
    if high == low:
        return box
    # Text is drawn in one value, an extreme of its box: the one more pixels hold, unless that is
    # most of the box (a flat background, a CT's padding, a white page).
    at_high, at_low = np.count_nonzero(inside == high), np.count_nonzero(inside == low)
    if max(at_high, at_low) * 2 > inside.size:
        value = low if at_high >= at_low else high
    else:
        value = high if at_high >= at_low else low
    height = y2 - y1
    inked = np.count_nonzero(band == value, axis=0) >= max(INK_PIXELS, int(INK_SHARE * height))
    for rows_out in (image[max(0, y1 - INK_CLEAR):y1], image[y2:y2 + INK_CLEAR]):
        if rows_out.size:
            inked &= ~(rows_out == value).any(axis=0)
    gap = max(3, int(INK_GAP * height))
    last = x2 - 1
    column = x2
    while column < columns and column - last <= gap:
        if inked[column]:
            last = column
        column += 1
    first = x1
    column = x1 - 1
    while column >= 0 and first - column <= gap:
        if inked[column]:
            first = column
        column -= 1
    if first == box.x1 and last + 1 == box.x2:
        return box
    return TextBox(box.frame, min(box.x1, first), box.y1, max(box.x2, last + 1), box.y2, box.engine,
                   box.confidence, box.text)


def _column_end(line: TextBox, block: list[TextBox]) -> int:
    """How far right a wrapped value's column reaches at *line*: the right end of every line above
    that *line* continues (it starts inside it, indented, right below), up the stack."""
    end = line.x2
    current = line
    continues = False
    while True:
        above = [b for b in block if b is not current and 0 <= current.y1 - b.y2 + 2 <= _height(b, current)
                 and min(b.x2, current.x2) > max(b.x1, current.x1)]
        if not above:
            return end
        upper = max(above, key=lambda b: b.y2)
        continues = continues or upper.x1 + _height(upper, line) < line.x1 < upper.x2
        if continues and upper.x1 <= line.x1:
            end = max(end, upper.x2)
        current = upper


def _height(a: TextBox, b: TextBox) -> int:
    return max(a.y2 - a.y1, b.y2 - b.y1)


def _gaps(frame: int, lines: list[TextBox]) -> list[Mask]:
    """Bands between masked lines far enough apart for a line the recogniser lost."""
    gaps = []
    for upper in lines:
        below = [b for b in lines if b.y1 >= upper.y2 - 2 and min(upper.x2, b.x2) > max(upper.x1, b.x1)]
        if not below:
            continue
        lower = min(below, key=lambda b: b.y1)
        height = _height(upper, lower)
        if GAP_MIN * height <= lower.y1 - upper.y2 <= GAP_MAX * height:
            gaps.append(Mask(frame, min(upper.x1, lower.x1), upper.y2, max(upper.x2, lower.x2), lower.y1,
                             "gap", "", None))
    return gaps
