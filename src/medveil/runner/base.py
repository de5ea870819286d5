"""The one run skeleton: plan, execute, finish in order; executors only say where files are de-identified.

A run of ``medveil deidentify`` is the same whatever executes it:

1. **plan** (:meth:`Run.plan`): discover the inputs (a local tree with
   :mod:`medveil.dicomio.discover`, a URL's objects with
   :class:`~medveil.runner.locations.Location`), record what needs no worker
   (resumed, DICOMDIR, not DICOM, skipped, unreadable) and number patients
   in input order when the policy asks for sequential IDs; the rest become
   :class:`Job` s;
2. **execute**: the :class:`Executor` de-identifies the jobs (each through
   :func:`medveil.pipeline.deidentify_bytes`) and hands back one
   :class:`~medveil.records.FileRecord` per job, in job order;
3. **finish** (:meth:`Run.finish`), strictly in input order: quarantine what
   failed, make the decisions that involve two files (duplicate SOP Instance
   UIDs, pseudonym collisions) in the run's book, make the mapping pairs
   durable, then put each output in place and record it.  Input order makes
   those decisions independent of how many workers ran, so outputs are
   byte-identical whatever executes them.

Files finish in small groups: their pairs are appended to the journal, one
``fsync`` makes them durable, and only then are their outputs placed, so a
mapping row never goes missing for a released file.

An executor implements :meth:`Executor.results` and, where its outputs do not
come back as temporary files to move, :meth:`Executor.place` and
:meth:`Executor.withdraw`; the hooks :meth:`~Executor.before_any`,
:meth:`~Executor.before_each`, :meth:`~Executor.after_each` and
:meth:`~Executor.after_all` let it keep state of its own.  A new executor is
one file that imports only public names from here (:mod:`medveil.runner.thread`).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medveil.dicomio.discover import DICOM, DICOMDIR, SKIPPED, UNREADABLE, InputTooLarge, discover, read_regular
from medveil.errors import MedveilError, QuarantineError, safe_reason
from medveil.pipeline import deidentify_bytes
from medveil.policy import Policy
from medveil.pseudonym import Key, derive
from medveil.quiet import silenced
from medveil.records import FileRecord, Status
from medveil.runner.book import RunBook, RunConfig, RunSummary, check_layout, input_ref, sha256_file
from medveil.runner.limits import default_memory_budget, file_limit
from medveil.runner.locations import Location, LocationError, inside
from medveil.store.private import TMP_PREFIX

#: Files whose pairs share one journal fsync, and the longest a finished file waits for its group.
GROUP_FILES = 32
GROUP_SECONDS = 0.5
DICOMDIR_REASON = "DICOMDIR (an index; never copied)"


class OutputFullError(MedveilError):
    """The output's file system is full; the run stops (exit 2), keeping what was released."""


@dataclass
class Job:
    """What a worker needs to know about one input."""

    index: int
    #: The resolved path (or URL) to read. Left out of the repr: paths carry names and MRNs, and Dask
    #: logs a failed task's arguments.
    path: str = field(repr=False)
    input_ref: str
    #: The sequential Patient ID, when the policy numbers patients.
    patient_id: str | None = None


@dataclass(frozen=True)
class Work:
    """What every job of a run shares; sent once to each worker."""

    policy: Policy
    key: Key
    #: Where :func:`process` writes outputs for the run to move into place.
    tmp_dir: Path
    #: Bytes one file may cost a worker (None: no limit).
    budget: int | None = None
    #: Part of every temporary file's name: the run's, so two runs never share one.
    tag: str = ""


