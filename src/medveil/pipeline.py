"""The per-file pipeline: the only path by which medveil de-identifies a file.

Every entry point goes through it, so all of them make the same decisions and
write the same bytes: the batch runners' executors (worker processes,
threads, Dask tasks) and the gateway call :func:`deidentify_bytes`; the dry
run calls it too and shows the record instead of writing; the Python API's
:func:`deidentify_dataset` runs its dataset stage on a dataset in memory.
Nothing here touches a file system or keeps state between calls beyond what
the policy compiled once per process; where bytes come from and where they go
is the caller's business.

For one file, in order:

1. **parse** (:func:`_parse`): refuse what is too large for the memory budget,
   read the bytes, check their structure (:mod:`medveil.dicomio.integrity`)
   and put back elements a stretched length hid;
2. **clean** (:func:`_clean`, the dataset stage): the burned-in gate
   (:mod:`medveil.pixels.burned_in`), Clean Pixel Data, the header
   (:mod:`medveil.engine`), visual features, hidden-data repairs and the
   ``--verify`` rescan;
3. **encode** (:mod:`medveil.dicomio.encode`) and check that every pixel
   byte of the input that was not changed is in the output, unchanged;
4. **record**: a :class:`medveil.records.FileRecord` with hashes, pairs,
   counts, events, fingerprints and review material.

A file either comes out complete and verified, or not at all: every failure
becomes a record with status :attr:`Status.QUARANTINED` and a reason that
names no value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from io import BytesIO

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from medveil.dicomio.discover import read_meta_group
from medveil.dicomio.encode import encode_file
from medveil.dicomio.integrity import (
    Inspection,
    Nonconformity,
    Swallowed,
    check_complete,
    dataset_start,
    inspect,
    zero_padding_start,
)
from medveil.engine import Result
from medveil.engine import deidentify_dataset as engine_deidentify
from medveil.engine.identifiers import collect_known, known_once
from medveil.engine.repair import repair_element, resolve
from medveil.engine.residuals import collect_identifiers, sop_class_of
from medveil.errors import QuarantineError, safe_reason
from medveil.pixels.burned_in import burned_in_reason
from medveil.pixels.clean import PixelReport, clean_pixels, region_records
from medveil.pixels.mask import overlay_groups
from medveil.policy import Option, Policy
from medveil.policy.iod import load_attribute_types
from medveil.pseudonym import Key
from medveil.quiet import silenced
from medveil.records import FileRecord, Status
from medveil.review.capture import HeaderSnapshot, pixel_source, review_material
from medveil.runner.limits import check_decode, check_inflated_size, file_limit, human
from medveil.verify import Fingerprints, WordMatcher, identifier_words, scan_dataset

_PATH_SAFE = re.compile(r"[^0-9A-Za-z._-]")
PIXEL_DATA = 0x7FE00010


def _component(value: str) -> str:
    """*value* as one path component: safe characters only, and no leading dot.

    Kept UIDs (Retain UIDs) are whatever the input held: "." or ".." would name
    the folder itself or climb out of OUTPUT, and a leading dot would hide the
    file (or make it look like a medveil temporary file).
    """
    safe = _PATH_SAFE.sub("_", value) or "_"
    return "_" + safe[1:] if safe.startswith(".") else safe


def output_relpath(ds: Dataset) -> str:
    """``<PatientID>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm``, all pseudonyms."""
    parts = []
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = str(ds.get(keyword, "") or "").strip()
        if not value:
            raise QuarantineError(f"{keyword} missing, the output cannot be named")
        parts.append(_component(value))
    return "/".join(parts[:3]) + f"/{parts[3]}.dcm"


def _ensure_file_meta(ds: Dataset) -> None:
    """Files read without a meta group get one matching how they were encoded."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding if ds.original_encoding != (None, None) else (True, True)
        if implicit:
            meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def deidentify_bytes(data: bytes, policy: Policy, key: Key, *,
                     patient_id: str | None = None,
                     memory_budget: int | None = None) -> tuple[bytes | str, FileRecord]:
    """De-identify one encoded file: ``(cleaned bytes, record)`` or ``(reason, record)``.

    *patient_id* is the sequential Patient ID the run assigned, when the
    policy numbers patients (numbering needs the whole input, so the run
    does it).  *memory_budget* (bytes) refuses a file whose declared sizes
    (the file, its inflated dataset, its decoded pixels) would need more,
    before they are inflated or decoded (:mod:`medveil.runner.limits`).
    Never raises for a bad input: every failure is a quarantine reason that
    names no value.
    """
    record = FileRecord()
    with silenced():
        try:
            out = _deidentify_bytes(data, policy, key, patient_id, record, memory_budget)
        except Exception as exc:  # fail closed: every error ends in quarantine, never a crash
            reason = safe_reason(exc)
            record.refused(reason)
            return reason, record
    record.status = Status.WRITTEN
    return out, record


