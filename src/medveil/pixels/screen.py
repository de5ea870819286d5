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
    ranges = {}
    for image, bright in planes:
        key = id(image)
        if key not in ranges:
            low, high = (float(v) for v in cv2.minMaxLoc(image)[:2]) if image.ndim == 2 else (0.0, 0.0)
            ranges[key] = (low, high)
        low, high = ranges[key]
        if high <= low:
            continue
        if settings.cues != "contrast":
            yield _extreme_layer(cv2, image, low, high, bright, settings), False
        if settings.cues == "extreme":
            continue
        threshold = _threshold(image, settings.contrast)
        if threshold is None:
            continue
        smooth = cv2.blur(image.astype(np.float32), (3, 3))
        strokes = cv2.morphologyEx(smooth, cv2.MORPH_TOPHAT if bright else cv2.MORPH_BLACKHAT, kernel)
        yield (strokes > max(threshold, 4.0 * _noise(image, smooth))).view(np.uint8), True


def _extreme_layer(cv2, image: np.ndarray, low: float, high: float, bright: bool,
                   settings: ScreenSettings) -> np.ndarray:
    """Pixels within a hair of the maximum (or minimum): the widest hair that keeps the layer sparse.

    Anti-aliased text has its core at the extreme and its edges a little
    below, so a wide hair finds more of it; but where the extreme is the
    background (air at the minimum of an MR slice) a wide layer is mostly
    noise, and text there has no contrast to find anyway. Text covers a few
    percent of a frame at most.
    """
    layer = None
    for share in (settings.extreme, settings.extreme / 5, 0.0):
        hair = (high - low) * share
        layer = ((image >= high - hair) if bright else (image <= low + hair)).view(np.uint8)
        if cv2.countNonZero(layer) <= settings.sparse * layer.size:
            break
    return layer


def _noise(image: np.ndarray, smooth: np.ndarray) -> float:
    """Pixel noise: the median absolute difference from the 3x3 mean, on a sparse sample."""
    return float(np.median(np.abs(image[::4, ::4].astype(np.float32) - smooth[::4, ::4])))


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


def _lines(cv2, binary: np.ndarray, settings: ScreenSettings, scale: int, strict: bool) -> list[Candidate]:
    """Line regions from a stroke map: glyph-shaped components joined side by side.

    Only the bounding rectangle of the map's set pixels is labelled (labelling
    costs per pixel, and most maps are nearly empty). A line needs two glyphs
    of one height (three on one baseline where *strict*), or one word-shaped
    component (letters that touch).
    """
    if not cv2.countNonZero(binary):
        return []
    ox, oy, ow, oh = cv2.boundingRect(binary)
    binary = binary[oy:oy + oh, ox:ox + ow]
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S,
                                                                           cv2.CCL_GRANA)
    if count <= 1:
        return []
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    min_glyph = settings.min_glyph
    max_glyph = (settings.max_glyph // 2 if strict else settings.max_glyph) * scale
    # Burned-in text is small beside its frame: a 512-pixel slice's labels are 8-16 pixels tall.
    max_glyph = min(max_glyph, max(20, min(binary.base.shape if binary.base is not None else binary.shape) // 24))
    fill = area / np.maximum(w * h, 1)
    # Glyphs are strokes: a wide, tall component that fills its box is a blob of anatomy
    # (bone, contrast, a marker), not a letter ("I" and "l" are narrow, so they pass).
    solid = (fill > 0.75) & (w >= 0.4 * h) & (h >= 8)
    glyph = (h >= min_glyph) & (h <= max_glyph) & (area >= 4) & (fill >= 0.08) & (w <= 40 * h) & ~solid
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
    rows, columns = oy + oh, ox + ow
    full_rows, full_columns = binary.base.shape if binary.base is not None else (rows, columns)
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
