"""The Dask runner: the same core on a local cluster or a remote one, with identical results.

Keyed pseudonymisation needs no shared state, so any worker can de-identify
any file.  The coordinating process (this one) builds a manifest of inputs,
splits it into batches of hundreds to thousands of files, and submits one
task per batch.  A task streams its files one at a time: read, de-identify
with :func:`medveil.pipeline.deidentify_bytes`, write the output under its
pseudonymous name; it returns only small audit records, never file contents.
Because an output's name is a pseudonym of its content's identity, a retried
batch (Dask retries a task whose worker died) overwrites the same objects and
never leaves duplicates.

The decisions that involve two files are the coordinator's, made strictly in
input order as in the local runner: numbering patients (before submitting),
duplicate SOP Instance UIDs and pseudonym collisions (after).  Batches that
finish early wait until every earlier batch is in.  When a later file turns
out to clash with an earlier one, the later one is quarantined and the
earlier one's output is written again (the core is deterministic), since the
later one may already have overwritten it.  So the release tree and the
mapping files are byte-identical to the local runner's for the same input
and key.

The workspace (audit store, quarantine) and the mapping files stay on the
coordinator's local disk: they hold original identifiers and never travel.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from medveil.errors import MedveilError, safe_reason
from medveil.policy import Policy
from medveil.pseudonym import Key, derive
from medveil.quiet import silenced
from medveil.runner.book import RunBook, RunConfig, RunSummary, check_layout, input_ref, instance_of
from medveil.records import FileRecord, Status
from medveil.pipeline import deidentify_bytes
from medveil.runner.discover import DICOM, DICOMDIR, SKIPPED, UNREADABLE, classify_bytes, discover
from medveil.runner.limits import default_memory_budget, file_limit
from medveil.runner.locations import Location, LocationError
from medveil.runner.process import Job

#: Files per task: large enough that scheduling costs nothing next to the work, small enough
#: that every worker gets several tasks and a retry repeats little.
MAX_BATCH = 1000
DICOMDIR_REASON = "DICOMDIR (an index; never copied)"


def run_batch(jobs: list[Job], source: Location, target: Location, policy: Policy, key: Key,
              budget: int | None = None) -> list[FileRecord]:
    """One task: de-identify *jobs* in order, writing each output as soon as it is verified.

    Files are handled one at a time, so a worker holds one input and one
    output in memory, whatever the batch size.
    """
    return [_one(job, source, target, policy, key, budget) for job in jobs]


def _one(job: Job, source: Location, target: Location, policy: Policy, key: Key,
         budget: int | None) -> FileRecord:
    done = FileRecord(index=job.index, input_ref=job.input_ref)
    try:
        data = source.read(job.path, limit=file_limit(budget) if budget else None)
    except MedveilError as exc:  # too large, or not a regular file
        return done.refused(str(exc))
    except Exception as exc:  # unreadable input: quarantine with the error's type only
        return done.refused(f"unreadable: cannot be read ({type(exc).__name__})")
    if not source.local:  # local inputs were classified during discovery
        found = classify_bytes(PurePosixPath(job.path).name, data)
        if found.kind == DICOMDIR:
            done.status, done.reason = Status.SKIPPED, DICOMDIR_REASON
            return done
        if found.kind != DICOM:
            done.status = Status.SKIPPED
            done.reason = f"not DICOM: {found.reason or 'not a DICOM file'}"
            return done
    out, record = deidentify_bytes(data, policy, key, patient_id=job.patient_id, memory_budget=budget)
    del data
    record.index, record.input_ref = job.index, job.input_ref
    if record.status is not Status.WRITTEN:
        return record
    try:
        if target.sha256(target.join(record.relpath)) == record.output_sha256:
            record.status = Status.UNCHANGED
        else:
            target.write(record.relpath, out)
    except Exception as exc:  # disk full, network: the file is quarantined, the batch goes on
        record.refused(f"the output could not be written ({type(exc).__name__})")
    return record


class _DaskCoordinator:
    """The run's book, for outputs that workers already wrote in place."""

    def __init__(self, book: RunBook, source: Location, target: Location):
        self.book = book
        self.config = book.config
        self.source = source
        self.target = target
        #: new SOP Instance UID -> the job that claimed it and its output's path, to put that
        #: output back when a later file with the same UID overwrote it.
        self.owner: dict[str, tuple[Job, str]] = {}
        #: outputs present before the run: a worker's "unchanged" only counts for these, since
        #: another worker may have written an identical file first during this run.
        self.preexisting: set[str] = set()

    def refuse(self, job: Job, reason: str, input_sha256: str | None = None) -> None:
        if self.source.local:
            self.book.refuse(job.input_ref, job.path, reason, input_sha256=input_sha256,
                             copy_from=Path(job.path))
        else:
            self.book.refuse(job.input_ref, job.path, reason, input_sha256=input_sha256,
                             copier=lambda target: self._copy_remote(job.path, target))

    def _copy_remote(self, path: str, target: Path) -> tuple[bool, str | None]:
        import hashlib

        from medveil.store.private import open_private

        digest = hashlib.sha256()
        limit = self.config.quarantine_limit
        try:
            with self.source.open(path) as src, os.fdopen(open_private(target), "wb") as dst:
                copied = 0
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    copied += len(chunk)
                    if copied > limit:
                        break
                    dst.write(chunk)
            if copied > limit:
                target.unlink(missing_ok=True)
                return False, None
        except Exception:
            target.unlink(missing_ok=True)
            return False, None
        return True, digest.hexdigest()

    def finish_done(self, record: FileRecord, job: Job) -> None:
        book = self.book
        if record.status is Status.SKIPPED:
            book.skip(record.input_ref, job.path, record.reason or "skipped")
            return
        if record.status is Status.QUARANTINED:
            self.refuse(job, record.reason or "unknown", record.input_sha256)
            return
        instance = instance_of(record.relpath)
        claimed = book.claimed.get(instance)
        why = book.claim(record.relpath, record.output_sha256, record.uid_pairs, record.patient_pairs)
        if why is not None:
            self._withdraw(record.relpath, instance, record.output_sha256)
            self.refuse(job, why, record.input_sha256)
            return
        if claimed is not None:
            record.status = Status.UNCHANGED  # an earlier input of this run wrote the same bytes
        elif record.status is Status.UNCHANGED and record.relpath not in self.preexisting:
            record.status = Status.WRITTEN
        self.owner.setdefault(instance, (job, record.relpath))
        book.sync()
        book.released(record.input_ref, job.path, record.status, record)

    def _withdraw(self, relpath: str, instance: str, sha256: str) -> None:
        """Undo a refused file's write: restore the earlier owner's output, or remove it."""
        claimed = self.book.claimed.get(instance)
        owner, owner_relpath = self.owner.get(instance, (None, None))
        if claimed is None or owner_relpath != relpath:
            self.target.delete(relpath)  # no accepted file of this run lives under that name
            return
        if claimed == sha256:
            return  # the object holds exactly the earlier file's bytes
        out, record = (None, None) if owner is None else deidentify_bytes(
            self.source.read(owner.path), self.config.policy, self.config.key, patient_id=owner.patient_id)
        if record is None or record.status is not Status.WRITTEN or record.output_sha256 != claimed:
            raise MedveilError("an output could not be restored after a clash; rerun with --no-resume")
        self.target.write(record.relpath, out)


