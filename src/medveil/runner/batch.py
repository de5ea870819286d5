"""The local runner: a directory in, a release tree out, nothing half-done.

It discovers the inputs, hands them to worker processes
(:mod:`medveil.runner.pool`), and then, strictly in input order, journals
each finished file's mapping pairs, moves its temporary output to its
pseudonymous name and records the outcome (:mod:`medveil.runner.book`).
Input order makes every decision that involves two files (duplicate SOP
Instance UIDs, pseudonym collisions) independent of how many workers ran, so
outputs are byte-identical whatever ``workers`` is, and re-running over the
same input reproduces them.

Files finish in small groups: their pairs are appended to the journal, one
``fsync`` makes them durable, and only then are their outputs moved into
the release tree, so a mapping row never goes missing for a released file.
Outputs are not flushed one by one (that cost as much as de-identifying
small files): a file torn by a power loss never matches the hash the audit
store recorded for it, so the next run writes it again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from medveil.errors import MedveilError
from medveil.quiet import silenced
from medveil.runner.book import (  # noqa: F401  (RunConfig and friends are this module's API too)
    RunBook,
    RunConfig,
    RunSummary,
    WorkspaceError,
    check_layout,
    default_workspace,
    input_ref,
    sha256_file,
)
from medveil.runner.discover import DICOM, DICOMDIR, SKIPPED, UNREADABLE, discover
from medveil.runner.limits import default_memory_budget
from medveil.runner.pool import LocalPool
from medveil.records import FileRecord, Status
from medveil.runner.process import Job

#: Files whose pairs share one journal fsync, and the longest a finished file waits for its group.
GROUP_FILES = 32
GROUP_SECONDS = 0.5
DICOMDIR_REASON = "DICOMDIR (an index; never copied)"


class OutputFullError(MedveilError):
    """The output's file system is full; the run stops (exit 2), keeping what was released."""


def run(config: RunConfig, *, progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None) -> RunSummary:
    """De-identify everything under ``config.input`` into ``config.output``.

    Raises :class:`KeyboardInterrupt` after a clean stop when interrupted; the
    summary of what was done then is ``exc.summary``.
    """
    check_layout(config)
    budget = config.memory_budget or default_memory_budget(config.workers)
    book = RunBook(config, progress=progress).open()
    book.summary.memory_budget = budget
    with book.running(), _stop_on_sigterm():
        with silenced():
            found = list(discover(config.input, follow_symlinks=config.follow_symlinks,
                                  protected=config.protected))
        book.summary.files_total = len(found)
        if on_total:
            on_total(len(found))
        jobs = _plan(book, config, found)
        pool = LocalPool(config.workers, config.policy, config.key, book.temporary_dir(), budget,
                         tag=book.run_id[:8] + "-")
        _finish_in_order(book, pool.results([job for job, _ in jobs]), {job.index: path for job, path in jobs})
    return book.summary


def _plan(book: RunBook, config: RunConfig, found: list) -> list[tuple[Job, Path]]:
    """Record what needs no worker (resumed, DICOMDIR, not DICOM, skipped); the rest become jobs."""
    jobs: list[tuple[Job, Path]] = []
    for index, item in enumerate(found):
        ref = input_ref(config.key, config.input, item.path)
        if item.kind == DICOM:
            done = book.resumable(ref, item.real)
            if done is not None:
                book.claimed[Path(done.output_relpath).stem] = done.output_sha256
                book.record(ref, item.path, Status.UNCHANGED, None, input_sha256=done.input_sha256,
                            output_relpath=done.output_relpath, output_sha256=done.output_sha256,
                            settings=done.settings, journaled=done.journaled)
                continue
            patient_id = book.sequential_patient_id(item.real)
            jobs.append((Job(index=index, path=str(item.real), input_ref=ref, patient_id=patient_id),
                         item.path))
        elif item.kind == DICOMDIR:
            book.skip(ref, item.path, DICOMDIR_REASON)
        elif item.kind == UNREADABLE:
            # It may be DICOM: not releasing it is a loss the user must hear of (exit status 1).
            book.refuse(ref, item.path, f"unreadable: {item.reason}")
        elif item.kind == SKIPPED:
            book.skip(ref, item.path, item.reason or "skipped")
        else:
            book.skip(ref, item.path, f"not DICOM: {item.reason or 'not a DICOM file'}")
    return jobs


def _finish_in_order(book: RunBook, results: Iterator[tuple[Job, FileRecord]], paths: dict) -> None:
    """Release finished files in groups: journal their pairs, sync once, move them, record them."""
    group: list[tuple[Job, FileRecord]] = []
    started = time.monotonic()
    try:
        for job, outcome in results:
            if not group:
                started = time.monotonic()
            group.append((job, outcome))
            if outcome.fatal or len(group) >= GROUP_FILES or time.monotonic() - started >= GROUP_SECONDS:
                _release_group(book, group, paths)
                group = []
    finally:
        # Interrupted or not: what finished is released (stopping must not lose finished work).
        if group:
            _release_group(book, group, paths)


def _release_group(book: RunBook, group: list[tuple[Job, FileRecord]], paths: dict) -> None:
    accepted: list[tuple[Job, FileRecord]] = []
    for job, outcome in group:
        path = paths[job.index]
        if outcome.status is not Status.WRITTEN:
            if outcome.fatal:
                _stop_full(book, group)
            book.refuse(outcome.input_ref, path, outcome.reason or "unknown",
                        input_sha256=outcome.input_sha256, copy_from=Path(job.path))
            continue
        why = book.claim(outcome.relpath, outcome.output_sha256, outcome.uid_pairs, outcome.patient_pairs)
        if why is not None:
            Path(outcome.tmp_path).unlink(missing_ok=True)
            book.refuse(outcome.input_ref, path, why, input_sha256=outcome.input_sha256, copy_from=Path(job.path))
            continue
        accepted.append((job, outcome))
    book.sync()  # the pairs are durable before any of their files is released
    for job, outcome in accepted:
        with _deferred_interrupts():
            status = _move(book, outcome)
            if status is None:
                book.refuse(outcome.input_ref, paths[job.index], "the output could not be written",
                            input_sha256=outcome.input_sha256, copy_from=Path(job.path))
            else:
                book.released(outcome.input_ref, paths[job.index], status, outcome)


def _move(book: RunBook, outcome: FileRecord) -> Status | None:
    """Move a finished temporary file into place: written, unchanged, or None when it cannot be."""
    tmp = Path(outcome.tmp_path)
    target = book.config.output / outcome.relpath
    try:
        if target.is_file() and sha256_file(target) == outcome.output_sha256:
            tmp.unlink()
            return Status.UNCHANGED
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        return Status.WRITTEN
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputFullError(f"the output directory's disk is full; {book.summary.written} files were "
                                  "written and recorded before it. Free some space and run the same command "
                                  "again: it resumes where this run stopped") from None
        return None


def _stop_full(book: RunBook, group) -> None:
    for _job, outcome in group:
        if outcome.tmp_path:
            Path(outcome.tmp_path).unlink(missing_ok=True)
    raise OutputFullError(f"the output directory's disk is full; {book.summary.written} files were written "
                          "and recorded before it. Free some space and run the same command again: it "
                          "resumes where this run stopped")


@contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C back while one file is moved and recorded (a few milliseconds), so both happen."""
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
