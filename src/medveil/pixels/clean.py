"""The Clean Pixel Data step: find burned-in text, mask what must go, prove nothing else moved.

One call per object, before its header is de-identified (the header's own
identifiers tell which burned-in words are PHI, and the device rules match
on the header as it came in):

1. known-location rules name rectangles for the device, whatever OCR reads;
2. every frame is decoded once and screened for text; the candidate regions
   are read by OCR (identical frames and repeated crops once, see
   :mod:`medveil.pixels.detect`), and the text is kept or masked by the
   pixel policy (:mod:`medveil.pixels.select`);
3. the boxes are masked (:func:`medveil.pixels.mask.mask_dataset`) with the
   Pixel Padding Value or the darkest value the image uses, leaving every
   other stored byte as it was where the encoding allows; an object with
   nothing to mask keeps its Pixel Data, transfer syntax and Photometric
   Interpretation exactly as they came;
4. the decoded output is compared with the frames decoded in step 2 outside
   the boxes: any other difference is a fault and the object is not released;
5. overlay planes that carry text are removed, and with them overlay bits
   hidden in Pixel Data; icons (small copies of the image, text included)
   are removed.

What OCR read stays in memory: the report carries box geometry, engine,
confidence and a reason, never text.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit

from medveil.errors import QuarantineError, safe_reason
from medveil.pixels.detect import Scan, TextBox, detect_in_image, scan_frames
from medveil.pixels.fit import line_masks
from medveil.pixels.frames import iter_frames
from medveil.pixels.layout import MaskingNotSupported, PixelLayout
from medveil.pixels.mask import (
    MaskBox,
    MaskResult,
    clear_overlay_bits,
    mask_dataset,
    overlay_groups,
    remove_icon,
    remove_overlay,
)
from medveil.pixels.rules import LocationRule, RuleMatcher, load_rules, shipped_rules
from medveil.pixels.select import ALL_TEXT, PHI_ONLY, select, ultrasound_regions
from medveil.policy.profile import PixelSettings
from medveil.text import KnownIdentifiers

#: Image Pixel module attributes kept beside the original Pixel Data for the final comparison.
_PIXEL_MODULE = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
                 "NumberOfFrames", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")


#: Objects whose Pixel Data holds measurements, not a picture anyone drew text into:
#: RT Dose grids, segmentations, parametric and real-world value maps. Their overlays and
#: icons are still cleaned; their "pixels" are not read as images.
NOT_PICTURES = frozenset({
    "1.2.840.10008.5.1.4.1.1.481.2",   # RT Dose
    "1.2.840.10008.5.1.4.1.1.66.4",    # Segmentation
    "1.2.840.10008.5.1.4.1.1.66.7",    # Label Map Segmentation
    "1.2.840.10008.5.1.4.1.1.30",      # Parametric Map
})


@dataclass(frozen=True, slots=True)
class MaskedRegion:
    """One masked rectangle as the audit store records it (no text)."""

    frame: int | None  # None: every frame
    x1: int
    y1: int
    x2: int
    y2: int
    source: str  # "ocr" or "rule"
    reason: str  # "all-text", "phi", "label" or the rule's label
    engine: str = ""
    confidence: float | None = None

    def as_record(self) -> dict:
        record: dict[str, Any] = {"frame": self.frame, "box": [self.x1, self.y1, self.x2, self.y2],
                  "source": self.source, "reason": self.reason}
        if self.engine:
            record["engine"] = self.engine
        if self.confidence is not None:
            record["confidence"] = round(self.confidence, 3)
        return record


@dataclass
class PixelReport:
    """What the step found and did to one object."""

    policy: str
    text_regions: int = 0
    masked: list[MaskedRegion] = field(default_factory=list)
    mask: MaskResult | None = None
    overlays_removed: int = 0
    overlay_bits_cleared: int = 0
    icon_removed: bool = False
    #: What screening and reading cost: frames screened, candidate regions, crops read and reused.
    frames_screened: int = 0
    candidates: int = 0
    crops_read: int = 0
    crops_reused: int = 0
    #: The stored value masked boxes were filled with (None: the layout's own "min", or no mask).
    fill: int | None = None

    @property
    def pixels_changed(self) -> bool:
        return bool(self.mask and (self.mask.changed_bytes or self.mask.reencoded)) or bool(
            self.overlay_bits_cleared)


def clean_pixels(
    ds: Dataset,
    settings: PixelSettings,
    *,
    known: KnownIdentifiers | Callable[[], KnownIdentifiers] | None = None,
    burned_in_reason: str | None = None,
) -> PixelReport:
    """Mask burned-in text in *ds* in place; raise QuarantineError when that cannot be done fully.

    *known*: the object's own identifiers, or a function that collects them,
    called only when text was found (most frames hold none, and collecting
    walks the whole header).
    """
    policy = settings.policy if settings.policy != "auto" else (ALL_TEXT if burned_in_reason else PHI_ONLY)
    report = PixelReport(policy=policy)
    try:
        if "PixelData" in ds and str(ds.get("SOPClassUID", "")) not in NOT_PICTURES:
            _mask_text(ds, settings, policy, known, report)
        _clean_overlays(ds, settings, report)
        report.icon_removed = remove_icon(ds)
    except QuarantineError:
        raise
    except MaskingNotSupported as exc:
        raise QuarantineError(f"burned-in text cannot be masked: {safe_reason(exc)}") from None
    except Exception as exc:
        raise QuarantineError(f"pixel data could not be cleaned ({safe_reason(exc)})") from None
    return report


def _rules(settings: PixelSettings) -> RuleMatcher:
    return _matcher(settings.shipped_rules, settings.rules_file)


@cache
def _matcher(shipped: bool, rules_file: str | None) -> RuleMatcher:
    rules: tuple[LocationRule, ...] = shipped_rules() if shipped else ()
    if rules_file:
        rules = rules + _site_rules(rules_file)
    return RuleMatcher(rules)


@cache
def _site_rules(path: str) -> tuple[LocationRule, ...]:
    return load_rules(path)


def _mask_text(ds: Dataset, settings: PixelSettings, policy: str,
               known: KnownIdentifiers | Callable[[], KnownIdentifiers] | None, report: PixelReport) -> None:
    boxes: list[MaskBox] = []
    for label, (x1, y1, x2, y2) in _rules(settings).boxes(ds):
        boxes.append(MaskBox(x1, y1, x2, y2, None))
        report.masked.append(MaskedRegion(None, x1, y1, x2, y2, "rule", label))
    scan = scan_frames(ds, engines=list(settings.engines), min_confidence=settings.min_confidence,
                       screen=settings.screen, keep_frames=True)
    report.frames_screened, report.candidates = scan.frames_screened, scan.candidates
    report.crops_read, report.crops_reused = scan.crops_read, scan.crops_reused
    found = scan.boxes
    report.text_regions = len(found)
    protected = ultrasound_regions(ds) if str(ds.get("Modality", "")).upper() == "US" else []
    width = int(ds.Columns)
    decisions = select(found, policy, known=known, protected=protected) if found else []
    for mask in line_masks(decisions, scan.frames, width):
        boxes.append(MaskBox(mask.x1, mask.y1, mask.x2, mask.y2, mask.frame))
        report.masked.append(MaskedRegion(mask.frame, mask.x1, mask.y1, mask.x2, mask.y2, "ocr", mask.reason,
                                          mask.engine, mask.confidence))
    if not boxes:
        return  # nothing to mask: Pixel Data, transfer syntax and photometric stay as they came
    apply_masks(ds, settings, boxes, report, scan)


def apply_masks(ds: Dataset, settings: PixelSettings, boxes: list[MaskBox], report: PixelReport,
                scan: Scan | None = None) -> None:
    """Mask *boxes* and prove nothing outside them moved; raise QuarantineError otherwise.

    The frames decoded while reading (*scan*) are the reference for the
    check when they were kept; otherwise the input is decoded again.
    """
    before = _pixel_copy(ds) if scan is None or scan.frames is None else scan.frames
    fill = fill_value(ds, settings, scan)
    report.fill = fill if isinstance(fill, int) else None
    result = mask_dataset(ds, boxes, padding=settings.padding, fill=fill)
    if report.mask is None:
        report.mask = result
    else:  # a second pass (the verify gate's): keep what the first did, add what this one did
        report.mask = MaskResult(report.mask.changed_bytes + result.changed_bytes,
                                 max(report.mask.frames, result.frames),
                                 report.mask.transfer_syntax_kept and result.transfer_syntax_kept,
                                 report.mask.reencoded or result.reencoded, result.note,
                                 max(report.mask.margin, result.margin))
    _check_outside(before, ds, boxes, settings.padding + result.margin)


def mask_found_lines(ds: Dataset, settings: PixelSettings, lines: list[TextBox], report: PixelReport) -> None:
    """Mask lines of pixel text that a rescan (the verify gate) still reads as PHI.

    The smallest repair that can make the object safe: those lines go, each
    recorded as a ``verify`` box; the caller scans again and refuses the
    object only when text is still read.
    """
    width = int(ds.Columns)
    boxes = []
    for line in lines:
        grow = (line.y2 - line.y1) // 2
        x1, x2 = max(0, line.x1 - grow), min(width, line.x2 + grow)
        boxes.append(MaskBox(x1, line.y1, x2, line.y2, line.frame))
        report.masked.append(MaskedRegion(line.frame, x1, line.y1, x2, line.y2, "ocr", "verify",
                                          line.engine, line.confidence))
    try:
        apply_masks(ds, settings, boxes, report)
    except MaskingNotSupported as exc:
        raise QuarantineError(f"burned-in text cannot be masked: {safe_reason(exc)}") from None


def fill_value(ds: Dataset, settings: PixelSettings, scan: Scan | None) -> str | int:
    """What masked greyscale pixels are filled with under ``fill: min``.

    The Pixel Padding Value where the object has one (it is the value that
    means "no image here", and viewers leave it out of their window), or
    else the darkest stored value the image actually uses: its minimum
    (MONOCHROME2) or maximum (MONOCHROME1). The darkest value the encoding
    could hold (-32768 on a signed CT) sits far below anything in the image
    and makes a viewer that stretches from minimum to maximum wash the image
    out. JPEG Baseline keeps its own block-level black, and colour and
    palette images keep the layout's black (see :meth:`PixelLayout.fill_values`).
    """
    if settings.fill != "min":
        return settings.fill
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax in (JPEGBaseline8Bit, JPEGExtended12Bit):
        return "min"
    try:
        layout = PixelLayout.from_dataset(ds)
    except MaskingNotSupported:
        return "min"
    if layout.samples != 1 or layout.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return "min"
    padding = ds.get("PixelPaddingValue")
    if isinstance(padding, int) and layout.stored_min <= padding <= layout.stored_max:
        return padding
    used = None
    if scan is not None:
        used = scan.brightest if layout.photometric == "MONOCHROME1" else scan.darkest
    if used is None:
        values = [frame.max() if layout.photometric == "MONOCHROME1" else frame.min() for frame in iter_frames(ds)]
        used = max(values) if layout.photometric == "MONOCHROME1" else min(values)
    value = int(used)
    return value if layout.stored_min <= value <= layout.stored_max else "min"


def _pixel_copy(ds: Dataset) -> Dataset:
    """A dataset holding only what decoding the current Pixel Data needs."""
    copy_ = Dataset()
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            copy_[keyword] = copy.deepcopy(ds[keyword])
    copy_["PixelData"] = copy.deepcopy(ds["PixelData"])
    copy_.file_meta = copy.deepcopy(ds.file_meta)
    return copy_


def _check_outside(before: Dataset | list[np.ndarray], after: Dataset, boxes: list[MaskBox], padding: int) -> None:
    """Every decoded sample outside the (padded) boxes must equal the input's.

    *before* is the input's Pixel Data (decoded here) or its frames decoded already.

    Colour subsampled input (YBR_FULL_422) shares chroma between pixel
    pairs, so the comparison allows the masked boxes one pixel of slack
    horizontally there.
    """
    slack = 1 if str(after.get("PhotometricInterpretation", "")).endswith("422") else 0
    originals = iter_frames(before) if isinstance(before, Dataset) else iter(before)
    for index, (old, new) in enumerate(zip(originals, iter_frames(after), strict=True)):
        if old.shape != new.shape:
            raise QuarantineError("masking changed the image geometry")
        outside = np.ones(old.shape[:2], dtype=bool)
        for box in boxes:
            if box.frame is not None and box.frame != index:
                continue
            outside[max(0, box.y1 - padding):box.y2 + padding,
                    max(0, box.x1 - padding - slack):box.x2 + padding + slack] = False
        if not np.array_equal(old[outside], new[outside]):
            raise QuarantineError("masking changed pixels outside the masked boxes")


def _clean_overlays(ds: Dataset, settings: PixelSettings, report: PixelReport) -> None:
    """Remove overlay planes that carry text (or all of them, by setting).

    An overlay without (60xx,3000) Overlay Data lives in Pixel Data's unused
    high bits (retired, but old files have it): its group goes and the bits
    are cleared.
    """
    if settings.overlays == "keep":
        return
    embedded = False
    for group in overlay_groups(ds):
        has_data = (group << 16 | 0x3000) in ds
        if settings.overlays == "text" and has_data and not _overlay_has_text(ds, group, settings):
            continue
        embedded = embedded or not has_data
        remove_overlay(ds, group)
        report.overlays_removed += 1
    if embedded and "PixelData" in ds:
        report.overlay_bits_cleared = clear_overlay_bits(ds)


def _overlay_has_text(ds: Dataset, group: int, settings: PixelSettings) -> bool:
    """Whether OCR reads anything in an overlay plane (every frame of a multi-frame overlay).

    An overlay pydicom cannot render (attributes missing or inconsistent) cannot be
    vouched for, so it counts as carrying text: removing graphics loses no diagnosis.
    """
    try:
        images = overlay_images(ds, group)
    except Exception:  # noqa: BLE001  (pydicom raises several types for a malformed overlay)
        return True
    return any(detect_in_image(image, engines=list(settings.engines), min_confidence=settings.min_confidence)
               for image in images)


def overlay_images(ds: Dataset, group: int) -> list[np.ndarray]:
    """Each distinct, non-empty plane of an overlay (every frame of a multi-frame one) as an
    8-bit image of dark marks on white, as OCR engines expect print on paper.

    Raises whatever pydicom raises for an overlay it cannot render.
    """
    planes = ds.overlay_array(group)
    planes = planes[np.newaxis] if planes.ndim == 2 else planes
    images: list[np.ndarray] = []
    seen: set[bytes] = set()
    for plane in planes:
        digest = np.packbits(plane).tobytes()
        if digest in seen or not plane.any():
            continue
        seen.add(digest)
        images.append(np.where(plane > 0, 0, 255).astype(np.uint8))
    return images


def region_records(report: PixelReport) -> list[dict]:
    return [region.as_record() for region in report.masked]


__all__ = ["MaskedRegion", "PixelReport", "TextBox", "clean_pixels", "region_records"]