def run_dask(config: RunConfig, *, scheduler: str | None = None, batch_size: int | None = None,
             storage_options: dict[str, Any] | None = None,
             progress: Callable[[int], None] | None = None,
             on_total: Callable[[int], None] | None = None) -> RunSummary:
    """De-identify ``config.input`` into ``config.output`` (paths or fsspec URLs) on Dask.

    Without *scheduler* a local cluster of ``config.workers`` worker processes
    is started and stopped again; with one (``tcp://host:8786``) the run uses
    that cluster, whose workers must reach the input and output locations.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise MedveilError("the Dask engine needs dask[distributed]: pip install 'medveil[scale]'") from None
    source = Location(config.input, storage_options)
    target = Location(config.output, storage_options)
    if source.local and target.local:
        check_layout(config)
    budget = config.memory_budget or (default_memory_budget(config.workers) if not scheduler else None)
    book = RunBook(config, local_output=target.local, progress=progress).open()
    book.summary.memory_budget = budget
    with book.running():
        if target.local:
            target.clean_temporaries()
        manifest = _manifest(config, source)
        book.summary.files_total = len(manifest)
        if on_total:
            on_total(len(manifest))
        coordinator = _DaskCoordinator(book, source, target)
        coordinator.preexisting = target.existing()
        jobs = _jobs(book, coordinator, source, target, manifest)
        if jobs:
            if scheduler:
                cluster_cm = None
                client = Client(scheduler)
            else:
                cluster_cm = LocalCluster(n_workers=max(1, config.workers), threads_per_worker=1,
                                          processes=True, dashboard_address=None, silence_logs=40)
                client = Client(cluster_cm)
            try:
                workers = len(client.scheduler_info().get("workers", {})) or max(1, config.workers)
                size = batch_size or max(1, min(MAX_BATCH, math.ceil(len(jobs) / (4 * workers))))
                batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
                _submit_and_finish(client, as_completed, batches, source, target, config, coordinator,
                                   book.run_id, budget)
            finally:
                client.close()
                if cluster_cm is not None:
                    cluster_cm.close()
        if target.local:
            target.clean_temporaries()
    return book.summary


def _submit_and_finish(client, as_completed, batches: list[list[Job]], source: Location, target: Location,
                       config: RunConfig, coordinator: _DaskCoordinator, run_id: str,
                       budget: int | None) -> None:
    """Submit every batch; finish their files in input order as batches come back."""
    policy, key = client.scatter([config.policy, config.key], broadcast=True)
    futures = {}
    for number, batch in enumerate(batches):
        future = client.submit(run_batch, batch, source, target, policy, key, budget, retries=2, pure=False,
                               key=f"medveil-batch-{run_id}-{number}")
        futures[future] = number
    ready: dict[int, list[FileRecord]] = {}
    next_batch = 0
    for future in as_completed(futures):
        number = futures.pop(future)
        try:
            ready[number] = future.result()
        except Exception as exc:  # every retry failed: stop, a rerun resumes and overwrites
            for other in futures:
                other.cancel()
            raise MedveilError(f"a batch failed on every try ({type(exc).__name__}); "
                               "rerun to finish (outputs are overwritten identically)") from None
        future.release()
        while next_batch in ready:
            batch = batches[next_batch]
            for done, job in zip(ready.pop(next_batch), batch, strict=True):
                coordinator.finish_done(done, job)
            next_batch += 1


@dataclass(frozen=True)
class _Item:
    index: int
    path: str
    ref: str
    kind: str
    reason: str | None
    real: str | None = None  # what to read (a local link resolved at discovery)


def _manifest(config: RunConfig, source: Location) -> list[_Item]:
    """Every input, in a stable order, with an opaque keyed reference."""
    if source.local:
        root = Path(source.root)
        with silenced():
            found = list(discover(root, follow_symlinks=config.follow_symlinks, protected=config.protected))
        return [_Item(index, str(item.path), input_ref(config.key, root, item.path), item.kind, item.reason,
                      str(item.real) if item.real else None)
                for index, item in enumerate(found)]
    try:
        names = list(source.walk())
    except LocationError:
        raise
    except Exception as exc:
        raise LocationError(f"the input location cannot be listed ({type(exc).__name__})") from None
    # Objects are classified by the workers (that needs their bytes); "dicom" until then.
    return [_Item(index, source.join(name), derive(config.key, "input-path", name).hex()[:32], DICOM, None,
                  source.join(name))
            for index, name in enumerate(names)]


def _jobs(book: RunBook, coordinator: _DaskCoordinator, source: Location, target: Location,
          manifest: list[_Item]) -> list[Job]:
    """Record what needs no worker (resumed, DICOMDIR, not DICOM, skipped); the rest become jobs."""
    jobs = []
    for item in manifest:
        if item.kind == DICOM:
            if source.local and target.local:
                done = book.resumable(item.ref, Path(item.real))
                if done is not None:
                    book.claimed[instance_of(done.output_relpath)] = done.output_sha256
                    coordinator.owner[instance_of(done.output_relpath)] = (
                        Job(item.index, item.real, item.ref), done.output_relpath)
                    book.record(item.ref, item.path, Status.UNCHANGED, None, input_sha256=done.input_sha256,
                                output_relpath=done.output_relpath, output_sha256=done.output_sha256,
                                settings=done.settings, journaled=done.journaled)
                    continue
            patient_id = _patient_number(book, source, item.real)
            jobs.append(Job(index=item.index, path=item.real, input_ref=item.ref, patient_id=patient_id))
        elif item.kind == DICOMDIR:
            book.skip(item.ref, item.path, DICOMDIR_REASON)
        elif item.kind == UNREADABLE:
            book.refuse(item.ref, item.path, f"unreadable: {item.reason}")
        elif item.kind == SKIPPED:
            book.skip(item.ref, item.path, item.reason or "skipped")
        else:
            book.skip(item.ref, item.path, f"not DICOM: {item.reason or 'not a DICOM file'}")
    return jobs


def _patient_number(book: RunBook, source: Location, path: str) -> str | None:
    """The sequential Patient ID, numbered in input order as the local runner numbers it."""
    if not book.config.policy.sequential_patient_ids:
        return None
    if source.local:
        return book.sequential_patient_id(Path(path))
    try:
        handle = source.open(path)
    except Exception:
        return None  # the worker will fail to read it too, and quarantine it
    with handle:
        return book.sequential_patient_id(handle)
