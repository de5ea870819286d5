"""Processing one file: read, de-identify, write, verify.  Runs in worker processes.

A file either comes out complete and verified, or not at all: every failure
becomes an outcome with status "quarantined" and a reason that names no
value.  The cleaned bytes go to a temporary file beside the output tree; the
coordinating process renames it into place, so a crash never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from medveil.engine import deidentify_dataset
from medveil.errors import QuarantineError, safe_reason
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.quiet import silenced
from medveil.runner.burned_in import burned_in_reason
from medveil.runner.integrity import check_complete

TMP_PREFIX = ".medveil-tmp-"
_PATH_SAFE = re.compile(r"[^0-9A-Za-z._-]")


@dataclass
class Job:
    """What a worker needs to know about one input."""

    index: int
    path: str
    input_ref: str
    #: The sequential Patient ID, when the policy numbers patients.
    patient_id: str | None = None


@dataclass
class Outcome:
    index: int
    input_ref: str
    status: str  # "written" (tmp file ready to move) or "quarantined"
    reason: str | None = None
    relpath: str | None = None
    tmp_path: str | None = None
    input_sha256: str | None = None
    output_sha256: str | None = None
    uid_pairs: dict[str, str] = field(default_factory=dict)
    patient_pairs: dict[str, str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    events: list[tuple[str, str]] = field(default_factory=list)


def _component(value: str) -> str:
    return _PATH_SAFE.sub("_", value) or "_"


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


def process(job: Job, policy: Policy, key: Key, tmp_dir: Path) -> Outcome:
    """De-identify one file into a temporary file in *tmp_dir*."""
    with silenced():
        return _process(job, policy, key, tmp_dir)


def _process(job: Job, policy: Policy, key: Key, tmp_dir: Path) -> Outcome:
    outcome = Outcome(index=job.index, input_ref=job.input_ref, status="quarantined")
    try:
        data = Path(job.path).read_bytes()
        outcome.input_sha256 = hashlib.sha256(data).hexdigest()
        if data[:4] == b"DICM":  # meta group without the 128-byte preamble
            data = bytes(128) + data
        try:
            ds = pydicom.dcmread(BytesIO(data), force=True)
        except Exception as exc:  # any parse failure means we cannot vouch for the file
            raise QuarantineError(f"cannot be parsed as DICOM ({type(exc).__name__})") from None
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise QuarantineError("not a composite instance (no SOP Class/Instance UID)")
        pixels_before = check_complete(data, ds)
        reason = burned_in_reason(ds)
        if reason and policy.burned_in == "quarantine":
            raise QuarantineError(f"may carry burned-in text ({reason}); pixel cleaning is not "
                                  "available, use --burned-in pass to release it anyway")
        _ensure_file_meta(ds)
        result = deidentify_dataset(ds, policy, key, assigned_patient_id=job.patient_id)
        if policy.visual_features:  # e.g. "cxr": a trained anonymiser changes the pixels (medveil.cxr.dicom)
            from medveil.cxr.dicom import pipeline_step

            pixels_before = pipeline_step(ds, policy, result.uid_pairs, result.events) or pixels_before
        relpath = output_relpath(ds)
        _resolve_implicit_vrs(ds)
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out = buffer.getvalue()
        _verify(out, ds, pixels_before)
        tmp_path = tmp_dir / f"{TMP_PREFIX}{job.index}-{os.getpid()}"
        tmp_path.write_bytes(out)
        outcome.status = "written"
        outcome.relpath = relpath
        outcome.tmp_path = str(tmp_path)
        outcome.output_sha256 = hashlib.sha256(out).hexdigest()
        outcome.uid_pairs = result.uid_pairs
        outcome.patient_pairs = result.patient_pairs
        outcome.counts = result.counts
        outcome.events = result.events
        if reason:
            outcome.events.append(("burned-in-passed", reason))
    except Exception as exc:  # fail closed: every error ends in quarantine, never a crash
        outcome.status = "quarantined"
        outcome.reason = safe_reason(exc)
    return outcome


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
    for elem in ds.iterall():  # iterating converts each element
        pass


def _verify(out: bytes, ds: Dataset, pixels_before: dict[int, bytes]) -> None:
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
    if pixels_after != pixels_before:
        raise QuarantineError("pixel data changed while writing")
