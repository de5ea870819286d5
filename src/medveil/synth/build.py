"""Putting a synthetic test set together: input tree, answer key, manifest.

The output folder holds what a challenge organiser would hand out and keep:

``input/``         the synthetic export, named the way real exports are named,
                   by patient, study and series (names, MRNs and dates
                   included: a de-identifier must not copy them into its
                   output paths)
``answer_key.db``  the MIDI-B answer key (:mod:`medveil.evaluate.answer_key`)
``manifest.json``  seed, version, where each file came from, what was left
                   out and why, and the counts of checks by action and family

Everything is a function of the seed and the corpus: files are visited in
sorted order, every random choice is derived from the seed and a label, and
nothing records the time or this machine's paths, so two runs write the
same bytes.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from medveil._version import __version__
from medveil.errors import MedveilError
from medveil.evaluate.answer_key import ACTIONS, AnswerRow, Check, write_answer_key
from medveil.evaluate.flatten import pixel_digest
from medveil.quiet import silenced
from medveil.synth import corpus as corpora
from medveil.synth.burn import Box, burn, sidecar_boxes, unburnable_reason
from medveil.synth.checks import build_checks
from medveil.synth.corpus import DEFAULT_MAX_FILE_BYTES, Skipped, Source
from medveil.synth.inject import inject
from medveil.synth.plan import (
    GENERATED_SR,
    Plan,
    SeriesPlan,
    StudyPlan,
    make_plan,
    select,
)
from medveil.synth.private import inject_private
from medveil.synth.seeds import new_uid, rng
from medveil.synth.sr import build_report
from medveil.synth.target import InjectionTarget

ANSWER_KEY = "answer_key.db"
MANIFEST = "manifest.json"
INPUT = "input"
#: What :func:`synthesize` reports per source file.
WRITTEN, LEFT_OUT = "written", "left out"
#: Share of burnable images that get text drawn into them, and the least number that do
#: (when that many can), so that even a small set has pixels_hidden checks.
BURN_RATE = 0.3
MIN_BURNED = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


class SynthError(MedveilError):
    """The test set cannot be built (the message names no PHI from the corpus)."""


@dataclass
class SynthSummary:
    """What was written, in numbers."""

    out_dir: Path
    seed: int
    files: int = 0
    patients: int = 0
    studies: int = 0
    series: int = 0
    reports: int = 0
    burned_in: int = 0
    sources_found: int = 0
    skipped: int = 0
    checks: Counter = field(default_factory=Counter)
    families: Counter = field(default_factory=Counter)

    @property
    def answer_key(self) -> Path:
        return self.out_dir / ANSWER_KEY

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST


def synthesize(corpus_dirs: Mapping[str, Path] | Iterable[Path | str] | None, out_dir: Path | str,
               seed: int, patients: int | None = None, *, max_files: int | None = None,
               max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
               progress: Callable[[str], None] | None = None,
               on_total: Callable[[int], None] | None = None) -> SynthSummary:
    """Build a MIDI-B-style test set from ``corpus_dirs`` (None: the default corpora) in ``out_dir``.

    *on_total* learns how many source files the plan uses, once the corpus is
    scanned; *progress* is then called once per source file, with ``written``
    or ``left out``.
    """
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise SynthError(f"output folder is not empty: {target}")
    named = corpora.default_corpora() if corpus_dirs is None else corpora.name_corpora(corpus_dirs)
    if not named:
        raise SynthError("no corpus found: install pydicom-data or deid-data, or name a folder")
    with silenced():
        try:
            sources, skipped = corpora.scan(named, max_file_bytes=max_file_bytes)
        except corpora.CorpusError as exc:
            raise SynthError(str(exc)) from None
        if not sources:
            raise SynthError(f"no usable DICOM files in the corpus ({len(skipped)} files left out)")
        chosen = select(sources, max_files)
        plan = make_plan(chosen, seed, patients)
        target.mkdir(parents=True, exist_ok=True)
        writer = _Writer(target, seed, plan, skipped, burn_set(chosen, seed))
        if on_total is not None:
            on_total(sum(len(series.sources) for series in plan.series() if not series.generated))
        writer.write_all(progress or (lambda outcome: None))
    summary = writer.summary(len(sources))
    write_answer_key(target / ANSWER_KEY, writer.rows)
    manifest = writer.manifest(named, sources, chosen, patients, max_files, max_file_bytes, summary)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
    return summary


def burn_set(sources: Iterable[Source], seed: int) -> set[str]:
    """Origins of the sources that get burned-in text: a share of the burnable ones, at least a few."""
    candidates = sorted((rng(seed, "burn", source.origin).random(), source.origin)
                        for source in sources if source.burnable)
    chosen = {origin for draw, origin in candidates if draw < BURN_RATE}
    for _, origin in candidates[:MIN_BURNED]:
        chosen.add(origin)
    return chosen


def safe_name(*parts: object, limit: int = 64) -> str:
    """A folder name from ``parts``: letters, digits, dots and dashes, joined by underscores."""
    text = "_".join(_UNSAFE.sub("_", str(part)).strip("_.") for part in parts if str(part).strip())
    return text[:limit].rstrip("_.") or "UNNAMED"


class _Writer:
    """Writes instances in plan order and collects rows, file records and counts."""

    def __init__(self, root: Path, seed: int, plan: Plan, skipped: list[Skipped], to_burn: set[str]):
        self.root = root
        self.to_burn = to_burn
        self.seed = seed
        self.plan = plan
        self.skipped = list(skipped)
        self.rows: list[AnswerRow] = []
        self.files: list[dict[str, object]] = []
        self.patients: list[dict[str, object]] = []
        self.uid_map = plan.uid_map()
        self.burned = 0
        self.reports = 0

    def write_all(self, progress: Callable[[str], None]) -> None:
        for patient_plan in self.plan.patients:
            patient = patient_plan.patient
            folder = safe_name(patient.name.family.upper(), patient.name.given.upper(), patient.patient_id)
            studies = []
            for study in patient_plan.studies:
                study_folder = safe_name(f"{study.date:%Y%m%d}", study.accession)
                written = self._study(study, Path(INPUT) / folder / study_folder, progress)
                studies.append({"folder": study_folder, "study_instance_uid": study.uid, "accession": study.accession,
                                "date": f"{study.date:%Y%m%d}", "instances": written})
            self.patients.append({"folder": folder, "patient_id": patient.patient_id, "name": patient.pn,
                                  "name_form": patient.name_form, "studies": studies})

    def _study(self, study: StudyPlan, folder: Path, progress: Callable[[str], None]) -> int:
        evidence: list[tuple[str, str, str]] = []
        written = 0
        ordered = [s for s in study.series if not s.generated] + [s for s in study.series if s.generated]
        for series in ordered:
            series_folder: Path | None = None
            if series.generated == GENERATED_SR:
                ctx = InjectionTarget(self.seed, study, series, 0, self.uid_map)
                ds, expects = build_report(ctx, evidence)
                series_folder = folder / safe_name(series.number, ds.get("SeriesDescription", "REPORT"))
                self._write(ds, expects, series_folder / "1.dcm", GENERATED_SR, [], pixels_unchanged=False)
                self.reports += 1
                written += 1
                continue
            number = 0
            for index, source in enumerate(series.sources):
                result = self._instance(study, series, index, source)
                if result is None:
                    progress(LEFT_OUT)
                    continue
                ds, expects, boxes, unchanged = result
                if series_folder is None:
                    series_folder = folder / safe_name(series.number, ds.get("SeriesDescription", ""))
                relative = series_folder / f"{number + 1}.dcm"
                try:
                    self._write(ds, expects, relative, source.origin, boxes, unchanged)
                except Exception as exc:  # noqa: BLE001  (a source that cannot be written is left out)
                    (self.root / relative).unlink(missing_ok=True)
                    self.skipped.append(Skipped(source.origin, f"failed while writing ({type(exc).__name__})"))
                    progress(LEFT_OUT)
                    continue
                number += 1
                written += 1
                if "PixelData" in ds and len(evidence) < 50:
                    evidence.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID), series.uid))
                progress(WRITTEN)
        return written

    def _instance(self, study: StudyPlan, series: SeriesPlan, index: int, source: Source):
        try:
            ds = corpora.read_source(source.path)
            ctx = InjectionTarget(self.seed, study, series, index, self.uid_map)
            expects = inject(ds, ctx)
            if source.variant:  # the same instance in another encoding: an instance of its own
                ds.SOPInstanceUID = new_uid(self.seed, "variant", source.origin)
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            syntax = pydicom.uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
            if syntax.is_transfer_syntax and not syntax.is_implicit_VR:
                when = _datetime(study)
                expects += inject_private(ds, rng(self.seed, "private", series.uid, index), study.patient,
                                          study.site, when)
            boxes = sidecar_boxes(source.path) if source.pixel_text else []
            drawn = False
            if source.origin in self.to_burn and unburnable_reason(ds) is None:
                boxes = boxes + burn(ds, _burn_lines(study))
                drawn = True
                self.burned += 1
            unchanged = not drawn and source.pixel_text is None
            return ds, expects, boxes, unchanged
        except Exception as exc:  # noqa: BLE001  (a bad source must never stop the set)
            self.skipped.append(Skipped(source.origin, f"failed during synthesis ({type(exc).__name__})"))
            return None

    def _write(self, ds: Dataset, expects, relative: Path, origin: str, boxes: list[Box],
               pixels_unchanged: bool) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        written = pydicom.dcmread(path)
        checks = build_checks(written, expects, seed=self.seed, boxes=boxes, pixels_unchanged=pixels_unchanged)
        self.rows.append(AnswerRow(
            index=len(self.rows),
            sop_instance_uid=str(written.SOPInstanceUID),
            series_instance_uid=str(written.SeriesInstanceUID),
            study_instance_uid=str(written.StudyInstanceUID),
            patient_id=str(written.PatientID),
            sop_class_uid=str(written.SOPClassUID),
            modality=str(written.get("Modality", "") or ""),
            digest=pixel_digest(written) or "",
            checks=checks,
        ))
        self.files.append({"path": relative.as_posix(), "origin": origin,
                           "sop_instance_uid": str(written.SOPInstanceUID),
                           "burned_in_boxes": len(boxes), "checks": len(checks)})

    def summary(self, sources_found: int) -> SynthSummary:
        checks: Counter = Counter()
        families: Counter = Counter()
        for row in self.rows:
            for check in row.checks:
                checks[check.action] += 1
                families[_family(check)] += 1
        return SynthSummary(
            out_dir=self.root, seed=self.seed, files=len(self.rows), patients=len(self.plan.patients),
            studies=len(self.plan.studies()), series=sum(1 for s in self.plan.series() if s.sources or s.generated),
            reports=self.reports, burned_in=self.burned, sources_found=sources_found,
            skipped=len(self.skipped), checks=checks, families=families)

    def manifest(self, named: Mapping[str, Path], sources: list[Source], chosen: list[Source],
                 patients: int | None, max_files: int | None, max_file_bytes: int,
                 summary: SynthSummary) -> dict[str, object]:
        used = Counter(str(f["origin"]).split(":", 1)[0] for f in self.files)
        usable = Counter(source.corpus for source in sources)
        selected = Counter(source.corpus for source in chosen)
        left_out = Counter(item.origin.split(":", 1)[0] for item in self.skipped)
        categories: Counter = Counter()
        for row in self.rows:
            for check in row.checks:  # synth's checks carry their category as a tuple of names
                parts = check.category if isinstance(check.category, (list, tuple)) else ()
                categories["/".join(str(part) for part in parts)] += 1
        return {
            "generator": "medveil synth",
            "medveil_version": __version__,
            "seed": self.seed,
            "settings": {"patients": patients, "max_files": max_files, "max_file_bytes": max_file_bytes},
            "corpora": {name: {"usable": usable[name], "selected": selected[name], "written": used[name],
                               "skipped": left_out[name]} for name in sorted(named)},
            "counts": {"files": summary.files, "patients": summary.patients, "studies": summary.studies,
                       "series": summary.series, "generated_reports": summary.reports,
                       "burned_in_images": summary.burned_in, "rows": len(self.rows),
                       "checks": sum(summary.checks.values())},
            "checks_by_action": {action: summary.checks.get(action, 0) for action in ACTIONS},
            "checks_by_family": dict(sorted(summary.families.items())),
            "checks_by_category": dict(sorted(categories.items())),
            "patients": self.patients,
            "files": self.files,
            "skipped": [{"origin": item.origin, "reason": item.reason} for item in self.skipped],
            "note": "input/, answer_key.db and this manifest hold synthetic PHI by design: they are test data.",
        }


def _family(check: Check) -> str:
    category = check.category
    if isinstance(category, (list, tuple)) and category:
        return str(category[0])
    return "unknown"


def _datetime(study: StudyPlan) -> datetime.datetime:
    return datetime.datetime(study.date.year, study.date.month, study.date.day,
                             int(study.time[:2]), int(study.time[2:4]), int(study.time[4:6]))


def _burn_lines(study: StudyPlan) -> list[tuple[str, str]]:
    patient = study.patient
    return [("", f"{patient.name.family.upper()}, {patient.name.given.upper()}"),
            ("ID: ", patient.patient_id),
            ("DOB: ", f"{patient.birth_date:%m/%d/%Y}")]
