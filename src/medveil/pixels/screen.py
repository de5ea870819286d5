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


@dataclass(frozen=True, slots=True)
class Level:
    """The plane an extreme layer was taken from, its range, and which extreme (``bright``: the
    maximum) the layer holds."""

    image: np.ndarray
    low: float
    high: float
    bright: bool

    def share_near(self, pixels: np.ndarray) -> float:
        """The share of *pixels* (values of the plane) within :data:`FLAT_BAND` of the extreme."""
        if not pixels.size:
            return 0.0
        band = FLAT_BAND * (self.high - self.low)
        near = pixels >= self.high - band if self.bright else pixels <= self.low + band
        return float(np.count_nonzero(near)) / pixels.size


#: Burned-in text is drawn in one value, at an extreme: most of the pixels of a line found in an
#: extreme layer lie within FLAT_BAND of the extreme (of the range) -- measured 0.73 or more on the
#: annotated images, 0.52 or more after JPEG compression at quality 50 -- while bone, contrast or
#: metal that merely reaches the top tenth of the range has its values spread over it (0.26 or
#: less on the CT benchmark series). A line with fewer than FLAT_SHARE is not text; its region
#: would only cost a reading.
FLAT_BAND = 0.05
FLAT_SHARE = 0.35


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
    for binary, level in stroke_maps(cv2, planes, kernel, settings):
        if isinstance(binary, Background):
            found.extend(BACKGROUNDS.lines(cv2, binary, kernel, settings, scale, level))
        else:
            found.extend(_lines(cv2, binary, settings, scale, level))
    return merge_candidates(found)


def _opencv():
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # one worker, one core: OpenCV's own threads only contend with the others
    return cv2