def deidentify_dataset(ds: Dataset, policy: Policy, key: Key, *, patient_id: str | None = None) -> Result:
    """De-identify a dataset in memory, in place, the way a file's dataset is: the public API's entry.

    The same dataset stage as :func:`deidentify_bytes`: the burned-in gate
    (an object presumed to carry burned-in text is refused unless its pixels
    are cleaned or the policy passes it), Clean Pixel Data when the policy
    has it, the header, and the ``--verify`` rescan when asked for.  What
    only bytes allow (the structural checks, the written file's pixel check)
    is left out.  Raises :class:`medveil.errors.QuarantineError` when the
    dataset must not be released; it may then be half-changed and must not
    be written anywhere.
    """
    if policy.cleans_pixels and "PixelData" in ds:
        _ensure_file_meta(ds)  # the pixel step re-encodes in the dataset's transfer syntax
    with silenced():
        return _clean(ds, policy, key, patient_id, {}, []).result


@dataclass
class _Cleaned:
    """What the dataset stage found, for the record."""

    result: Result
    words: set[str]
    reason: str | None
    pixel_report: PixelReport | None
    repairs: list[tuple[str, str]]


def _deidentify_bytes(data: bytes, policy: Policy, key: Key, patient_id: str | None,
                      record: FileRecord, memory_budget: int | None) -> bytes:
    record.input_sha256 = hashlib.sha256(data).hexdigest()
    ds, inspection = _parse(data, memory_budget)
    restored = _restore_swallowed(ds, inspection.source, inspection.swallowed)
    pixels_before = inspection.pixels
    if memory_budget is not None and "PixelData" in ds and (policy.cleans_pixels or policy.visual_features):
        check_decode(ds, memory_budget)
    _ensure_file_meta(ds)
    snapshot = HeaderSnapshot(ds)
    source = pixel_source(ds) if policy.cleans_pixels else None
    cleaned = _clean(ds, policy, key, patient_id, pixels_before, inspection.nonconforming)
    relpath = output_relpath(ds)
    _resolve_implicit_vrs(ds)
    _share_unchanged_pixels(ds, pixels_before)
    out = encode_file(ds)
    _check_pixels_kept(out, ds, pixels_before)
    result, pixel_report = cleaned.result, cleaned.pixel_report
    record.relpath = relpath
    record.output_sha256 = hashlib.sha256(out).hexdigest()
    record.uid_pairs = result.uid_pairs
    record.patient_pairs = result.patient_pairs
    record.counts = result.counts
    record.events = result.events + restored + cleaned.repairs
    record.fingerprints = Fingerprints(key).digests_of(cleaned.words)
    if pixel_report is not None:
        record.events.extend(_pixel_events(pixel_report))
    elif cleaned.reason:
        record.events.append(("burned-in-passed", cleaned.reason))
    elif policy.cleans_pixels and "PixelData" in ds:
        # --pixel-scan flagged trusted the header: the run's summary warns how many were not read.
        record.events.append(("pixel-not-scanned", "not presumed to carry burned-in text"))
    record.review = review_material(snapshot, ds, source, pixel_report.masked if pixel_report else ())
    return out


