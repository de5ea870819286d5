"""A DICOM file as the validator sees it: attribute path -> value text.

The MIDI-B checks look attributes up by path (``tag_ds``), so every element at
every depth is listed under the same spelling the answer key uses (see
``medveil.evaluate.paths``).  Private elements are listed under their block's
creator, so a tool that moves a block keeps its checks.  Values are text: the
elements' values joined with backslashes, as DICOM encodes them.

Absent and empty differ: an absent path is not in the mapping, an empty value
maps to ``""``.  Bulk binary values (Pixel Data, OB/OW, non-text UN) are listed
as present with a placeholder, so "attribute retained" checks can see them
without text checks matching bytes by accident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from medveil.evaluate.paths import Step, format_path

PIXEL_DATA = 0x7FE00010
_BULK_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}


def flatten(ds: Dataset) -> dict[str, str]:
    """Every element of ``ds`` at every depth, keyed by its answer-key path."""
    values: dict[str, str] = {}
    for steps, element in walk(ds, ()):
        values[format_path(steps)] = value_text(element)
    return values


def walk(ds: Dataset, prefix: tuple[Step, ...]) -> Iterator[tuple[tuple[Step, ...], DataElement]]:
    """(path, element) for each element of ``ds`` and of its sequences, depth first."""
    creators = _creators(ds)
    for element in _elements(ds):
        step = _step(element.tag, creators)
        path = prefix + (step,)
        yield path, element
        if element.VR == "SQ" and element.value is not None:
            for number, item in enumerate(element.value):
                item_step = Step(step.group, step.element, step.creator, number)
                yield from walk(item, prefix + (item_step,))


def _elements(ds: Dataset) -> Iterator[DataElement]:
    for tag in list(ds.keys()):
        try:
            yield ds[tag]
        except Exception:  # an element pydicom cannot convert is still present
            raw = ds.get_item(tag)
            if raw is not None:
                yield DataElement(tag, "UN", raw.value if isinstance(raw.value, bytes) else b"")


def _creators(ds: Dataset) -> dict[tuple[int, int], str]:
    found: dict[tuple[int, int], str] = {}
    for tag in ds.keys():
        if tag.group % 2 == 1 and 0x0010 <= tag.element <= 0x00FF:
            try:
                value = ds[tag].value
            except Exception:
                continue
            if isinstance(value, bytes):
                value = value.decode("latin-1", "replace")
            if isinstance(value, str) and value.strip():
                found[(tag.group, tag.element)] = value.strip()
    return found


def _step(tag, creators: dict[tuple[int, int], str]) -> Step:
    group, element = tag.group, tag.element
    if group % 2 == 1 and element >= 0x1000:
        creator = creators.get((group, element >> 8))
        if creator is not None:
            return Step(group, element & 0xFF, creator)
    return Step(group, element)


def value_text(element: DataElement) -> str:
    """The element's value as one string (multiple values joined by ``\\``)."""
    if element.tag == PIXEL_DATA:
        return _placeholder(element.value)
    value = element.value
    if element.VR == "SQ":
        return f"sequence:{len(value) if value is not None else 0}"
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        text = _text_from_bytes(bytes(value)) if element.VR in ("UN", "OB") else None
        return text if text is not None else _placeholder(value)
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(_single(v) for v in value)
    return _single(value)


def _single(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace")
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original.strip()
    return str(value)


def _text_from_bytes(data: bytes) -> str | None:
    """Bytes that are printable text (a private value read as UN), else None."""
    stripped = data.rstrip(b"\x00 ")
    if not stripped:
        return ""
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        text = stripped.decode("latin-1")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return text if printable >= 0.95 * len(text) else None


def _placeholder(value: object) -> str:
    size = len(value) if isinstance(value, (bytes, bytearray)) else 0
    return f"binary:{size}"


def pixel_digest(ds: Dataset) -> str | None:
    """MD5 of the Pixel Data element's raw bytes as stored (encapsulated or not)."""
    raw = ds.get_item(PIXEL_DATA)
    if raw is None or raw.value is None:
        return None
    value = raw.value
    if not isinstance(value, (bytes, bytearray)):
        value = ds.PixelData
    return hashlib.md5(bytes(value)).hexdigest()