def process(job: Job, work: Work) -> FileRecord:
    """De-identify one local file into a temporary file: the job of every executor that moves outputs.

    A file either comes out complete and verified, or not at all: every
    failure becomes a quarantined record whose reason names no value.  The
    output goes to a temporary file in ``work.tmp_dir``; the run renames it
    into place, so a crash never leaves a half-written file under its name.
    """
    outcome = FileRecord(index=job.index, input_ref=job.input_ref)
    try:
        try:
            data = read_regular(job.path, file_limit(work.budget) if work.budget is not None else None)
        except InputTooLarge as exc:
            raise QuarantineError(str(exc)) from None
        except OSError as exc:
            raise QuarantineError(f"unreadable: cannot be read ({type(exc).__name__})") from None
        out, record = deidentify_bytes(data, work.policy, work.key, patient_id=job.patient_id,
                                       memory_budget=work.budget)
        del data
        outcome.input_sha256 = record.input_sha256
        if record.status is not Status.WRITTEN:
            outcome.reason = record.reason
            return outcome
        assert isinstance(out, bytes)  # a written record comes with the output's bytes
        tmp_path = Path(work.tmp_dir) / f"{TMP_PREFIX}{work.tag}{job.index}-{os.getpid()}"
        try:
            tmp_path.write_bytes(out)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            outcome.reason = f"the output could not be written ({os.strerror(exc.errno or 0) or type(exc).__name__})"
            outcome.fatal = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return outcome
        record.index, record.input_ref, record.tmp_path = job.index, job.input_ref, str(tmp_path)
        return record
    except Exception as exc:  # fail closed: every error ends in quarantine, never a crash
        return outcome.refused(safe_reason(exc))


class Executor:
    """Where a run's files are de-identified.  Subclasses implement :meth:`results`.

    The defaults suit an executor whose jobs run :func:`process` on this
    machine: outputs come back as temporary files that :meth:`place` moves
    into OUTPUT.
    """

    #: Files whose mapping pairs share one journal fsync before they are placed.
    group_files: int = GROUP_FILES
    #: Whether INPUT and OUTPUT may be URLs (the executor's workers reach them themselves).
    remote: bool = False

    def memory_budget(self, config: RunConfig) -> int | None:
        """Bytes one file may cost a worker when the user set none: the machine's memory, shared."""
        return default_memory_budget(config.workers)

    def results(self, jobs: list[Job], work: Work) -> Iterator[tuple[Job, FileRecord]]:
        """Yield ``(job, record)`` for every job, in the order given."""
        raise NotImplementedError

    # -- hooks -----------------------------------------------------------------------

    def before_any(self, run: Run) -> None:
        """Once, when the book is open and before anything is discovered."""

    def before_each(self, job: Job) -> None:
        """For each job, in input order, as it is planned (before any is executed)."""

    def after_each(self, job: Job, record: FileRecord) -> None:
        """For each input that was released (resumed ones included), after it was recorded."""

    def after_all(self, run: Run) -> None:
        """Once, after the last file was finished (not when the run stopped early)."""

    # -- outputs -----------------------------------------------------------------------

    def place(self, run: Run, job: Job, record: FileRecord) -> Status | None:
        """Put an accepted output in place: written, unchanged, or None when it cannot be."""
        assert record.tmp_path is not None and record.relpath is not None  # an accepted output has both
        tmp = Path(record.tmp_path)
        target = Path(run.config.output) / record.relpath
        try:
            if target.is_file() and sha256_file(target) == record.output_sha256:
                tmp.unlink()
                return Status.UNCHANGED
            root = Path(run.config.output)
            if not inside(root, target.parent):
                tmp.unlink()  # a folder of OUTPUT is a link leading out of it: nothing is created there
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            if not inside(root, target.parent):  # made a link since
                tmp.unlink()
                return None
            os.replace(tmp, target)
            return Status.WRITTEN
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutputFullError(_full_message(run.opened)) from None
            return None

    def withdraw(self, run: Run, job: Job, record: FileRecord) -> None:
        """Undo an output that the run refused (a clash with an earlier input)."""
        if record.tmp_path:
            Path(record.tmp_path).unlink(missing_ok=True)


@dataclass(frozen=True)
class _Input:
    """One discovered input: its index, the path shown for it, its keyed reference, what it is."""

    index: int
    path: Path | str
    ref: str
    kind: str
    reason: str | None
    real: str | None = None  # what to read (a local link resolved at discovery)


