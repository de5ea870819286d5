"""Finding text burned into pixel data: where it is, not yet what to do about it.

Every frame is read, because a name may be drawn on one frame of a cine loop
only; frames whose decoded pixels are identical are read once, because most
loops repeat their overlay unchanged. Each frame is read in several views
(see :mod:`medveil.pixels.frames`), in both polarities where that is cheap,
enlarged when small and in overlapping tiles when large, since OCR engines
misread glyphs under about 20 pixels tall and shrink large inputs until small
text vanishes. What the engines read is kept only in memory: it is PHI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from pydicom import Dataset

from medveil.pixels.frames import frame_digest, iter_frames, ocr_views
from medveil.pixels.ocr import OcrEngine, available_engines, get_engine

#: Tiles for large images: engines scale big inputs down before detecting,
#: so a 3000-pixel radiograph would lose its 15-pixel labels.
TILE_SIZE = 1024
TILE_OVERLAP = 64

#: Images smaller than this (in rows or columns) cannot hold a legible word; they are not read.
MIN_SIDE = 16

#: Reading both polarities doubles the cost; above this many pixels per view
#: (after enlarging) only the dark-on-light polarity that engines prefer is read.
BOTH_POLARITIES_MAX_PIXELS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TextBox:
    """Text found in frame ``frame`` (0-based), in the frame's own pixel coordinates.

    ``x2`` and ``y2`` are exclusive. ``text`` is PHI: keep it in memory, never log it.
    """

    frame: int
    x1: int
    y1: int
    x2: int
    y2: int
    engine: str
    confidence: float
    text: str

    def __repr__(self) -> str:  # the text stays out of logs and tracebacks
        return (f"TextBox(frame={self.frame}, x1={self.x1}, y1={self.y1}, x2={self.x2}, "
                f"y2={self.y2}, engine={self.engine!r}, confidence={self.confidence:.2f})")

    @property
    def area(self) -> int:
        return max(0, self.x2 - self.x1) * max(0, self.y2 - self.y1)


def detect_text(
    ds: Dataset,
    *,
    engines: Sequence[str | OcrEngine] | str | None = None,
    min_confidence: float = 0.5,
    upscale_small: bool = True,
    both_polarities: bool | None = None,
) -> list[TextBox]:
    """Boxes around text burned into any frame of ``ds``, overlapping boxes merged.

    ``engines``: names (``tesseract``, ``rapidocr``, ``auto`` for every
    installed one) or engine objects; None means RapidOCR, the engine that
    found most text in ``benchmarks/ocr_bench.py``. ``min_confidence`` is on a
    0-1 scale for every engine (Tesseract's 0-100 is rescaled).
    ``both_polarities``: None reads the inverted image as well when it is
    small enough to be cheap.
    """
    readers = _resolve_engines(engines)
    boxes: list[TextBox] = []
    seen: dict[bytes, list[TextBox]] = {}
    if min(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) < MIN_SIDE:
        return boxes  # nothing legible fits: a word needs more pixels than the image has
    for index, frame in enumerate(iter_frames(ds)):
        digest = frame_digest(frame)
        if digest not in seen:
            seen[digest] = _examine_frame(frame, ds, readers, min_confidence=min_confidence,
                                          upscale_small=upscale_small, both_polarities=both_polarities)
        boxes.extend(replace(box, frame=index) for box in seen[digest])
    return boxes


def _resolve_engines(engines: Sequence[str | OcrEngine] | str | None) -> list[OcrEngine]:
    if engines is None:
        return [get_engine("rapidocr")]
    if isinstance(engines, str):
        return available_engines(engines)
    readers: list[OcrEngine] = []
    for engine in engines:
        readers.extend(available_engines(engine) if isinstance(engine, str) else [engine])
    return readers


def _examine_frame(
    frame: np.ndarray,
    ds: Dataset,
    engines: Sequence[OcrEngine],
    *,
    min_confidence: float,
    upscale_small: bool,
    both_polarities: bool | None,
) -> list[TextBox]:
    """Merged boxes for one frame (numbered 0; the caller renumbers)."""
    found: list[TextBox] = []
    for _name, view in ocr_views(frame, ds):
        for factor in upscale_factors(view.shape) if upscale_small else (1,):
            image = _enlarge(view, factor)
            images = [_dark_on_light(image)]
            cheap = image.size <= BOTH_POLARITIES_MAX_PIXELS
            if both_polarities or (both_polarities is None and cheap):
                images.append(255 - images[0])
            for candidate in images:
                for engine in engines:
                    found.extend(_read_tiled(candidate, engine, factor, min_confidence))
    height, width = frame.shape[:2]
    clipped = [_clip(box, width, height) for box in found]
    return merge_boxes([box for box in clipped if box.area > 0])


def detect_in_image(
    image: np.ndarray,
    *,
    engines: Sequence[str | OcrEngine] | str | None = None,
    min_confidence: float = 0.5,
) -> list[TextBox]:
    """Merged text boxes in one 8-bit greyscale image (an overlay plane, an icon).

    The image is enlarged when small and read in both polarities; boxes are
    in the image's own coordinates, frame 0.
    """
    readers = _resolve_engines(engines)
    factor = upscale_factor(image.shape)
    enlarged = _enlarge(np.ascontiguousarray(image, dtype=np.uint8), factor)
    found: list[TextBox] = []
    for candidate in (_dark_on_light(enlarged), 255 - _dark_on_light(enlarged)):
        for engine in readers:
            found.extend(_read_tiled(candidate, engine, factor, min_confidence))
    height, width = image.shape[:2]
    return merge_boxes([box for box in (_clip(b, width, height) for b in found) if box.area > 0])


def upscale_factor(shape: tuple[int, ...]) -> int:
    """How much to enlarge a view so its text is tall enough to read.

    Overlays on 256- and 512-pixel images are drawn 7-10 pixels tall; engines
    read glyphs of 20 pixels or more reliably.
    """
    longest = max(shape[:2])
    if longest <= 320:
        return 3
    if longest <= 640:
        return 2
    return 1


def upscale_factors(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Every enlargement a view is read at: small images twice, at 3x and 5x.

    On a 256-pixel image labels are 6 pixels tall; which lines an engine reads
    at 3x and at 5x differs, and small images are cheap to read twice.
    """
    factor = upscale_factor(shape)
    return (3, 5) if factor == 3 else (factor,)


def tiles(height: int, width: int, size: int = TILE_SIZE, overlap: int = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) tiles covering the image, neighbours overlapping by ``overlap``.

    The overlap lets a word cut by one tile's edge be read whole in the next,
    as long as it is shorter than the overlap; longer lines are read in pieces
    whose boxes merge back together.
    """
    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        step = size - overlap
        positions = list(range(0, length - size, step))
        positions.append(length - size)
        return positions

    return [(x, y, min(x + size, width), min(y + size, height))
            for y in starts(height) for x in starts(width)]


def _read_tiled(image: np.ndarray, engine: OcrEngine, factor: int, min_confidence: float) -> list[TextBox]:
    boxes = []
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in tiles(height, width):
        for word in engine.read(np.ascontiguousarray(image[y0:y1, x0:x1])):
            confidence = _normalised_confidence(engine.name, word.confidence)
            if confidence < min_confidence or not any(ch.isalnum() for ch in word.text):
                continue
            bx1, by1, bx2, by2 = word.box
            boxes.append(TextBox(
                frame=0,
                x1=int(np.floor((bx1 + x0) / factor)),
                y1=int(np.floor((by1 + y0) / factor)),
                x2=int(np.ceil((bx2 + x0) / factor)),
                y2=int(np.ceil((by2 + y0) / factor)),
                engine=engine.name,
                confidence=confidence,
                text=word.text,
            ))
    return boxes


def _normalised_confidence(engine: str, confidence: float) -> float:
    return confidence / 100.0 if engine == "tesseract" else float(confidence)


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    from PIL import Image

    height, width = image.shape[:2]
    # Bicubic: smooth glyph edges read better than nearest-neighbour blocks.
    return np.asarray(Image.fromarray(image).resize((width * factor, height * factor), Image.BICUBIC))


def _dark_on_light(image: np.ndarray) -> np.ndarray:
    """Engines are trained on dark print on paper; most medical images are the reverse."""
    return 255 - image if float(np.median(image)) < 128 else image


def _clip(box: TextBox, width: int, height: int) -> TextBox:
    return replace(box, x1=max(0, box.x1), y1=max(0, box.y1), x2=min(width, box.x2), y2=min(height, box.y2))


def merge_boxes(boxes: Iterable[TextBox]) -> list[TextBox]:
    """Overlapping boxes of one frame joined into their union, until none overlap.

    The same word is found in several views, polarities, tiles and engines;
    one box per place is what masking needs. Texts of merged boxes are joined
    in reading order, engines by name.
    """
    groups: list[list[TextBox]] = [[box] for box in boxes]
    merged = True
    while merged:
        merged = False
        result: list[list[TextBox]] = []
        for group in groups:
            bounds = _bounds(group)
            for other in result:
                if other[0].frame == group[0].frame and _overlaps(bounds, _bounds(other)):
                    other.extend(group)
                    merged = True
                    break
            else:
                result.append(group)
        groups = result
    return [_union(group) for group in groups]


def _bounds(group: list[TextBox]) -> tuple[int, int, int, int]:
    return (min(b.x1 for b in group), min(b.y1 for b in group),
            max(b.x2 for b in group), max(b.y2 for b in group))


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(group: list[TextBox]) -> TextBox:
    x1, y1, x2, y2 = _bounds(group)
    texts: list[str] = []
    for box in sorted(group, key=lambda b: (b.y1, b.x1)):
        if box.text not in texts:
            texts.append(box.text)
    return TextBox(
        frame=group[0].frame, x1=x1, y1=y1, x2=x2, y2=y2,
        engine="+".join(sorted({b.engine for b in group})),
        confidence=max(b.confidence for b in group),
        text=" ".join(texts),
    )
