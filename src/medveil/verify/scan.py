"""Search one de-identified object for PHI: header text at every depth, overlays, pixels.

A finding names where (an attribute keyword or tag, ``pixels frame N``,
``overlay 60xx``) and what kind of PHI (``identifier`` for a value the input
carried, or a generic category: ``email``, ``phone``, ``ssn`` in header
text; any category of the free-text detectors in text read from pixels,
where dates are not shifted and therefore still PHI), never the text.

Header text is held to generic patterns that are precise enough to be
trusted on de-identified output: dates there were shifted on purpose, and
the name gazetteer would flag manufacturer and protocol names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydicom import Dataset
from pydicom.dataelem import RawDataElement

from medveil.engine.residuals import private_binary_texts
from medveil.engine.vrs import BINARY_VRS, TEXT_VRS, keyword_of
from medveil.pixels.clean import NOT_PICTURES, overlay_images
from medveil.pixels.detect import TextBox, detect_in_image, detect_text
from medveil.pixels.mask import overlay_groups
from medveil.pixels.select import group_lines
from medveil.policy.identifying import not_verified
from medveil.text import KnownIdentifiers, TextCleaner

#: Generic categories trusted in header text of de-identified output.
HEADER_CATEGORIES = frozenset({"email", "phone", "ssn"})
#: UIDs, dates, codes and numbers: never searched (nor the attributes of policy.identifying.not_verified()).
_SKIPPED_VRS = frozenset({"UI", "DA", "DT", "TM", "AS", "CS", "DS", "IS"})


class Matcher(Protocol):
    def find(self, text: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Finding:
    location: str
    category: str

    def __str__(self) -> str:
        return f"{self.location} ({self.category})"


def scan_dataset(
    ds: Dataset,
    matcher: Matcher | None = None,
    *,
    ocr_engines: Sequence[str] | None = None,
    min_confidence: float = 0.5,
    pixel_lines: list[TextBox] | None = None,
    kept: Iterable[str] = (),
) -> list[Finding]:
    """Every place in *ds* that still looks like PHI; OCR runs only when engines are given.

    *pixel_lines*, when given, receives one box per line of pixel text found
    to be PHI (text stays in memory), so the caller can mask it and scan again.
    *kept*: values of identifying attributes the policy keeps on purpose
    (:func:`medveil.policy.identifying.kept_identifying`, e.g. a retained Device Serial
    Number); text that is one of them is not a finding, in the header or in the pixels.
    """
    findings: list[Finding] = []
    cleaner = TextCleaner(KnownIdentifiers(kept=tuple(kept)))
    _scan_header(ds, matcher, cleaner, findings, prefix="")
    if ocr_engines:
        if "PixelData" in ds and str(ds.get("SOPClassUID", "")) not in NOT_PICTURES:
            boxes = detect_text(ds, engines=list(ocr_engines), min_confidence=min_confidence)
            _judge_text(boxes, matcher, cleaner, findings, lambda frame: f"pixels frame {frame}", pixel_lines)
        for group in overlay_groups(ds):
            if (group << 16 | 0x3000) not in ds:
                continue
            try:
                images = overlay_images(ds, group)
            except Exception:  # noqa: BLE001  (a malformed overlay cannot be read, so not vouched for)
                findings.append(Finding(f"overlay {group:04X}", "unreadable"))
                continue
            for image in images:
                boxes = detect_in_image(image, engines=list(ocr_engines), min_confidence=min_confidence)
                _judge_text(boxes, matcher, cleaner, findings, lambda _frame, g=group: f"overlay {g:04X}")
    return _unique(findings)


def _judge_text(boxes, matcher: Matcher | None, cleaner: TextCleaner, findings: list[Finding], where,
                lines_out: list[TextBox] | None = None) -> None:
    for line in group_lines(boxes):
        text = " ".join(box.text for box in line)
        location = where(line[0].frame)
        if matcher is not None and matcher.find(text):
            findings.append(Finding(location, "identifier"))
        elif spans := cleaner.find(text):
            findings.append(Finding(location, spans[0].category))
        else:
            continue
        if lines_out is not None:
            lines_out.append(_line_box(line))


def _line_box(line: list[TextBox]) -> TextBox:
    """One box around a line's words (the text joined, the lowest confidence kept)."""
    return TextBox(frame=line[0].frame, x1=min(b.x1 for b in line), y1=min(b.y1 for b in line),
                   x2=max(b.x2 for b in line), y2=max(b.y2 for b in line),
                   engine="+".join(sorted({b.engine for b in line})),
                   confidence=min(b.confidence for b in line), text=" ".join(b.text for b in line))


def _scan_header(ds: Dataset, matcher: Matcher | None, cleaner: TextCleaner, findings: list[Finding],
                 prefix: str) -> None:
    skipped = not_verified()
    for tag in ds.keys():  # noqa: SIM118  (tags, not elements)
        raw = ds.get_item(tag)
        keyword = keyword_of(tag)
        if keyword in skipped or tag.group == 0x0002:
            continue
        name = prefix + (keyword or f"({tag.group:04X},{tag.element:04X})")
        if tag.group % 2 and isinstance(raw, RawDataElement) and raw.VR is None:
            raw = ds[tag]  # implicit VR: as pydicom reads it (a sequence it knows, else UN bytes)
        if tag.group % 2 and raw.VR in BINARY_VRS and isinstance(raw.value, (bytes, bytearray)):
            # A private value of binary or unknown type (the KB keeps some whatever their VR).
            texts = private_binary_texts(bytes(raw.value), ["iso8859"])
        else:
            elem = ds[tag]
            if elem.VR == "SQ":
                for index, item in enumerate(elem.value or []):
                    _scan_header(item, matcher, cleaner, findings, f"{name}[{index}].")
                continue
            if elem.VR in _SKIPPED_VRS or (elem.VR not in TEXT_VRS and elem.VR != "PN"):
                continue
            values = elem.value if elem.VM > 1 else [elem.value]
            texts = [str(v) for v in values if v not in (None, "")]
        for text in texts:
            if matcher is not None and matcher.find(text.replace("^", " ")):
                findings.append(Finding(name, "identifier"))
                break
            generic = [s.category for s in cleaner.find(text) if s.category in HEADER_CATEGORIES]
            if generic:
                findings.append(Finding(name, generic[0]))
                break


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        seen.setdefault((finding.location, finding.category), finding)
    return list(seen.values())
