"""A cheap text-presence screen: where in a frame could burned-in text be?

Reading a frame with OCR costs a hundred times more than decoding it, and
most frames of a collection (CT and MR slices) hold no text at all. The
screen looks at every frame with classical image statistics and names the
few regions a recogniser must read; a frame with no candidate region is not
read at all. A missed region is a leak, so every threshold here errs towards
candidates: a false candidate costs one read, a missed line costs a name.

How text looks to the screen, whatever the modality drew it with:

* strokes one to a few pixels wide that stand out from their surroundings,
  brighter (a morphological white top-hat) or darker (black top-hat) than
  the local background by a good share of the frame's own range;
* glyphs: connected strokes a few to a few dozen pixels tall, neither a
  speck of noise nor a long edge of anatomy;
* lines: glyphs side by side at one height, joined by a horizontal
  dilation; a line of one component counts when it is word-shaped (letters
  that touch), and single isolated glyph-sized specks do not.

Colour frames are screened on their brightest channel (coloured text on a
dark screen) and their darkest channel (dark text on a light page). Deep
greyscale is screened at its stored depth, never windowed: a window can clip
text drawn above the anatomy to the same white as bone.

The screen needs OpenCV (``cv2``, installed with RapidOCR); without it every
frame is one candidate, which is the slow but safe behaviour of reading
everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Screen settings by name: ``recall`` is the shipped default; ``off`` reads every frame whole.
SCREENS = ("recall", "balanced", "off")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A region that may hold a line (or block) of text; x2 and y2 exclusive.

    ``glyph`` is the typical glyph height found there, which tells the
    recogniser how far to enlarge the crop; 0 when unknown (the whole frame).
    """

    x1: int
    y1: int
    x2: int
    y2: int
    glyph: int = 0

    @property
    def area(self) -> int:
        return max(0, self.x2 - self.x1) * max(0, self.y2 - self.y1)


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """The thresholds of one screen setting (see :data:`PRESETS`)."""

    #: A stroke must differ from its neighbourhood by this share of the frame's robust range.
    contrast: float
    #: The extreme layers take values within this share of the range from the maximum (minimum).
    extreme: float = 0.10
    #: An extreme layer covering more than this share of the frame is background: the hair narrows.
    sparse: float = 0.08
    cues: str = "both"
    #: Glyph heights screened for, in pixels (scaled up for frames over 1024 pixels).
    min_glyph: int = 4
    max_glyph: int = 64


PRESETS = {
    "recall": ScreenSettings(contrast=0.06),
    "balanced": ScreenSettings(contrast=0.12),
}


def whole_frame(frame: np.ndarray) -> list[Candidate]:
    """The whole frame as the one candidate (screen ``off``, or no OpenCV)."""
    return [Candidate(0, 0, int(frame.shape[1]), int(frame.shape[0]), 0)]


def screen_frame(frame: np.ndarray, setting: str = "recall") -> list[Candidate]:
    """Candidate text regions of one decoded frame ((rows, columns) or (rows, columns, samples)).

    Regions are in frame pixels, padded so that a line's first and last
    glyphs and its ascenders sit inside, and overlapping regions merged.
    """
    if setting == "off":
        return whole_frame(frame)
    cv2 = _opencv()
    if cv2 is None:  # the screen is an optimisation: without it, read everything
        return whole_frame(frame)
    settings = PRESETS[setting]
    rows, columns = frame.shape[:2]
    scale = 2 if max(rows, columns) > 1280 else 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (7 * scale, 7 * scale))
    if frame.ndim == 3:
        planes = ((_workable(frame.max(axis=2)), True), (_workable(frame.min(axis=2)), False))
    else:
        image = _workable(frame)
        planes = ((image, True), (image, False))
    found: list[Candidate] = []
    for binary, strict in stroke_maps(cv2, planes, kernel, settings):
        found.extend(_lines(cv2, binary, settings, scale, strict))
    return merge_candidates(found)


def _opencv():
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # one worker, one core: OpenCV's own threads only contend with the others
    return cv2