class Run:
    """One run of *executor* over ``config.input``; call :meth:`execute` once."""

    def __init__(self, config: RunConfig, executor: Executor, *, storage_options: dict[str, Any] | None = None,
                 progress: Callable[[str], None] | None = None, on_total: Callable[[int], None] | None = None):
        self.config = config
        self.executor = executor
        self.source = Location(config.input, storage_options)
        self.target = Location(config.output, storage_options)
        self.progress = progress
        self.on_total = on_total
        self.book: RunBook | None = None
        #: job index -> the input's path as discovered (what summaries and the quarantine name).
        self.paths: dict[int, Path | str] = {}

    @property
    def opened(self) -> RunBook:
        """The run's book, open while :meth:`execute` runs."""
        assert self.book is not None, "the run has not started"
        return self.book

    def execute(self) -> RunSummary:
        """De-identify everything; raises :class:`KeyboardInterrupt` (with ``.summary``) after a clean stop."""
        config, executor = self.config, self.executor
        if not (self.source.local and self.target.local):
            if not executor.remote:
                raise MedveilError("URLs as input or output need --runner dask")
        else:
            check_layout(config)
        budget = config.memory_budget or executor.memory_budget(config)
        self.book = book = RunBook(config, local_output=self.target.local, progress=self.progress).open()
        book.summary.memory_budget = budget
        with book.running(), _stop_on_sigterm():
            executor.before_any(self)
            found = self.discover()
            book.summary.files_total = len(found)
            if self.on_total:
                self.on_total(len(found))
            jobs = self.plan(found)
            work = Work(config.policy, config.key, book.temporary_dir() if self.target.local else Path(),
                        budget, tag=book.run_id[:8] + "-")
            self.finish(executor.results(jobs, work) if jobs else iter(()))
            executor.after_all(self)
        return book.summary

    # -- plan --------------------------------------------------------------------------

    def discover(self) -> list[_Input]:
        """Every input, in a stable order, with an opaque keyed reference."""
        config = self.config
        if self.source.local:
            with silenced():
                found = list(discover(config.input, follow_symlinks=config.follow_symlinks,
                                      protected=config.protected))
            return [_Input(index, item.path, input_ref(config.key, Path(config.input), item.path), item.kind,
                           item.reason, str(item.real) if item.real else None)
                    for index, item in enumerate(found)]
        try:
            names = list(self.source.walk())
        except LocationError:
            raise
        except Exception as exc:
            raise LocationError(f"the input location cannot be listed ({type(exc).__name__})") from None
        # Objects are classified by the workers (that needs their bytes); "dicom" until then.
        return [_Input(index, self.source.join(name), derive(config.key, "input-path", name).hex()[:32], DICOM,
                       None, self.source.join(name))
                for index, name in enumerate(names)]

    def plan(self, found: list[_Input]) -> list[Job]:
        """Record what needs no worker (resumed, DICOMDIR, not DICOM, skipped); the rest become jobs."""
        book = self.opened
        jobs: list[Job] = []
        for item in found:
            if item.kind == DICOM:
                real = item.real
                assert real is not None  # discovery resolves what it reads for every DICOM input
                if self.source.local and self.target.local:
                    done = book.resumable(item.ref, Path(real))
                    if done is not None:
                        # resumable() returns only a record whose output was found with this hash
                        assert done.output_relpath is not None and done.output_sha256 is not None
                        book.claimed[Path(done.output_relpath).stem] = done.output_sha256
                        book.record(item.ref, item.path, Status.UNCHANGED, None, input_sha256=done.input_sha256,
                                    output_relpath=done.output_relpath, output_sha256=done.output_sha256,
                                    settings=done.settings, journaled=done.journaled)
                        self.executor.after_each(Job(item.index, real, item.ref), FileRecord(
                            Status.UNCHANGED, index=item.index, input_ref=item.ref, relpath=done.output_relpath,
                            input_sha256=done.input_sha256, output_sha256=done.output_sha256))
                        continue
                job = Job(index=item.index, path=real, input_ref=item.ref,
                          patient_id=self._patient_number(real))
                self.paths[item.index] = item.path
                self.executor.before_each(job)
                jobs.append(job)
            elif item.kind == DICOMDIR:
                book.skip(item.ref, item.path, DICOMDIR_REASON)
            elif item.kind == UNREADABLE:
                # It may be DICOM: not releasing it is a loss the user must hear of (exit status 1).
                book.refuse(item.ref, item.path, f"unreadable: {item.reason}")
            elif item.kind == SKIPPED:
                book.skip(item.ref, item.path, item.reason or "skipped")
            else:
                book.skip(item.ref, item.path, f"not DICOM: {item.reason or 'not a DICOM file'}")
        return jobs

    def _patient_number(self, path: str) -> str | None:
        """The sequential Patient ID, numbered in input order (None when the policy does not number)."""
        if not self.config.policy.sequential_patient_ids:
            return None
        if self.source.local:
            return self.opened.sequential_patient_id(Path(path))
        try:
            handle = self.source.open(path)
        except Exception:
            return None  # the worker will fail to read it too, and quarantine it
        with handle:
            return self.opened.sequential_patient_id(handle)

    # -- finish ------------------------------------------------------------------------

    def finish(self, results: Iterator[tuple[Job, FileRecord]]) -> None:
        """Release finished files in groups: journal their pairs, sync once, place them, record them."""
        group: list[tuple[Job, FileRecord]] = []
        started = time.monotonic()
        limit = max(1, self.executor.group_files)
        try:
            for job, record in results:
                if not group:
                    started = time.monotonic()
                group.append((job, record))
                if record.fatal or len(group) >= limit or time.monotonic() - started >= GROUP_SECONDS:
                    self._release(group)
                    group = []
        finally:
            # Interrupted or not: what finished is released (stopping must not lose finished work).
            if group:
                self._release(group)

    def _release(self, group: list[tuple[Job, FileRecord]]) -> None:
        book = self.opened
        accepted: list[tuple[Job, FileRecord]] = []
        for job, record in group:
            path = self.paths[job.index]
            if record.status is Status.SKIPPED:  # classified by the worker (a URL's objects)
                book.skip(job.input_ref, path, record.reason or "skipped")
                continue
            if not record.status.released:
                if record.fatal:
                    self._stop_full(group)
                self.refuse(job, record.reason or "unknown", record.input_sha256)
                continue
            assert record.relpath is not None and record.output_sha256 is not None  # released: both known
            why = book.claim(record.relpath, record.output_sha256, record.uid_pairs, record.patient_pairs)
            if why is not None:
                self.executor.withdraw(self, job, record)
                self.refuse(job, why, record.input_sha256)
                continue
            accepted.append((job, record))
        book.sync()  # the pairs are durable before any of their files is released
        for job, record in accepted:
            with _deferred_interrupts():
                status = self.executor.place(self, job, record)
                if status is None:
                    self.refuse(job, "the output could not be written", record.input_sha256)
                    continue
                book.released(job.input_ref, self.paths[job.index], status, record)
            self.executor.after_each(job, record)

    def refuse(self, job: Job, reason: str, input_sha256: str | None = None) -> None:
        """Quarantine a job's input, with a private copy of it where one can be made."""
        path = self.paths[job.index]
        if self.source.local:
            self.opened.refuse(job.input_ref, path, reason, input_sha256=input_sha256, copy_from=Path(job.path))
        else:
            self.opened.refuse(job.input_ref, path, reason, input_sha256=input_sha256,
                             copier=lambda target: _copy_remote(self.source, job.path, target,
                                                                self.config.quarantine_limit))

    def _stop_full(self, group: list[tuple[Job, FileRecord]]) -> None:
        for _job, record in group:
            if record.tmp_path:
                Path(record.tmp_path).unlink(missing_ok=True)
        raise OutputFullError(_full_message(self.opened))


