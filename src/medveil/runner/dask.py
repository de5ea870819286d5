"""The Dask executor: the same pipeline on a local cluster or a remote one, with identical results.

Keyed pseudonymisation needs no shared state, so any worker can de-identify
any file.  The run (:mod:`medveil.runner.base`) plans the inputs; this
executor splits the jobs into batches of hundreds to thousands of files and
submits one task per batch.  A task streams its files one at a time: read,
de-identify with :func:`medveil.pipeline.deidentify_bytes`, write the output
under its pseudonymous name; it returns only small records, never file
contents.  Because an output's name is a pseudonym of its content's
identity, a retried batch (Dask retries a task whose worker died) overwrites
the same objects and never leaves duplicates.

The decisions that involve two files are the run's, made strictly in input
order as with any executor.  Batches that finish early wait until every
earlier batch is in.  Outputs are written in place by the workers, so each
file is finished on its own (its pairs made durable, then it is recorded),
and when a later file turns out to clash with an earlier one, the later one
is quarantined and the earlier one's output is written again (the pipeline
is deterministic), since the later one may already have overwritten it.  So
the release tree and the mapping files are byte-identical to the local
executor's for the same input and key.

The workspace (audit store, quarantine) and the mapping files stay on the
coordinator's local disk: they hold original identifiers and never travel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import PurePosixPath

from medveil.dicomio.discover import DICOM, DICOMDIR, classify_bytes
from medveil.errors import MedveilError
from medveil.pipeline import deidentify_bytes
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.records import FileRecord, Status
from medveil.runner.base import DICOMDIR_REASON, Executor, Job, Run, Work
from medveil.runner.book import RunConfig, instance_of
from medveil.runner.limits import default_memory_budget, file_limit
from medveil.runner.locations import Location

#: Files per task: large enough that scheduling costs nothing next to the work, small enough
#: that every worker gets several tasks and a retry repeats little.
MAX_BATCH = 1000


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
    assert record.relpath is not None and isinstance(out, bytes)  # a written record has both
    try:
        if target.sha256(target.join(record.relpath)) == record.output_sha256:
            record.status = Status.UNCHANGED
        else:
            target.write(record.relpath, out)
    except Exception as exc:  # disk full, network: the file is quarantined, the batch goes on
        record.refused(f"the output could not be written ({type(exc).__name__})")
    return record


class DaskExecutor(Executor):
    """Batches of jobs as Dask tasks, on *scheduler*'s cluster or a local one of *workers* processes."""

    group_files = 1  # outputs are in place already: each is finished before the next one is claimed
    remote = True

    def __init__(self, workers: int = 1, *, scheduler: str | None = None, batch_size: int | None = None):
        self.workers = max(1, workers)
        self.scheduler = scheduler
        self.batch_size = batch_size
        self.run: Run | None = None
        #: new SOP Instance UID -> the job that released it first and its output's path, to put that
        #: output back when a later file with the same UID overwrote it.
        self.owner: dict[str, tuple[Job, str]] = {}
        #: outputs present before the run: a worker's "unchanged" only counts for these, since
        #: another worker may have written an identical file first during this run.
        self.preexisting: set[str] = set()

    def memory_budget(self, config: RunConfig) -> int | None:
        # A remote cluster's workers have memory of their own that this machine cannot see.
        return None if self.scheduler else default_memory_budget(config.workers)

    def before_any(self, run: Run) -> None:
        self.run = run
        if run.target.local:
            run.target.clean_temporaries()
        self.preexisting = run.target.existing()

    def after_each(self, job: Job, record: FileRecord) -> None:
        relpath = record.relpath
        assert relpath is not None  # called for released inputs only
        self.owner.setdefault(instance_of(relpath), (job, relpath))

    def after_all(self, run: Run) -> None:
        if run.target.local:
            run.target.clean_temporaries()

    def place(self, run: Run, job: Job, record: FileRecord) -> Status:
        assert record.relpath is not None  # an accepted output has its path
        if instance_of(record.relpath) in self.owner:
            return Status.UNCHANGED  # an earlier input of this run (or an earlier run) released these bytes
        if record.status is Status.UNCHANGED and record.relpath not in self.preexisting:
            return Status.WRITTEN
        return record.status

    def withdraw(self, run: Run, job: Job, record: FileRecord) -> None:
        """Undo a refused file's write: restore the earlier owner's output, or remove it."""
        relpath = record.relpath
        assert relpath is not None  # only an output that was written is withdrawn
        instance = instance_of(relpath)
        claimed = run.opened.claimed.get(instance)
        owner, owner_relpath = self.owner.get(instance, (None, None))
        if claimed is None or owner_relpath != relpath:
            run.target.delete(relpath)  # no accepted file of this run lives under that name
            return
        if claimed == record.output_sha256:
            return  # the object holds exactly the earlier file's bytes
        config = run.config
        out, again = (None, None) if owner is None else deidentify_bytes(
            run.source.read(owner.path), config.policy, config.key, patient_id=owner.patient_id)
        if again is None or again.status is not Status.WRITTEN or again.output_sha256 != claimed:
            raise MedveilError("an output could not be restored after a clash; rerun with --no-resume")
        assert again.relpath is not None and isinstance(out, bytes)  # written, as checked above
        run.target.write(again.relpath, out)

    def results(self, jobs: list[Job], work: Work) -> Iterator[tuple[Job, FileRecord]]:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise MedveilError("the Dask runner needs dask[distributed]: pip install 'medveil[scale]'") from None
        if self.scheduler:
            cluster = None
            client = Client(self.scheduler)
        else:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        try:
            workers = len(client.scheduler_info().get("workers", {})) or self.workers
            size = self.batch_size or max(1, min(MAX_BATCH, math.ceil(len(jobs) / (4 * workers))))
            batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]
            assert self.run is not None  # before_any() gave it
            yield from _in_order(client, as_completed, batches, self.run, work)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _in_order(client, as_completed, batches: list[list[Job]], run: Run,
              work: Work) -> Iterator[tuple[Job, FileRecord]]:
    """Submit every batch; yield their files in input order as batches come back."""
    policy, key = client.scatter([work.policy, work.key], broadcast=True)
    futures = {}
    for number, batch in enumerate(batches):
        future = client.submit(run_batch, batch, run.source, run.target, policy, key, work.budget, retries=2,
                               pure=False, key=f"medveil-batch-{run.opened.run_id}-{number}")
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
            yield from zip(batches[next_batch], ready.pop(next_batch), strict=True)
            next_batch += 1