def stroke_maps(cv2, planes, kernel, settings: ScreenSettings):
    """Binary maps of pixels that may belong to a glyph stroke, one per cue, with whether the
    cue needs the stricter line test (see :func:`_lines`).

    * the extreme layers: pixels at (or within a hair of) the frame's own
      maximum or minimum. Modalities draw text in one value, nearly always
      an extreme one, and noise rarely holds an extreme value over a
      glyph-sized connected run;
    * the local-contrast layers: white and black top-hats of the frame after
      a 3x3 mean (which takes the edge off pixel noise), above a share of the
      robust range and above four times the noise level. Anatomy has thin
      bright and dark structures too, so lines found here must hold three
      glyphs of one height on one baseline.
    """
    measured: dict[int, tuple] = {}
    for image, bright in planes:
        key = id(image)
        if key not in measured:
            # What both polarities of one plane share: its range, robust contrast, smoothed copy and noise.
            low, high = (float(v) for v in cv2.minMaxLoc(image)[:2]) if image.ndim == 2 else (0.0, 0.0)
            measured[key] = (low, high, None)
        low, high, contrast = measured[key]
        if high <= low:
            continue
        if settings.cues != "contrast":
            yield _extreme_layer(cv2, image, low, high, bright, settings, kernel), False
        if settings.cues == "extreme":
            continue
        if contrast is None:
            threshold = _threshold(image, settings.contrast)
            smooth = _smooth(cv2, image) if threshold is not None else None
            contrast = (threshold, smooth, _noise(image, smooth) if smooth is not None else 0.0)
            measured[key] = (low, high, contrast)
        threshold, smooth, noise = contrast
        if threshold is None:
            continue
        strokes = cv2.morphologyEx(smooth, cv2.MORPH_TOPHAT if bright else cv2.MORPH_BLACKHAT, kernel)
        yield _above(cv2, strokes, max(threshold, 4.0 * noise)), True


def _smooth(cv2, image: np.ndarray) -> np.ndarray:
    """The 3x3 mean of a plane, in float32: many 16-bit frames hold an 8-bit range, where
    faint text is a level or two above its background and rounding would lose it."""
    return cv2.blur(image.astype(np.float32), (3, 3))


def _above(cv2, strokes: np.ndarray, threshold: float) -> np.ndarray:
    """A 0/1 map of the pixels of *strokes* above *threshold*."""
    return (strokes > threshold).view(np.uint8)


def _extreme_layer(cv2, image: np.ndarray, low: float, high: float, bright: bool,
                   settings: ScreenSettings, kernel: np.ndarray) -> np.ndarray:
    """Pixels within a hair of the maximum (or minimum): the widest hair that keeps the layer sparse.

    Anti-aliased text has its core at the extreme and its edges a little
    below, so a wide hair finds more of it; but where the extreme is the
    background (air at the minimum of an MR slice) a wide layer is mostly
    noise, and text there has no contrast to find anyway. Text covers a few
    percent of a frame at most. Where even the extreme value alone covers
    more (a CT's padding, a saturated page), the layer's solid areas are
    taken away (a binary top-hat, the kernel of the contrast layers): what
    is left are strokes thinner than the kernel, glyphs included, also where
    they touch the background, and labelling a frame-sized background costs
    more than everything else the screen does.
    """
    layer = None
    for share in (settings.extreme, settings.extreme / 5, 0.0):
        hair = (high - low) * share
        layer = ((image >= high - hair) if bright else (image <= low + hair)).view(np.uint8)
        if cv2.countNonZero(layer) <= settings.sparse * layer.size:
            return layer
    return cv2.morphologyEx(layer, cv2.MORPH_TOPHAT, kernel)


def _noise(image: np.ndarray, smooth: np.ndarray) -> float:
    """Pixel noise: the median absolute difference from the 3x3 mean, on a sparse sample."""
    return float(np.median(np.abs(image[::4, ::4].astype(np.float32) - smooth[::4, ::4].astype(np.float32))))


def _workable(plane: np.ndarray) -> np.ndarray:
    """A plane in a depth OpenCV's morphology takes, values unchanged."""
    if plane.dtype in (np.uint8, np.uint16, np.int16, np.float32):
        return np.ascontiguousarray(plane)
    if plane.dtype == np.int8:
        return plane.astype(np.int16)
    if plane.dtype == np.bool_:
        return plane.astype(np.uint8)
    return plane.astype(np.float32)


