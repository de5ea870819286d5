"""The batch runner: a directory in, a release tree out, nothing half-done.

The coordinating process discovers inputs, hands them to workers (in this
process or a pool), and then, strictly in input order, moves each finished
temporary file to its pseudonymous name, merges mapping pairs and records
the outcome in the audit store.  Input order makes every decision that
involves two files (duplicate SOP Instance UIDs, pseudonym collisions)
independent of how many workers ran, so outputs are byte-identical whatever
``workers`` is, and re-running over the same input reproduces them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from medveil._version import __version__
from medveil.engine.deidentify import patient_key
from medveil.errors import MedveilError, safe_reason
from medveil.policy import Policy
from medveil.pseudonym import Key, derive
from medveil.quiet import silenced
from medveil.review.keep import ReviewKeeper
from medveil.runner.discover import discover
from medveil.runner.process import TMP_PREFIX, Job, Outcome, process
from medveil.store.audit import AuditStore, FileRecord
from medveil.store.mappings import MappingCollisionError, MappingTable, write_mappings


@dataclass(frozen=True)
class RunConfig:
    input: Path
    output: Path
    policy: Policy
    key: Key
    workspace: Path
    mappings_dir: Path | None = None
    workers: int = 1
    record_originals: bool = False
    resume: bool = True


@dataclass
class RunSummary:
    run_id: str
    files_total: int = 0
    written: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    quarantine_dir: Path | None = None
    workspace: Path | None = None


def default_workspace(output: Path) -> Path:
    """Beside OUTPUT, never inside it: the workspace holds the audit store and quarantine."""
    output = output.resolve()
    return output.parent / f"{output.name}.medveil-workspace"


def input_ref(key: Key, root: Path, path: Path) -> str:
    """An opaque, keyed reference to an input path (paths often carry names and MRNs)."""
    try:
        rel = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        rel = str(path.resolve())
    return derive(key, "input-path", rel).hex()[:32]


def _check_layout(config: RunConfig) -> None:
    out = config.output.resolve()
    for name, path in (("workspace", config.workspace), ("mappings directory", config.mappings_dir)):
        if path is None:
            continue
        p = path.resolve()
        if p == out or out in p.parents:
            raise MedveilError(f"the {name} must not be inside the output directory: it holds "
                               "original identifiers or files that were not de-identified")
    src = config.input.resolve()
    if src == out or (src.is_dir() and src in out.parents):
        raise MedveilError("the output directory must not be the input or lie inside it")
    if out in src.parents:
        raise MedveilError("the input must not lie inside the output directory: originals would "
                           "sit in the release")
    if src.is_dir():
        for name, path in (("workspace", config.workspace), ("mappings directory", config.mappings_dir)):
            if path is not None and (path.resolve() == src or src in path.resolve().parents):
                raise MedveilError(f"the {name} must not be inside the input directory: later runs "
                                   "would read it as input")


def _instance(relpath: str) -> str:
    """The SOP Instance UID part of an output path (its file name)."""
    return Path(relpath).stem


_WORKER_STATE: dict = {}


def _init_worker(policy: Policy, key: Key, tmp_dir: str) -> None:
    _WORKER_STATE.update(policy=policy, key=key, tmp_dir=Path(tmp_dir))


def _work(job: Job) -> Outcome:
    return process(job, _WORKER_STATE["policy"], _WORKER_STATE["key"], _WORKER_STATE["tmp_dir"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Coordinator:
    def __init__(self, config: RunConfig, store: AuditStore, summary: RunSummary,
                 progress: Callable[[int], None] | None):
        self.config = config
        self.store = store
        self.summary = summary
        self.progress = progress or (lambda n: None)
        self.uids = MappingTable()
        self.patids = MappingTable("patid")
        #: new SOP Instance UID -> output hash, for this run: one instance, one file, even
        #: when two inputs with one UID land in different series or patients.
        self.claimed: dict[str, str] = {}
        self.quarantine = config.workspace / "quarantine"
        self.review = ReviewKeeper(config.workspace, config.output, summary.run_id)

    def quarantine_copy(self, path: Path, ref: str, reason: str) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            shutil.copyfile(path, self.quarantine / f"{ref}.dcm")
        except OSError:
            reason += " (the file could not be copied to quarantine)"
        (self.quarantine / f"{ref}.reason.txt").write_text(reason + "\n", encoding="utf-8")

    def record(self, ref: str, path: Path, status: str, reason: str | None = None, **extra) -> None:
        extra.setdefault("input_sha256", None)
        self.store.record_file(self.summary.run_id, input_ref=ref, status=status, reason=reason,
                               original_path=str(path) if self.config.record_originals else None,
                               **extra)
        if status == "quarantined":
            self.summary.quarantined += 1
            self.summary.reasons[reason or "unknown"] += 1
        elif status == "skipped":
            self.summary.skipped += 1
            self.summary.reasons[reason or "skipped"] += 1
        elif status == "written":
            self.summary.written += 1
        elif status == "unchanged":
            self.summary.unchanged += 1
        self.progress(1)

    def finish(self, outcome: Outcome, path: Path) -> None:
        """Move a worker's result into place, or quarantine it; strictly in input order.

        The rename is atomic, so no reader ever sees a half-written file under its
        final name.  Files are not flushed to disk one by one (that cost as much as
        de-identifying small files); a file torn by a power loss never matches the
        hash the audit store recorded for it, so the next run rewrites it.
        """
        if outcome.status != "written":
            self.quarantine_copy(path, outcome.input_ref, outcome.reason or "unknown")
            self.record(outcome.input_ref, path, "quarantined", outcome.reason,
                        input_sha256=outcome.input_sha256)
            return
        tmp = Path(outcome.tmp_path)
        try:
            claimed = self.claimed.get(_instance(outcome.relpath))
            if claimed is not None and claimed != outcome.output_sha256:
                raise MedveilError("another input of this run has the same SOP Instance UID")
            # Pairs go in before the move: if the move then fails (disk full), the mapping
            # lists a few identifiers of a file that was not written, never the reverse.
            self._merge_pairs(outcome)
            target = self.config.output / outcome.relpath
            if target.exists() and _sha256_file(target) == outcome.output_sha256:
                tmp.unlink()
                status = "unchanged"
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                status = "written"
            self.claimed[_instance(outcome.relpath)] = outcome.output_sha256
        except (MedveilError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            reason = safe_reason(exc) if isinstance(exc, MedveilError) else \
                f"the output could not be written ({type(exc).__name__})"
            self.quarantine_copy(path, outcome.input_ref, reason)
            self.record(outcome.input_ref, path, "quarantined", reason, input_sha256=outcome.input_sha256)
            return
        self.record_released(outcome.input_ref, path, status, outcome)

    def record_released(self, ref: str, path: Path, status: str, done) -> None:
        """Store what a released file's processing found: counts, events, fingerprints, its row.

        *done* is an :class:`Outcome` or the core's ``AuditRecord`` (the Dask runner's):
        both carry counts, events, fingerprints, hashes and the output's relative path.
        """
        self.summary.actions.update(done.counts)
        for stale in (f"{ref}.dcm", f"{ref}.reason.txt"):
            (self.quarantine / stale).unlink(missing_ok=True)  # quarantined by an earlier run
        with self.store.batch():
            if done.counts:
                self.store.add_action_counts(self.summary.run_id, dict(done.counts))
            for category, detail in done.events:
                self.summary.events[category] += 1
                self.store.add_event(self.summary.run_id, ref, category, detail)
            if done.fingerprints:
                self.store.add_fingerprints(self.config.key.fingerprint(), done.fingerprints)
            self.record(ref, path, status, None, input_sha256=done.input_sha256,
                        output_relpath=done.relpath, output_sha256=done.output_sha256)
        self.review.keep(ref, done)

    def _merge_pairs(self, outcome: Outcome) -> None:
        # All or nothing across both tables, so a refused file leaves no pairs behind:
        # the (small) patient table is tried on a copy, the UID table updates atomically.
        try:
            patids = self.patids.copy()
            patids.update(outcome.patient_pairs)
            self.uids.update(outcome.uid_pairs)
        except MappingCollisionError:
            raise MedveilError("pseudonym collision with another input; use more digits") from None
        self.patids = patids


def run(config: RunConfig, *, progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None) -> RunSummary:
    """De-identify everything under ``config.input`` into ``config.output``."""
    _check_layout(config)
    config.output.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(config.output)
    config.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_id = uuid.uuid4().hex
    summary = RunSummary(run_id=run_id, quarantine_dir=config.workspace / "quarantine",
                         workspace=config.workspace)
    with silenced():
        found = list(discover(config.input))
    summary.files_total = len(found)
    if on_total:
        on_total(len(found))
    options = {"options": sorted(o.value for o in config.policy.options), "workers": config.workers,
               "mappings": config.mappings_dir is not None}
    with AuditStore.open(config.workspace / "audit.sqlite", record_originals=config.record_originals) as store:
        store.start_run(run_id, tool_version=__version__, table_edition=config.policy.table.edition,
                        profile=config.policy.name, options=options,
                        key_fingerprint=config.key.fingerprint(),
                        input_ref=input_ref(config.key, config.input, config.input))
        coordinator = _Coordinator(config, store, summary, progress)
        jobs: list[tuple[Job, Path]] = []
        for index, item in enumerate(found):
            ref = input_ref(config.key, config.input, item.path)
            if item.kind == "dicom":
                done = _already_done(config, store, ref, item.path)
                if done is not None:
                    coordinator.claimed[_instance(done.output_relpath)] = done.output_sha256
                    coordinator.record(ref, item.path, "unchanged", None, input_sha256=done.input_sha256,
                                       output_relpath=done.output_relpath, output_sha256=done.output_sha256)
                    continue
                patient_id = _sequential_patient_id(config, store, item.path)
                jobs.append((Job(index=index, path=str(item.path), input_ref=ref, patient_id=patient_id),
                             item.path))
            elif item.kind == "dicomdir":
                coordinator.record(ref, item.path, "skipped", "DICOMDIR (an index; never copied)")
            else:
                reason = f"{item.kind}: {item.reason or 'not a DICOM file'}"
                coordinator.quarantine_copy(item.path, ref, reason)
                coordinator.record(ref, item.path, "quarantined", reason)
        for outcome, path in _execute(config, jobs):
            coordinator.finish(outcome, path)
        clean_stale_temporaries(config.output)  # none should be left; never ship one
        if config.mappings_dir is not None:
            write_mappings(config.mappings_dir, coordinator.uids.items(), coordinator.patids.items())
        store.finish_run(run_id, files_total=summary.files_total,
                         files_written=summary.written + summary.unchanged,
                         files_quarantined=summary.quarantined, files_skipped=summary.skipped)
    return summary


def _already_done(config: RunConfig, store: AuditStore, ref: str, path: Path) -> FileRecord | None:
    """The earlier record when a run already wrote this exact input and its output is intact.

    Mapping pairs are not kept in the workspace (they are original
    identifiers), so a file is only skipped when no mapping files are asked
    for, or when they already exist where the user points (earlier runs
    merged their pairs into them).
    """
    if not config.resume:
        return None
    if config.mappings_dir is not None and not all(
            (config.mappings_dir / name).exists() for name in ("uid_mapping.csv", "patid_mapping.csv")):
        return None
    last = store.last_result(ref)
    if last is None or last.status not in ("written", "unchanged") or not last.output_relpath:
        return None
    target = config.output / last.output_relpath
    if not target.exists() or last.input_sha256 != _sha256_file(path):
        return None
    return last if _sha256_file(target) == last.output_sha256 else None


def _sequential_patient_id(config: RunConfig, store: AuditStore, path: Path | BinaryIO) -> str | None:
    """Number the file's patient in input order, when the policy asks for sequential IDs.

    *path* is a local path or an open binary file (the Dask runner's remote inputs).

    Only the patient attributes are read here; the store keeps a keyed hash of
    the patient, never the original, with its number.
    """
    if not config.policy.sequential_patient_ids:
        return None
    try:
        with silenced():
            header = pydicom.dcmread(path, force=True, stop_before_pixels=True,
                                     specific_tags=["PatientID", "PatientName", "PatientBirthDate",
                                                    "StudyInstanceUID"])
    except Exception:
        return None  # the worker will fail to read it too, and quarantine it
    ref = derive(config.key, "sequence", patient_key(header)).hex()
    return config.policy.patient_id_format.number(store.sequence_number("patient-id", ref))


def _execute(config: RunConfig, jobs: list[tuple[Job, Path]]) -> Iterator[tuple[Outcome, Path]]:
    tmp_dir = config.output
    if config.workers <= 1 or len(jobs) <= 1:
        for job, path in jobs:
            yield process(job, config.policy, config.key, tmp_dir), path
        return
    with ProcessPoolExecutor(max_workers=config.workers, initializer=_init_worker,
                             initargs=(config.policy, config.key, str(tmp_dir))) as pool:
        chunk = max(1, min(16, len(jobs) // (config.workers * 4) or 1))
        outcomes: Iterable[Outcome] = pool.map(_work, [job for job, _ in jobs], chunksize=chunk)
        for outcome, (_, path) in zip(outcomes, jobs, strict=True):
            yield outcome, path


def clean_stale_temporaries(output: Path) -> int:
    """Remove temporary files left by a run that was killed; returns how many."""
    count = 0
    if output.is_dir():
        for tmp in output.glob(f"{TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count


def dump_summary(summary: RunSummary) -> str:
    return json.dumps({"run_id": summary.run_id, "files_total": summary.files_total,
                       "written": summary.written, "unchanged": summary.unchanged,
                       "quarantined": summary.quarantined, "skipped": summary.skipped,
                       "reasons": dict(summary.reasons), "actions": dict(summary.actions)}, indent=2)