def stroke_maps(cv2, planes, kernel, settings: ScreenSettings):
    """Binary maps of pixels that may belong to a glyph stroke, one per cue, each with the
    :class:`Level` it was taken at (extreme layers) or None (local-contrast layers, which need
    the stricter line test, see :func:`_lines`). An extreme layer that is mostly background
    comes as a :class:`Background`, to be reduced to its strokes.

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
            yield _extreme_layer(cv2, image, low, high, bright, settings, kernel), Level(image, low, high, bright)
        if settings.cues == "extreme":
            continue
        if contrast is None:
            threshold = _threshold(image, settings.contrast)
            smooth, times = _smooth(cv2, image, low, high) if threshold is not None else (None, 1)
            contrast = (threshold, smooth, _noise(image, smooth, times, low) if smooth is not None else 0.0, times)
            measured[key] = (low, high, contrast)
        threshold, smooth, noise, times = contrast
        if threshold is None:
            continue
        strokes = cv2.morphologyEx(smooth, cv2.MORPH_TOPHAT if bright else cv2.MORPH_BLACKHAT, kernel)
        yield _above(cv2, strokes, max(threshold, 4.0 * noise) * abs(times)), None


def _smooth(cv2, image: np.ndarray, low: float, high: float) -> tuple[np.ndarray, int]:
    """The 3x3 mean of a plane, ``abs(times)`` over: ``(smoothed, times)``.

    Exact, never rounded: many 16-bit frames hold an 8-bit range, where
    faint text is a level or two above its background. An integer plane is
    summed over 3x3 (nine times the mean, exactly) in 16 bits: in its own
    type where the sums fit (8-bit planes, a CT's -2000..3071), else above
    its minimum (*times* is then negative); the morphology that follows runs
    twice as fast on 16 bits as on 32. Any other plane is averaged in
    float32 (*times* 1).
    """
    if image.dtype == np.uint8:
        return cv2.boxFilter(image, cv2.CV_16U, (3, 3), normalize=False), 9
    if image.dtype in (np.int16, np.uint16):
        limits = np.iinfo(image.dtype)
        if limits.min <= 9 * low and 9 * high <= limits.max:  # the sums fit the plane's own type (a CT)
            return cv2.boxFilter(image, -1, (3, 3), normalize=False), 9
    if image.dtype.kind in "iu" and (high - low) * 9 <= np.iinfo(np.uint16).max:
        return cv2.boxFilter(cv2.subtract(image, (low,), dtype=cv2.CV_16U), cv2.CV_16U, (3, 3),
                             normalize=False), -9  # the sums are taken above the plane's minimum
    return cv2.blur(image.astype(np.float32), (3, 3)), 1


def _above(cv2, strokes: np.ndarray, threshold: float) -> np.ndarray:
    """A map of the pixels of *strokes* above *threshold* (255 where above, 0 elsewhere)."""
    return cv2.compare(strokes, float(threshold), cv2.CMP_GT)


def _extreme_layer(cv2, image: np.ndarray, low: float, high: float, bright: bool,
                   settings: ScreenSettings, kernel: np.ndarray) -> np.ndarray | Background:
    """Pixels within a hair of the maximum (or minimum): the widest hair that keeps the layer sparse.

    Anti-aliased text has its core at the extreme and its edges a little
    below, so a wide hair finds more of it; but where the extreme is the
    background (air at the minimum of an MR slice) a wide layer is mostly
    noise, and text there has no contrast to find anyway. Text covers a few
    percent of a frame at most. Where even the extreme value alone covers
    more (a CT's padding, a saturated page), the layer is a
    :class:`Background`.
    """
    sample = image[::4, ::4]  # a hair whose layer covers twice the sparse share of it is not tried
    for share in (settings.extreme, settings.extreme / 5, 0.0):
        hair = (high - low) * share
        if share and np.count_nonzero((sample >= high - hair) if bright else (sample <= low + hair)) \
                > 2 * settings.sparse * sample.size:
            continue
        layer = cv2.compare(image, high - hair, cv2.CMP_GE) if bright else cv2.compare(image, low + hair, cv2.CMP_LE)
        if cv2.countNonZero(layer) <= settings.sparse * layer.size:
            return layer
    return Background(layer)


@dataclass(frozen=True, slots=True)
class Background:
    """An extreme layer at the extreme value alone that is still mostly background (a CT's padding,
    a saturated page)."""

    layer: np.ndarray


class BackgroundLines:
    """The lines of background layers, the last one kept for each frame size and polarity.

    A background layer's solid areas are taken away (a binary top-hat, the
    kernel of the contrast layers): what is left are strokes thinner than
    the kernel, glyphs included, also where they touch the background
    (labelling a frame-sized background would cost more than everything
    else the screen does). The lines found are a function of the layer
    alone (every pixel of it holds the extreme value, so the line tests see
    nothing else), and the slices of a series share one: the padding outside
    a CT's field of view is the same on every slice. A layer identical to the
    last one of its size and polarity reuses its lines (a comparison costs a
    tenth of the top-hat). Kept per process, a few layers at most, no PHI
    (a map of where the padding is).
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self.reused = 0  # layers answered from the last one (a count for tests and benchmarks)
        self._last: dict[tuple, tuple[np.ndarray, list[Candidate]]] = {}

    def lines(self, cv2, background: Background, kernel: np.ndarray, settings: ScreenSettings, scale: int,
              level: Level) -> list[Candidate]:
        layer = background.layer
        key = (layer.shape, level.bright, scale, settings)
        last = self._last.get(key)
        if last is not None and np.array_equal(last[0], layer):
            self.reused += 1
            return list(last[1])
        found = _lines(cv2, cv2.morphologyEx(layer, cv2.MORPH_TOPHAT, kernel), settings, scale, level)
        self._last.pop(key, None)
        while len(self._last) >= self.capacity:
            self._last.pop(next(iter(self._last)))
        self._last[key] = (layer.copy(), found)
        return list(found)

    def clear(self) -> None:
        self._last.clear()


#: This process's background layers.
BACKGROUNDS = BackgroundLines()


def _noise(image: np.ndarray, smooth: np.ndarray, times: int, low: float) -> float:
    """Pixel noise: the median absolute difference from the 3x3 mean, on a sparse sample."""
    sample = image[::4, ::4].astype(np.float32)
    mean = smooth[::4, ::4].astype(np.float32) / abs(times)
    if times < 0:
        mean += low  # the sums are taken above the plane's minimum
    deviations = np.abs(sample - mean).ravel()
    middle = deviations.size // 2
    return float(np.partition(deviations, middle)[middle]) if deviations.size else 0.0  # the (upper) median


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


#: Side of the cells of the occupancy grid that splits a glyph map into regions worth joining.
CELL = 16


@dataclass(frozen=True, slots=True)
class _Glyphs:
    """The glyph-shaped components of a stroke map: boxes, fill, and the labels they carry."""

    labels: np.ndarray  # component labels (0: background) of the map's window at *origin*
    origin: tuple[int, int]  # (x, y) of the labelled window in the map
    count: int  # labels, background included
    pixels: tuple[np.ndarray, np.ndarray, np.ndarray]  # (x, y, label) of each set pixel labelled
    index: np.ndarray  # each glyph's label
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    h: np.ndarray
    fill: np.ndarray


def _lines(cv2, binary: np.ndarray, settings: ScreenSettings, scale: int,
           level: Level | None = None) -> list[Candidate]:
    """Line regions from a stroke map: glyph-shaped components joined side by side.

    A line needs two glyphs of one height, or one word-shaped component
    (letters that touch). In a local-contrast map (no *level*) it needs three
    glyphs on one baseline, since anatomy has thin bright and dark structures
    too; in an extreme layer, most of its pixels at the extreme itself (see
    :data:`FLAT_SHARE`). Most maps
    of a frame without text hold no glyph at all, or too few for a line:
    they cost one labelling of the map (without per-pixel statistics, which
    cost four times as much; the boxes come from the set pixels alone) and
    nothing more. Only where glyphs are is anything joined.
    """
    if not cv2.countNonZero(binary):
        return []
    strict = level is None
    rows, columns = binary.shape
    max_glyph = (settings.max_glyph // 2 if strict else settings.max_glyph) * scale
    # Burned-in text is small beside its frame: a 512-pixel slice's labels are 8-16 pixels tall.
    max_glyph = min(max_glyph, max(20, min(rows, columns) // 24))
    glyphs = _glyphs(cv2, binary, settings.min_glyph, max_glyph)
    if glyphs is None or not (glyphs.index.size >= (3 if strict else 2) or _word_shaped(glyphs, strict).any()):
        return []
    if level is not None and not _any_flat(glyphs, level):
        return []
    # Join only where glyphs are: the window round them, wide enough for the widest join.
    reach = math.ceil(1.5 * max_glyph)
    wx1, wx2 = max(0, int(glyphs.x.min()) - reach), min(columns, int((glyphs.x + glyphs.w).max()) + reach)
    wy1, wy2 = int(glyphs.y.min()), int((glyphs.y + glyphs.h).max())
    keep = np.zeros(glyphs.count, dtype=np.uint8)
    keep[glyphs.index] = 255
    mask = np.zeros((wy2 - wy1, wx2 - wx1), dtype=np.uint8)
    lx0, ly0 = glyphs.origin
    lx1, ly1 = max(wx1, lx0), max(wy1, ly0)  # the part of the window that was labelled
    lx2 = min(wx2, lx0 + glyphs.labels.shape[1])
    ly2 = min(wy2, ly0 + glyphs.labels.shape[0])
    labels = glyphs.labels[ly1 - ly0:ly2 - ly0, lx1 - lx0:lx2 - lx0]
    mask[ly1 - wy1:ly2 - wy1, lx1 - wx1:lx2 - wx1] = keep[labels]
    centre_x, centre_y = glyphs.x + glyphs.w // 2 - wx1, glyphs.y + glyphs.h // 2 - wy1
    candidates: list[Candidate] = []
    for ox, oy, ow, oh in _regions(cv2, mask, reach=math.ceil(reach / CELL) + 1):
        inside = np.flatnonzero((centre_x >= ox) & (centre_x < ox + ow) & (centre_y >= oy) & (centre_y < oy + oh))
        if inside.size:
            candidates.extend(_lines_in(cv2, mask[oy:oy + oh, ox:ox + ow], wx1 + ox, wy1 + oy, (rows, columns),
                                        glyphs, inside, level))
    return candidates


def _glyphs(cv2, binary: np.ndarray, min_glyph: int, max_glyph: int) -> _Glyphs | None:
    """The components of *binary* shaped like glyphs (None when there is none).

    Glyphs are strokes a few pixels tall, neither specks nor long edges; a
    wide, tall component that fills its box is a blob of anatomy (bone,
    contrast, a marker), not a letter ("I" and "l" are narrow, so they pass).

    Only the window round the set pixels that can belong to a glyph is
    labelled, and without OpenCV's per-pixel statistics (they cost four
    times the labelling): each component's box comes from its set pixels.
    """
    points = cv2.findNonZero(binary)
    if points is None:
        return None
    points = points.reshape(-1, 2)
    # A component spans consecutive rows that all hold set pixels: only runs of at least
    # min_glyph such rows can hold a glyph (scattered specks rarely make one).
    occupied = np.zeros(binary.shape[0] + 2, dtype=np.int8)
    occupied[points[:, 1] + 1] = 1
    edges = np.diff(occupied)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = (ends - starts) >= min_glyph
    if not long.any():
        return None
    if not long.all():
        in_run = np.zeros(binary.shape[0] + 1, dtype=np.int8)
        np.add.at(in_run, starts[long], 1)
        np.add.at(in_run, ends[long], -1)
        points = points[np.cumsum(in_run)[points[:, 1]] > 0]
    xs, ys = points[:, 0], points[:, 1]
    x0, y0 = int(xs.min()), int(ys.min())
    window = binary[y0:int(ys.max()) + 1, x0:int(xs.max()) + 1]
    count, labels = cv2.connectedComponentsWithAlgorithm(window, 8, cv2.CV_32S, cv2.CCL_GRANA)
    if count <= 1:
        return None
    xs, ys = xs - x0, ys - y0
    owner = labels[ys, xs]
    first_x = np.full(count, np.iinfo(np.int32).max, dtype=np.int32)
    first_y = first_x.copy()
    last_x = np.zeros(count, dtype=np.int32)
    last_y = last_x.copy()
    np.minimum.at(first_x, owner, xs)
    np.minimum.at(first_y, owner, ys)
    np.maximum.at(last_x, owner, xs)
    np.maximum.at(last_y, owner, ys)
    w, h = (last_x - first_x + 1)[1:], (last_y - first_y + 1)[1:]
    area = np.bincount(owner, minlength=count)[1:]
    fill = area / np.maximum(w * h, 1)
    solid = (fill > 0.75) & (w >= 0.4 * h) & (h >= 8)
    glyph = (h >= min_glyph) & (h <= max_glyph) & (area >= 4) & (fill >= 0.08) & (w <= 40 * h) & ~solid
    index = np.flatnonzero(glyph)
    if not index.size:
        return None
    return _Glyphs(labels, (x0, y0), count, (xs + x0, ys + y0, owner), index + 1, first_x[1:][index] + x0,
                   first_y[1:][index] + y0, w[index], h[index], fill[index])


def _any_flat(glyphs: _Glyphs, level: Level) -> bool:
    """Whether any glyph has :data:`FLAT_SHARE` of its pixels at the extreme; a line's share is that
    of its glyphs together, so where none has, no line has (bone in a CT's top tenth)."""
    xs, ys, owner = glyphs.pixels
    values = level.image[ys, xs]
    band = FLAT_BAND * (level.high - level.low)
    near = values >= level.high - band if level.bright else values <= level.low + band
    pixels = np.bincount(owner, minlength=glyphs.count)[glyphs.index]
    at_extreme = np.bincount(owner[near], minlength=glyphs.count)[glyphs.index]
    return bool((at_extreme >= FLAT_SHARE * pixels).any())


def _word_shaped(glyphs: _Glyphs, strict: bool) -> np.ndarray:
    """Which glyphs could be a word on their own (letters that touch): wide, of a text height,
    neither hollow nor solid. The line they make must pass :func:`_lines_in` as well."""
    w, h, fill = glyphs.w, glyphs.h, glyphs.fill
    return ((w >= (2 if strict else 1.5) * h) & (h >= 5) & (h <= (30 if strict else 40))
            & (fill >= (0.2 if strict else 0.15)) & (fill <= (0.7 if strict else 0.75)))


def _regions(cv2, mask: np.ndarray, reach: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) regions of a glyph map that may each hold lines, with a cell of margin.

    The map is counted in CELL x CELL cells; occupied cells within *reach*
    cells side by side (the farthest two glyphs of a line can be apart) or
    one cell up or down are one region, so every glyph and every line lies
    wholly inside the region of its own cells.
    """
    rows, columns = mask.shape
    if rows * columns <= 16 * CELL * CELL:
        return [(0, 0, columns, rows)]  # small enough to join at once
    grid_w, grid_h = math.ceil(columns / CELL), math.ceil(rows / CELL)
    window = mask
    if grid_w * CELL != columns or grid_h * CELL != rows:
        window = cv2.copyMakeBorder(mask, 0, grid_h * CELL - rows, 0, grid_w * CELL - columns,
                                    cv2.BORDER_CONSTANT, value=0)
    counts = cv2.resize(window, (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    occupied = (counts > 0).view(np.uint8)
    joined = cv2.dilate(occupied, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * reach + 1, 3)))
    count, _labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(joined, 8, cv2.CV_32S, cv2.CCL_GRANA)
    regions = []
    for index in range(1, count):
        gx, gy, gw, gh = (int(v) for v in stats[index, :4])
        x1, y1 = max(0, (gx - 1) * CELL), max(0, (gy - 1) * CELL)
        x2, y2 = min(columns, (gx + gw + 1) * CELL), min(rows, (gy + gh + 1) * CELL)
        regions.append((x1, y1, x2 - x1, y2 - y1))
    return regions


def _lines_in(cv2, mask: np.ndarray, ox: int, oy: int, full: tuple[int, int], glyphs: _Glyphs,
              members_of: np.ndarray, level: Level | None) -> list[Candidate]:
    """Lines of one region of a glyph map at (ox, oy) in a frame of *full* (rows, columns);
    *members_of* are the glyphs (indices into *glyphs*) whose centre lies in the region."""
    strict = level is None
    oh, ow = mask.shape
    full_rows, full_columns = full
    x, y = glyphs.x[members_of] - ox, glyphs.y[members_of] - oy
    w, h, fill = glyphs.w[members_of], glyphs.h[members_of], glyphs.fill[members_of]
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
        if level is not None:
            inked = mask[ly:ly + lh, lx:lx + lw] > 0
            values = level.image[oy + ly:oy + ly + lh, ox + lx:ox + lx + lw][inked]
            if level.share_near(values) < FLAT_SHARE:
                continue  # spread over the top of the range: anatomy, not text drawn in one value
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
