"""The thread executor: the run's jobs on a pool of threads in this process.

No process start-up and nothing pickled, so it suits small runs, notebooks
and machines where starting processes is slow or not allowed.  CPython runs
one thread at a time through most of the pipeline (the header work is pure
Python); threads overlap what releases the interpreter: reading and writing
files, zlib, image codecs, OCR.  A file that crashes the process (a codec's
segfault, the out-of-memory killer) takes the whole run with it, where the
local executor loses only that file: use the local executor for untrusted
input at scale.

It is also the proof that a runner is one small file: it implements
:meth:`~medveil.runner.base.Executor.results` with public names only, and
inherits everything else (planning, finishing in order, the workspace).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from medveil.quiet import silenced
from medveil.records import FileRecord
from medveil.runner.base import Executor, Job, Work, process


class ThreadExecutor(Executor):
    """*workers* threads, each running :func:`medveil.runner.base.process` on one job at a time."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        #: Jobs in flight: enough to keep every thread busy without queueing the whole input.
        self.window = 4 * self.workers

    def results(self, jobs: list[Job], work: Work) -> Iterator[tuple[Job, FileRecord]]:
        """Yield ``(job, record)`` for every job, in the order given."""
        pending = deque(jobs)
        flight: deque[tuple[Job, Future]] = deque()
        # Silenced once around all threads: each file's own silencing saves and restores shared
        # settings, which threads entering and leaving in any order would otherwise leave changed.
        with silenced():
            pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="medveil-job")
            try:
                while pending or flight:
                    while pending and len(flight) < self.window:
                        job = pending.popleft()
                        flight.append((job, pool.submit(process, job, work)))
                    job, future = flight.popleft()
                    yield job, future.result()
            finally:
                # Ctrl-C or an error: what has not started is cancelled; running files finish.
                pool.shutdown(wait=True, cancel_futures=True)
