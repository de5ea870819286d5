"""The local executor: worker processes on this machine, results in input order, whatever happens to a worker.

Each file is de-identified in a worker process, never in the coordinating
one, so that a file which kills its process (the kernel's out-of-memory
killer, a crash inside a codec) costs that file and nothing else.  When a
worker dies, every file that was in flight with it is run again, alone, in
a fresh process: the one that dies again is refused with "worker died",
the others come out as they would have.  The batch goes on.  Everything
else about the run (planning, finishing in order, the workspace) is
:mod:`medveil.runner.base`'s.

Results come back strictly in input order (the coordinator's decisions
depend on it), through a window of files in flight that keeps every worker
busy without queueing the whole input.

Ctrl-C (or SIGTERM) stops a run within seconds: workers ignore SIGINT (the
terminal sends it to the whole process group), the coordinator cancels what
has not started, terminates what has, and raises :class:`Interrupted`;
the runner then releases what was finished and writes its records.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from medveil.records import FileRecord
from medveil.runner.base import Executor, Job, Work, process

_GRACE_SECONDS = 2.0


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (Ctrl-C or SIGTERM) while files were in the workers."""


_STATE: dict = {}


def _init(work: Work) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and stops them with SIGTERM (not its own handler)
    _STATE["work"] = work


def _work(job: Job) -> FileRecord:
    return process(job, _STATE["work"])


def _alone(conn, job: Job, args: tuple) -> None:
    _init(*args)
    conn.send(_work(job))
    conn.close()


def _died(job: Job, exitcode: int | None) -> FileRecord:
    if exitcode is not None and exitcode < 0:
        how = f"killed by signal {-exitcode}" + (" (out of memory?)" if -exitcode == signal.SIGKILL else "")
    else:
        how = f"exit status {exitcode}"
    reason = f"worker died while processing this file ({how})"
    return FileRecord(index=job.index, input_ref=job.input_ref, reason=reason)


class LocalExecutor(Executor):
    """A pool of *workers* processes, each running :func:`medveil.runner.base.process` on one job at a time."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self.window = self.workers * 4
        self.args: tuple = ()
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, initializer=_init, initargs=self.args)

    def results(self, jobs: list[Job], work: Work) -> Iterator[tuple[Job, FileRecord]]:
        """Yield ``(job, record)`` for every job, in the order given."""
        self.args = (work,)
        pending = deque(jobs)
        flight: deque[tuple[Job, Future | FileRecord]] = deque()
        self._pool = self._new_pool()
        try:
            while pending or flight:
                while pending and len(flight) < self.window:
                    try:
                        future = self._pool.submit(_work, pending[0])
                    except BrokenProcessPool:  # a worker died between two submissions
                        self._recover(flight)
                        continue
                    flight.append((pending.popleft(), future))
                job, result = flight[0]
                if isinstance(result, Future):
                    try:
                        result = result.result()
                    except BrokenProcessPool:
                        self._recover(flight)
                        continue
                flight.popleft()
                yield job, result
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            self.stop()
            raise Interrupted from None
        finally:
            self.stop()

    def _recover(self, flight: deque) -> None:
        """A worker died: keep what finished, run everything else that was in flight again, alone."""
        assert self._pool is not None  # only a running pool loses workers
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        for position, (job, result) in enumerate(flight):
            if isinstance(result, Future):
                if result.done() and not result.cancelled() and result.exception() is None:
                    flight[position] = (job, result.result())
                else:
                    flight[position] = (job, self._run_alone(job))

    def _run_alone(self, job: Job) -> FileRecord:
        context = multiprocessing.get_context()
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(target=_alone, args=(sender, job, self.args), daemon=True)
        worker.start()
        sender.close()
        try:
            try:
                return receiver.recv()
            except EOFError:  # it died before sending anything
                worker.join()
                return _died(job, worker.exitcode)
        except KeyboardInterrupt:
            worker.terminate()
            raise
        finally:
            receiver.close()
            worker.join(_GRACE_SECONDS)
            if worker.is_alive():
                worker.kill()

    def stop(self) -> None:
        """Cancel what has not started and end every worker now (their temporaries are the runner's to remove)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in processes:
            if worker.is_alive():
                worker.terminate()
        for worker in processes:
            worker.join(_GRACE_SECONDS)
            if worker.is_alive():
                worker.kill()
