"""Batch runs: one skeleton (:mod:`~medveil.runner.base`) and the executors that de-identify its files.

:mod:`~medveil.runner.local` (worker processes, the default),
:mod:`~medveil.runner.thread` (threads in this process) and
:mod:`~medveil.runner.dask` (a Dask cluster, inputs and outputs on object
storage too) differ only in where files are de-identified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medveil.runner.base import Executor

#: The names ``--runner`` and :func:`medveil.deidentify_path` accept.
RUNNERS = ("local", "thread", "dask")


def executor(name: str, workers: int = 1, *, scheduler: str | None = None,
             batch_size: int | None = None) -> Executor:
    """The executor called *name* (one of :data:`RUNNERS`), with *workers* workers."""
    from medveil.errors import MedveilError

    if name == "local":
        from medveil.runner.local import LocalExecutor

        return LocalExecutor(workers)
    if name == "thread":
        from medveil.runner.thread import ThreadExecutor

        return ThreadExecutor(workers)
    if name == "dask":
        from medveil.runner.dask import DaskExecutor

        return DaskExecutor(workers, scheduler=scheduler, batch_size=batch_size)
    raise MedveilError(f"the runner must be one of {', '.join(RUNNERS)}")