def _parse(data: bytes, memory_budget: int | None) -> tuple[Dataset, Inspection]:
    """The dataset and its structural inspection (which holds the bytes it was read from).

    Refuses what it cannot vouch for: too large for the budget, not DICOM,
    not a composite instance, or structurally broken beyond repair.
    """
    if data[:4] == b"DICM":  # meta group without the 128-byte preamble
        data = bytes(128) + data
    if memory_budget is not None:
        _check_budget(data, memory_budget)
    padding = zero_padding_start(data)
    if padding is not None:
        data = data[:padding]  # trailing zeros are no elements; parsing them took minutes
    try:
        ds = pydicom.dcmread(BytesIO(data), force=True)
    except Exception as exc:  # any parse failure means we cannot vouch for the file
        raise QuarantineError(f"cannot be parsed as DICOM ({type(exc).__name__})") from None
    if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
        raise QuarantineError("not a composite instance (no SOP Class/Instance UID)")
    inspection = inspect(data, ds)
    for finding in inspection.nonconforming:
        if finding.refuses_file:
            raise QuarantineError(f"{finding.describe()}; the file is not parsed further")
    return ds, inspection


def _clean(ds: Dataset, policy: Policy, key: Key, patient_id: str | None, pixels_before: dict[int, memoryview],
           nonconforming: list[Nonconformity]) -> _Cleaned:
    """The dataset stage: burned-in gate, pixels, header, visual features, hidden data, ``--verify``.

    *pixels_before* maps each pixel value's tag to the bytes the written file
    must hold; a step that changes pixels updates it.
    """
    reason = burned_in_reason(ds)
    identifiers = collect_identifiers(ds, policy, sop_class_of(ds))
    words = identifier_words(ds, policy, identifiers)
    known = known_once(ds, policy)  # the pixel step and the text cleaner share one collection
    pixel_report = _clean_pixels(ds, policy, reason, pixels_before, known)
    if pixel_report is None and reason and policy.burned_in == "quarantine":
        raise QuarantineError(f"may carry burned-in text ({reason}); turn on the Clean Pixel Data "
                              "option (-o clean_pixel_data) or use --burned-in pass to release it as is")
    applied = frozenset({Option.CLEAN_PIXEL_DATA}) if pixel_report is not None else frozenset()
    result = engine_deidentify(ds, policy, key, assigned_patient_id=patient_id,
                               pixel_options_applied=applied, identifiers=identifiers, known=known)
    if policy.visual_features:  # e.g. "cxr": a trained anonymiser changes the pixels (medveil.cxr.dicom)
        from medveil.cxr.dicom import pipeline_step

        changed = pipeline_step(ds, policy, result.uid_pairs, result.events)
        if changed:
            pixels_before.clear()
            pixels_before.update({tag: memoryview(value) for tag, value in changed.items()})
    if pixel_report is not None and "PixelData" in ds:
        # The text that could identify the patient is gone (PS3.3 C.7.6.1.1.6).
        ds.BurnedInAnnotation = "NO"
    repairs = _refuse_hidden_data(ds, nonconforming)
    if policy.verify:
        _verify_clean(ds, policy, words, pixel_report, pixels_before, result.events)
    return _Cleaned(result, words, reason, pixel_report, repairs)


def _check_budget(data: bytes, budget: int) -> None:
    """Refuse a file (or its inflated dataset) too large for *budget*, before parsing it."""
    if len(data) > file_limit(budget):
        raise QuarantineError(f"the file ({human(len(data))}) is larger than a worker's memory budget allows "
                              f"for one file ({human(file_limit(budget))}); raise --memory-budget to process it")
    meta = _meta_group(data)
    if meta is not None and meta.get(0x00020010, b"").rstrip(b"\x00 ") == DeflatedExplicitVRLittleEndian.encode():
        check_inflated_size(memoryview(data)[dataset_start(data):], budget)


def _meta_group(data: bytes) -> dict[int, bytes] | None:
    if data[128:132] != b"DICM":
        return None
    handle = BytesIO(data)
    handle.seek(132)
    return read_meta_group(handle)


