"""Scoring a de-identified output tree against a MIDI-B answer key.

The steps follow the MIDI-B validation script: answer rows name original
instances; the tool's UID mapping turns each original SOP Instance UID into
the new one; the output file carrying that UID is flattened once and every
check of the row runs on it.  Rows whose instance has no output file are
"missing" (their keep checks fail, their removal checks pass); a file that
cannot be read makes its row's checks errored.  Nothing here raises on a bad
output file, and nothing here logs a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medveil.evaluate.answer_key import AnswerRow, read_answer_key
from medveil.evaluate.checks import ERRORED, Outcome, Target, missing_outcome, run_check
from medveil.evaluate.files import iter_files, read_dataset
from medveil.evaluate.flatten import flatten, pixel_digest
from medveil.evaluate.mappings import Mappings, infer_mappings, load_mappings
from medveil.evaluate.score import CheckResult, Scores, instance_scores, series_scores
from medveil.pixels.ocr import OcrUnavailable, available_engines, prepare_for_ocr
from medveil.quiet import silenced
from medveil.records import Status


@dataclass(frozen=True)
class ValidationSettings:
    ocr_engine: str = "auto"


@dataclass
class ValidationResult:
    output_dir: Path
    results: list[CheckResult]
    rows: int
    matched_rows: int
    missing_rows: int
    unreadable_rows: int
    output_files: int
    unreadable_outputs: int
    unmatched_outputs: int
    duplicate_outputs: int
    mapping_source: str
    mapping_conflicts: int
    ocr_engine: str | None
    ocr_note: str | None
    instance: Scores = field(default_factory=Scores)
    series: Scores = field(default_factory=Scores)


def validate_outputs(output_dir: Path, answer_key: Path, *, mappings_dir: Path | None = None,
                     original_dir: Path | None = None,
                     settings: ValidationSettings = ValidationSettings(),
                     progress: Callable[[str], None] | None = None,
                     on_total: Callable[[int], None] | None = None) -> ValidationResult:
    """Run every check of ``answer_key`` on the files under ``output_dir``.

    pydicom's warnings quote the values they complain about, so they are
    silenced for the whole run.  *on_total* is told how many answer-key
    instances there are and *progress* is called once per instance scored
    (with "written", or "quarantined" when its output is missing).
    """
    with silenced():
        return _validate(output_dir, answer_key, mappings_dir, original_dir, settings,
                         progress or (lambda status: None), on_total)


def _validate(output_dir: Path, answer_key: Path, mappings_dir: Path | None, original_dir: Path | None,
              settings: ValidationSettings, progress: Callable[[str], None],
              on_total: Callable[[int], None] | None) -> ValidationResult:
    rows = read_answer_key(answer_key)
    if on_total:
        on_total(len(rows))
    mappings = load_mappings(mappings_dir)
    if mappings is None and original_dir is not None:
        mappings = infer_mappings(original_dir, output_dir)
    if mappings is None:
        mappings = Mappings(source="none")

    index, unreadable, duplicates, total = _index_outputs(output_dir)
    unreadable_by_original = _unreadable_originals(mappings, set(unreadable))

    engines, ocr_note = _engines(settings.ocr_engine, rows)
    results: list[CheckResult] = []
    claimed: set[Path] = set()
    matched = missing = unreadable_rows = 0
    for row in rows:
        paths = _paths_for(row, mappings, index, unreadable_by_original)
        progress(Status.WRITTEN if paths else Status.QUARANTINED)
        if not paths:
            missing += 1
            results.extend(_result(row, None, check, missing_outcome(check)) for check in row.checks)
            continue
        for path in paths:
            claimed.add(path)
            relative = str(path.relative_to(output_dir))
            target = _target(path, mappings, engines)
            if target is None:
                unreadable_rows += 1
                outcome = Outcome(ERRORED, 0.0, None, "output file cannot be read as DICOM")
                results.extend(_result(row, relative, check, outcome) for check in row.checks)
                continue
            matched += 1
            results.extend(_result(row, relative, check, run_check(check, target)) for check in row.checks)

    return ValidationResult(
        output_dir=output_dir, results=results, rows=len(rows), matched_rows=matched,
        missing_rows=missing, unreadable_rows=unreadable_rows, output_files=total,
        unreadable_outputs=len(unreadable), duplicate_outputs=duplicates,
        unmatched_outputs=len(set(index.instances.values()) - claimed),
        mapping_source=mappings.source, mapping_conflicts=mappings.conflicts,
        ocr_engine="+".join(e.name for e in engines) if engines else None, ocr_note=ocr_note,
        instance=instance_scores(results), series=series_scores(results),
    )


def _result(row: AnswerRow, file: str | None, check, outcome: Outcome) -> CheckResult:
    return CheckResult(row.index, row.sop_instance_uid, row.series_instance_uid, file, check, outcome)


@dataclass
class _Index:
    """Output files by new SOP Instance, Series and Study Instance UID."""

    instances: dict[str, Path] = field(default_factory=dict)
    series: dict[str, list[Path]] = field(default_factory=dict)
    studies: dict[str, list[Path]] = field(default_factory=dict)


def _index_outputs(output_dir: Path) -> tuple[_Index, list[Path], int, int]:
    """The index of readable outputs, the unreadable files, duplicates, all files."""
    index = _Index()
    unreadable: list[Path] = []
    duplicates = total = 0
    for path in iter_files(output_dir):
        total += 1
        ds = read_dataset(path, stop_before_pixels=True)
        uid = _uid(ds, "SOPInstanceUID") if ds is not None else None
        if uid is None:
            unreadable.append(path)
            continue
        if uid in index.instances:
            duplicates += 1
            continue
        index.instances[uid] = path
        for keyword, table in (("SeriesInstanceUID", index.series), ("StudyInstanceUID", index.studies)):
            value = _uid(ds, keyword)
            if value:
                table.setdefault(value, []).append(path)
    return index, unreadable, duplicates, total


def _paths_for(row: AnswerRow, mappings: Mappings, index: _Index,
               unreadable_by_original: dict[str, Path]) -> list[Path]:
    """The output files an answer row's checks run on (none: the row is missing)."""
    scope = row.scope.strip().lower()
    if scope == "series" and row.series_instance_uid:
        return index.series.get(mappings.uids.get(row.series_instance_uid, ""), [])
    if scope in ("study", "patient") and row.study_instance_uid:
        return index.studies.get(mappings.uids.get(row.study_instance_uid, ""), [])
    new_uid = mappings.uids.get(row.sop_instance_uid)
    path = index.instances.get(new_uid) if new_uid else None
    if path is None:
        path = unreadable_by_original.get(row.sop_instance_uid)
    return [path] if path is not None else []