def run(config: RunConfig, executor: Executor | None = None, *, storage_options: dict[str, Any] | None = None,
        progress: Callable[[str], None] | None = None,
        on_total: Callable[[int], None] | None = None) -> RunSummary:
    """De-identify everything under ``config.input`` into ``config.output`` with *executor*.

    Without one, the local executor's ``config.workers`` processes do the
    work.  Raises :class:`KeyboardInterrupt` after a clean stop when
    interrupted; the summary of what was done then is ``exc.summary``.
    """
    if executor is None:
        from medveil.runner.local import LocalExecutor

        executor = LocalExecutor(config.workers)
    return Run(config, executor, storage_options=storage_options, progress=progress, on_total=on_total).execute()


def _full_message(book: RunBook) -> str:
    return (f"the output directory's disk is full; {book.summary.written} files were written and recorded "
            "before it. Free some space and run the same command again: it resumes where this run stopped")


def _copy_remote(source: Location, path: str, target: Path, limit: int) -> tuple[bool, str | None]:
    """Copy a remote input into the quarantine (0600), up to *limit* bytes: (copied, sha256)."""
    import hashlib

    from medveil.store.private import open_private

    digest = hashlib.sha256()
    try:
        with source.open(path) as src, os.fdopen(open_private(target), "wb") as dst:
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


@contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C back while one file is placed and recorded (a few milliseconds), so both happen."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops a run the way Ctrl-C does (a clean stop, records and mappings written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