#: Type 1 text attributes of the modules every image carries (General Series, Image Pixel, SOP
#: Common, ...): an object without them is not what it claims to be, so one of these holding
#: hidden bytes cannot be repaired by removal.
_TYPE_1_TEXT = frozenset({0x00080060, 0x00280004, 0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00200052})


def _refuse_hidden_data(ds: Dataset, findings: list[Nonconformity]) -> list[tuple[str, str]]:
    """A value that breaks its VR in a way that can hide other elements must not reach the output.

    Binary bytes in a text value are what a length stretched over the next
    elements leaves behind (their headers are binary).  When the policy has
    already removed, emptied or replaced such a value, nothing of it is
    released.  When it would be kept or cleaned (the cleaner keeps what it
    does not recognise), the attribute itself is repaired: emptied if its
    Type is 2, removed otherwise; what it swallowed goes with it.  Only a
    Type 1 attribute that every object needs (Modality, the instance's
    UIDs, ...) cannot be repaired that way, and the file is quarantined.

    Other breaches (a value longer than its VR allows, a UID with letters)
    are common in real exports and hide nothing; they are returned as events
    with the repairs.
    """
    events = []
    sop_class = str(ds.get("SOPClassUID", "") or "")
    for finding in findings:
        if not finding.hides_data:
            events.append(("nonconforming-value", finding.describe()))
            continue
        tag = finding.path[-1]
        parent, held = _stored_at(ds, finding.path)
        if parent is None or held is None:
            continue
        # Looked at without converting: a stretched numeric value may not even convert (302 bytes of SL).
        if (held.length == 0) if isinstance(held, RawDataElement) else held.is_empty:
            continue
        attribute = finding.where()
        kind = load_attribute_types().type_of(tag, sop_class) if len(finding.path) == 1 else None
        if tag in _TYPE_1_TEXT or kind == 1:
            raise QuarantineError(f"{finding.describe()}: such a value may hold the bytes of other elements, "
                                  "and the attribute is required, so it cannot be removed")
        if kind == 2:
            parent._dict[BaseTag(tag)] = DataElement(tag, dictionary_VR(tag), "")
            action = "emptied"
        else:
            del parent[tag]
            action = "removed"
        events.append(("repair", json.dumps({"attribute": attribute, "action": action,
                                             "why": "binary bytes in a text value (may hide other elements)"},
                                            sort_keys=True)))
    return events


def _restore_swallowed(ds: Dataset, data: bytes, swallowed: list[Swallowed]) -> list[tuple[str, str]]:
    """Put back the elements a stretched length hid inside a value, and cut the value to its own bytes.

    The elements are read from where the structural walk found them, so the
    file is de-identified as it was meant to be: a Patient's Name hidden in a
    kept description is replaced like any other, and its words are known to
    the text cleaner.  An element that would then appear twice refuses the file.
    """
    from pydicom.filereader import read_dataset

    events = []
    for found in sorted(swallowed, key=lambda s: s.value_start):
        tag = found.path[-1]
        parent, raw = _stored_at(ds, found.path)
        if parent is None or not isinstance(raw, RawDataElement):
            raise QuarantineError(f"{_path_text(found.path)}: its length covers the next elements, and they "
                                  "cannot be put back")
        own = data[found.value_start:found.value_start + found.keep]
        parent._dict[BaseTag(tag)] = raw._replace(value=own, length=len(own))
        hidden = read_dataset(BytesIO(data[found.start:found.end]), found.implicit, found.little,
                              parent_encoding=getattr(parent, "_character_set", None) or "iso8859")
        for key, elem in hidden._dict.items():
            if key in parent._dict:
                raise QuarantineError(f"{_path_text(found.path)}: its length covers an element that also "
                                      "appears after it")
            parent._dict[key] = elem
        events.append(("repair", json.dumps({
            "attribute": _path_text(found.path), "action": "split",
            "why": f"its length covered the next {len(hidden._dict)} elements; they were read as elements"},
            sort_keys=True)))
    return events


def _path_text(path: tuple[int, ...]) -> str:
    return Nonconformity(path, "").where()