def _threshold(image: np.ndarray, share: float) -> float | None:
    """The stroke contrast that counts, from the frame's robust range; None for a flat frame.

    The range is taken between the 0.1th and 99.9th percentiles of a sparse
    sample, so one hot pixel (metal, a calibration dot) does not raise the
    bar for text; where that range is empty (a blank frame with text on it)
    the full range is used.
    """
    sample = image[::3, ::3].ravel()
    if sample.size == 0:
        return None
    count = sample.size
    low_index, high_index = count // 1000, count - 1 - count // 1000
    parted = np.partition(sample, (low_index, high_index))
    low, high = float(parted[low_index]), float(parted[high_index])
    if high <= low:
        low, high = float(image.min()), float(image.max())
        if high <= low:
            return None
    return max(share * (high - low), 0.5 if image.dtype.kind in "iu" else 0.0)


#: Side of the cells of the occupancy grid that splits a stroke map into regions worth labelling.
CELL = 16
#: A region with fewer set pixels cannot hold a line (two glyphs of four pixels, or one word).
MIN_LINE_PIXELS = 6


def _lines(cv2, binary: np.ndarray, settings: ScreenSettings, scale: int, strict: bool) -> list[Candidate]:
    """Line regions from a stroke map: glyph-shaped components joined side by side.

    Labelling costs per pixel labelled, and most maps are nearly empty or
    hold a few clusters (a text block, some bone): only the regions of an
    occupancy grid that hold enough set pixels to make a line are labelled.
    A line needs two glyphs of one height (three on one baseline where
    *strict*), or one word-shaped component (letters that touch).
    """
    if not cv2.countNonZero(binary):
        return []
    full_rows, full_columns = binary.shape
    max_glyph = (settings.max_glyph // 2 if strict else settings.max_glyph) * scale
    # Burned-in text is small beside its frame: a 512-pixel slice's labels are 8-16 pixels tall.
    max_glyph = min(max_glyph, max(20, min(full_rows, full_columns) // 24))
    candidates: list[Candidate] = []
    for ox, oy, ow, oh, whole in _regions(cv2, binary, reach=math.ceil(1.5 * max_glyph / CELL) + 1):
        candidates.extend(_lines_in(cv2, binary[oy:oy + oh, ox:ox + ow], ox, oy, (full_rows, full_columns),
                                    settings, strict, max_glyph, whole))
    return candidates


def _regions(cv2, binary: np.ndarray, reach: int) -> list[tuple[int, int, int, int, bool]]:
    """(x, y, w, h, whole) regions of a 0/1 map that may hold a line, each with a cell of margin;
    *whole* when the region is the bounding rectangle of every set pixel (nothing is cut).

    The map is counted in CELL x CELL cells; occupied cells within *reach*
    cells side by side (the farthest two glyphs of a line can be apart) or
    one cell up or down are one region, so every component and every line
    lies wholly inside the region of its own cells. Regions with fewer than
    :data:`MIN_LINE_PIXELS` set pixels are left out.
    """
    rows, columns = binary.shape
    x0, y0, width, height = cv2.boundingRect(binary)
    if width * height <= 16 * CELL * CELL:
        return [(x0, y0, width, height, True)]  # small enough to label at once
    grid_w, grid_h = math.ceil(width / CELL), math.ceil(height / CELL)
    window = binary[y0:y0 + height, x0:x0 + width]
    if grid_w * CELL != width or grid_h * CELL != height:
        window = cv2.copyMakeBorder(window, 0, grid_h * CELL - height, 0, grid_w * CELL - width,
                                    cv2.BORDER_CONSTANT, value=0)
    counts = cv2.resize(window.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA) * (CELL * CELL)
    occupied = (counts > 0.5).view(np.uint8)
    joined = cv2.dilate(occupied, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1, 3)))
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(joined, 8, cv2.CV_32S, cv2.CCL_GRANA)
    if count <= 1:
        return []
    totals = np.bincount(labels.ravel(), weights=(counts * occupied).ravel(), minlength=count)
    regions = []
    for index in range(1, count):
        if totals[index] < MIN_LINE_PIXELS - 0.5:
            continue
        gx, gy, gw, gh = (int(v) for v in stats[index, :4])
        x1, y1 = max(0, x0 + (gx - 1) * CELL), max(0, y0 + (gy - 1) * CELL)
        x2, y2 = min(columns, x0 + (gx + gw + 1) * CELL), min(rows, y0 + (gy + gh + 1) * CELL)
        regions.append((x1, y1, x2 - x1, y2 - y1, False))
    return regions


def _lines_in(cv2, binary: np.ndarray, ox: int, oy: int, full: tuple[int, int], settings: ScreenSettings,
              strict: bool, max_glyph: int, whole: bool) -> list[Candidate]:
    """Lines of one region of a stroke map at (ox, oy) in a frame of *full* (rows, columns).

    A component cut by the region's edge (inside the frame) belongs to a
    neighbouring region, where it is whole: it is left to that region.
    """
    oh, ow = binary.shape
    full_rows, full_columns = full
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S,
                                                                           cv2.CCL_GRANA)
    if count <= 1:
        return []
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    min_glyph = settings.min_glyph
    fill = area / np.maximum(w * h, 1)
    # Glyphs are strokes: a wide, tall component that fills its box is a blob of anatomy
    # (bone, contrast, a marker), not a letter ("I" and "l" are narrow, so they pass).
    solid = (fill > 0.75) & (w >= 0.4 * h) & (h >= 8)
    glyph = (h >= min_glyph) & (h <= max_glyph) & (area >= 4) & (fill >= 0.08) & (w <= 40 * h) & ~solid
    cut = (((x == 0) & (ox > 0)) | ((y == 0) & (oy > 0)) | ((x + w == ow) & (ox + ow < full_columns))
           | ((y + h == oh) & (oy + oh < full_rows)))
    if not whole:
        glyph &= ~cut
    if not glyph.any():
        return []
    keep = np.zeros(count, dtype=np.uint8)
    keep[1:][glyph] = 255
    mask = keep[labels]
    x, y, w, h, fill = x[glyph], y[glyph], w[glyph], h[glyph], fill[glyph]
    # Glyphs of one line sit within about a glyph width of each other; join them.
    gap = max(4, int(1.5 * np.median(h)))
    joined = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    n_lines, line_labels, line_stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        joined, 8, cv2.CV_32S, cv2.CCL_GRANA)
    owner = line_labels[np.clip(y + h // 2, 0, oh - 1), np.clip(x + w // 2, 0, ow - 1)]
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(n_lines + 1))
    candidates = []
    for index in np.nonzero(np.diff(bounds))[0]:
        if index == 0:
            continue
        members = order[bounds[index]:bounds[index + 1]]
        lx, ly, lw, lh = (int(v) for v in line_stats[index, :4])
        heights = h[members]
        tall = int(np.median(heights))
        if lh > 2.5 * tall + 2:
            continue  # a chain of specks running down an edge, not a line of text
        if len(members) == 1:
            one = members[0]
            shaped = (w[one] >= (2 if strict else 1.5) * tall and 5 <= tall <= (30 if strict else 40)
                      and lw <= 20 * tall and (0.2 if strict else 0.15) <= fill[one] <= (0.7 if strict else 0.75))
            if not shaped:
                continue
        else:
            similar = np.abs(heights - tall) <= max(2, tall // 2)
            if strict:
                bottoms = (y + h)[members]
                base = np.median(bottoms[similar]) if similar.any() else 0
                similar &= np.abs(bottoms - base) <= max(2, tall // 4)
            if np.count_nonzero(similar) < (3 if strict else 2):
                continue  # glyphs of one line share a height (and, strictly, a baseline)
        pad_x, pad_y = max(4, tall), max(3, tall // 2)
        candidates.append(Candidate(max(0, ox + lx - pad_x), max(0, oy + ly - pad_y),
                                    min(full_columns, ox + lx + lw + pad_x),
                                    min(full_rows, oy + ly + lh + pad_y), tall))
    return candidates


def merge_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """Overlapping regions joined into their union until none overlap (glyph: the larger).

    Regions within a glyph height of each other side by side count as
    overlapping: they are pieces of one line, and a recogniser reads a whole
    line better than its fragments.
    """
    pending = sorted(candidates, key=lambda c: (c.y1, c.x1))
    merged = True
    while merged:
        merged = False
        result: list[Candidate] = []
        for candidate in pending:
            for index, other in enumerate(result):
                reach = 0  # touching only: a reach lets regions chain across anatomy
                if (candidate.x1 < other.x2 + reach and other.x1 < candidate.x2 + reach
                        and candidate.y1 < other.y2 and other.y1 < candidate.y2):
                    result[index] = Candidate(min(candidate.x1, other.x1), min(candidate.y1, other.y1),
                                              max(candidate.x2, other.x2), max(candidate.y2, other.y2),
                                              max(candidate.glyph, other.glyph))
                    merged = True
                    break
            else:
                result.append(candidate)
        pending = result
    return pending