def _uid(ds, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    return str(value).strip() if value else None


def _unreadable_originals(mappings: Mappings, unreadable: set[Path]) -> dict[str, Path]:
    """Original SOP UID -> unreadable output file, where pairing says which it was."""
    found: dict[str, Path] = {}
    for out_path, in_path in mappings.pairs.items():
        if out_path in unreadable:
            ds = read_dataset(in_path, stop_before_pixels=True)
            uid = _uid(ds, "SOPInstanceUID") if ds is not None else None
            if uid:
                found[uid] = out_path
    return found


def _engines(name: str, rows: list[AnswerRow]):
    if not any(check.action == "pixels_hidden" for row in rows for check in row.checks):
        return None, None
    try:
        return available_engines(name), None
    except OcrUnavailable as exc:
        return None, str(exc)


def _target(path: Path, mappings: Mappings, engines) -> Target | None:
    ds = read_dataset(path)
    if ds is None:
        return None
    try:
        values = flatten(ds)
        digest = pixel_digest(ds)
    except Exception:
        return None
    reader = _BoxReader(ds, engines) if engines else None
    return Target(values=values, digest=digest, uid_map=mappings.uids, patid_map=mappings.patids,
                  ocr_box=reader)


class _BoxReader:
    """Reads the text inside a box of frame 0 with every engine, decoding the pixels once."""

    def __init__(self, ds, engines) -> None:
        self._ds = ds
        self._engines = engines
        self._frame: np.ndarray | None = None

    def __call__(self, box: tuple[int, int, int, int]) -> str:
        if self._frame is None:
            pixels = self._ds.pixel_array
            frames = int(getattr(self._ds, "NumberOfFrames", 1) or 1)
            self._frame = pixels[0] if frames > 1 else pixels
        x1, y1, x2, y2 = box
        height, width = self._frame.shape[:2]
        x1, x2 = max(0, min(x1, x2)), min(width, max(x1, x2))
        y1, y2 = max(0, min(y1, y2)), min(height, max(y1, y2))
        if x2 <= x1 or y2 <= y1:
            return ""
        crop = self._frame[y1:y2, x1:x2]
        region = prepare_for_ocr(crop)
        # A box no taller than two lines of its own width's text is read as one line.
        line = (y2 - y1) <= max(24, (x2 - x1) // 4)
        return " ".join(word.text for engine in self._engines for word in engine.read(region, line=line))
