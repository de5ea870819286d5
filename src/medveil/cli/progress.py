"""Progress of a long command: a bar with an ETA on a terminal, and quiet elsewhere.

A run over a real collection takes minutes to hours.  On a terminal a rich
progress bar shows files done, rate and time left.  With ``--json``, and
when stderr is not a terminal (a pipe, a log file, a CI job), nothing is
shown unless asked for: a caller that wants a long unattended run to leave
a trace in its log passes *every* (``deidentify --progress-every``), and a
plain line then goes to stderr that often.  Progress names counts only,
never a file or a value.  Associations and workers report from threads of
their own, so counting takes a lock.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from medveil.records import Status


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class RunProgress:
    """Counts finished inputs by status and shows them; use as a context manager.

    ``quiet`` turns the terminal bar off (``--json``).  Off a terminal a line
    goes to stderr every ``every`` seconds, and never when it is 0 (the
    default).  *held* names the status worth counting as it happens
    (``quarantined``, ``flagged``, ...), as :meth:`__call__` receives it.
    """

    def __init__(self, what: str = "de-identifying", *, quiet: bool = False, every: float = 0.0,
                 held: str = Status.QUARANTINED, held_label: str | None = None, unit: str = "files",
                 stream=None, clock=time.monotonic):
        self.what = what
        self.held = held
        self.held_label = held_label or str(held)
        self.unit = unit
        self._lock = threading.Lock()
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.clock = clock
        self.total: int | None = None
        self.done = 0
        self.statuses: Counter = Counter()
        self.started = clock()
        self._last_line = self.started
        interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Progress | None = None
        self._task: TaskID | None = None  # the bar's task, from __enter__ on
        if interactive and not quiet:
            self._bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[held]}"),
                                 console=Console(file=self.stream), transient=True)
        self._lines = not interactive and every > 0

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
            with self._lock:  # what was counted before the bar appeared (a second phase of one command)
                self._task = self._bar.add_task("files", total=self.total, completed=self.done, held="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def __call__(self, status: str) -> None:
        """One input finished with *status* (a :class:`Status`, or the command's own word)."""
        with self._lock:
            self.done += 1
            self.statuses[status] += 1
            if self._bar is not None and self._task is not None:
                held = self.statuses[self.held]
                self._bar.update(self._task, advance=1, held=f"{self.held_label}: {held}" if held else "")
            elif self._lines:
                now = self.clock()
                if now - self._last_line >= self.every:
                    self._last_line = now
                    self.stream.write(self.line(now) + "\n")
                    self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """``medveil: 120/300 files (40%), 2.1 files/s, ETA 1m25s, quarantined so far: 3``."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = f"{self.done}/{self.total} {self.unit} ({100 * self.done // self.total}%)"
            left = (self.total - self.done) / rate if rate > 0 else None
            eta = f", ETA {_duration(left)}" if left is not None else ""
        else:
            share, eta = f"{self.done} {self.unit}", ""
        return (f"medveil {self.what}: {share}, {rate:.1f} {self.unit}/s, elapsed {_duration(elapsed)}{eta}, "
                f"{self.held_label} so far: {self.statuses[self.held]}")