def _stored_at(ds: Dataset, path: tuple[int, ...]):
    """``(dataset holding it, element as stored)`` at *path* (tags with item indices between them).

    The element is not converted (a raw element stays raw: a stretched value
    may not convert at all); ``(None, None)`` when a sequence or item on the
    way is missing, and an absent element is None.
    """
    current = ds
    for position in range(0, len(path) - 1, 2):
        elem = current.get(path[position])
        items = elem.value if elem is not None and elem.VR == "SQ" else None
        if not items or path[position + 1] >= len(items):
            return None, None
        current = items[path[position + 1]]
    return current, current._dict.get(BaseTag(path[-1]))


def _clean_pixels(ds: Dataset, policy: Policy, reason: str | None,
                  pixels_before: dict[int, memoryview], known) -> PixelReport | None:
    """Run the Clean Pixel Data step when the policy asks for it on this object.

    Returns None when the step did not run (option off, or only flagged
    objects are scanned and this one is not flagged).  Pixel Data that the
    step changed becomes the value the written file is checked against.
    """
    if not policy.cleans_pixels:
        return None
    if policy.pixels.scan == "flagged" and not reason:
        return None
    # The identifiers are collected only if text is found: most frames hold none.
    report = clean_pixels(ds, policy.pixels, known=known, burned_in_reason=reason)
    if report.pixels_changed and PIXEL_DATA in pixels_before:
        pixels_before[PIXEL_DATA] = memoryview(_encoded_pixel_value(ds))
    return report


def _encoded_pixel_value(ds: Dataset) -> bytes:
    """Pixel Data's value as the writer will encode it (what the integrity walk locates)."""
    element = ds["PixelData"]
    value = bytes(element.value)
    if element.is_undefined_length:
        return value + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # Sequence Delimitation Item
    return value + b"\0" if len(value) % 2 else value


def _verify_clean(ds: Dataset, policy: Policy, words: set[str], pixel_report: PixelReport | None = None,
                  pixels_before: dict[int, memoryview] | None = None,
                  events: list[tuple[str, str]] | None = None) -> None:
    """The --verify gate: rescan the cleaned object, OCR included.

    A header attribute found holding PHI is repaired (medveil.engine.repair) and
    recorded in *events*; pixel text still read as PHI is masked (when the step
    that cleans pixels ran); then the object is scanned again.  It is refused only
    for what no repair fixes.  Values the policy keeps on purpose are no finding.
    """
    engines = policy.pixels.engines if "PixelData" in ds or overlay_groups(ds) else None
    matcher = WordMatcher(words)
    kept = collect_known(ds, policy).kept
    lines: list = []
    findings = scan_dataset(ds, matcher, ocr_engines=engines, min_confidence=policy.pixels.min_confidence,
                            pixel_lines=lines, kept=kept)
    header = [f for f in findings if not f.location.startswith(_PIXEL_LOCATIONS)]
    if header:
        sop_class = sop_class_of(ds)
        for finding in header:
            target = resolve(ds, finding.location)
            repaired = target and repair_element(*target, finding.location, sop_class,
                                                 "verification found possible PHI")
            if repaired and events is not None:
                events.append(repaired.event())
    pixel_findings = [f for f in findings if f not in header]
    if pixel_findings and lines and pixel_report is not None and "PixelData" in ds:
        from medveil.pixels.clean import mask_found_lines

        mask_found_lines(ds, policy.pixels, lines, pixel_report)
        if pixels_before is not None and PIXEL_DATA in pixels_before:
            pixels_before[PIXEL_DATA] = memoryview(_encoded_pixel_value(ds))
        findings = scan_dataset(ds, matcher, ocr_engines=engines, min_confidence=policy.pixels.min_confidence,
                                kept=kept)
    elif header:
        findings = pixel_findings + scan_dataset(ds, matcher, kept=kept)
    if findings:
        where = ", ".join(str(f) for f in findings[:5])
        raise QuarantineError(f"verification found possible PHI after cleaning in: {where}")


_PIXEL_LOCATIONS = ("pixels frame", "overlay ")


def _pixel_events(report: PixelReport) -> list[tuple[str, str]]:
    """Audit events: one per masked box (geometry, engine, confidence; never text)."""
    events = [("pixel-scan", json.dumps({"policy": report.policy, "text_regions": report.text_regions,
                                         "masked": len(report.masked), "frames": report.frames_screened,
                                         "candidates": report.candidates, "crops_read": report.crops_read,
                                         "crops_reused": report.crops_reused, "fill": report.fill},
                                        sort_keys=True))]
    events.extend(("pixel-box", json.dumps(record, sort_keys=True)) for record in region_records(report))
    if report.mask is not None and not report.mask.transfer_syntax_kept:
        events.append(("pixel-reencoded", report.mask.note))
    if report.overlays_removed:
        events.append(("overlays-removed", str(report.overlays_removed)))
    if report.icon_removed:
        events.append(("icon-removed", "Icon Image Sequence"))
    return events


_SHARED_FROM = 1 << 20


def _share_unchanged_pixels(ds: Dataset, pixels_before: dict[int, memoryview]) -> None:
    """Let the writer take untouched pixel values from the input instead of the dataset's copy.

    pydicom copied each pixel value out of the input when it read the file.
    A value still in its raw, as-read form was never changed (changing one
    converts it first); when a view into the input holds the same bytes
    (compared, at memcmp speed), giving the writer that view frees the copy:
    one image less in memory while the output is written.  Below 1 MiB the
    copy costs less than the comparison would.
    """
    for tag, region in pixels_before.items():
        elem = ds._dict.get(BaseTag(tag))
        if (len(region) >= _SHARED_FROM and isinstance(elem, RawDataElement) and isinstance(elem.value, bytes)
                and _same_bytes(memoryview(elem.value), region)):
            # A view, not bytes: the writer takes any buffer, and the copy is freed.
            ds._dict[BaseTag(tag)] = elem._replace(value=region)  # type: ignore[arg-type]


def _resolve_implicit_vrs(ds: Dataset) -> None:
    """Give still-encoded elements a VR when the file says explicit VR but was implicit.

    Some writers declare an explicit VR transfer syntax and write implicit VR;
    pydicom reads such a file by its bytes but cannot write an element that
    never got a VR.  Converting the elements (VR from the data dictionary) lets
    the output be written correctly in the declared syntax.
    """
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or syntax.is_implicit_VR or not len(ds):
        return
    if ds.get_item(next(iter(ds.keys()))).VR is not None:
        return
    for _elem in ds.iterall():  # iterating converts each element
        pass


def _check_pixels_kept(out: bytes, ds: Dataset, pixels_before: dict[int, memoryview]) -> None:
    """Every encoded pixel byte of the input must be in the output, unchanged.

    Usually Pixel Data is the dataset's last element, and then its encoded value
    (only the value: explicit and implicit VR headers differ) must end the
    output.  Otherwise the element walk that vouched for the input locates the
    values in the output.
    """
    if not pixels_before:
        return
    last = max(ds.keys()) if len(ds) else None
    if len(pixels_before) == 1 and last in pixels_before and out.endswith(pixels_before[last]):
        return
    try:
        pixels_after = check_complete(out, ds)
    except QuarantineError:
        raise QuarantineError("output failed its structural check") from None
    if pixels_after.keys() != pixels_before.keys() or not all(
            _same_bytes(pixels_after[tag], pixels_before[tag]) for tag in pixels_before):
        raise QuarantineError("pixel data changed while writing")


def _same_bytes(a: memoryview, b: memoryview, chunk: int = 1 << 16) -> bool:
    """``a == b`` at memcmp speed: comparing two memoryviews directly goes element by
    element (about 30 times slower); bounded slices keep the copies small, and slices
    under the allocator's mmap threshold (128 kB) reuse memory instead of faulting in
    fresh pages for every slice (3x faster than 1 MB slices)."""
    return len(a) == len(b) and all(a[i:i + chunk].tobytes() == b[i:i + chunk].tobytes()
                                    for i in range(0, len(a), chunk))
