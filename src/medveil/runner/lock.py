"""One run at a time per OUTPUT and per workspace.

Two runs writing one release tree delete each other's temporaries, race on
the same output names and rewrite the mapping files from different halves of
the pairs.  So a run holds an exclusive ``flock`` on the OUTPUT directory
itself (nothing is added to the release tree) and on a lock file in the
workspace, and a second run is refused with the process that holds them.
The kernel drops a ``flock`` when its holder dies, so a killed run never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medveil.errors import MedveilError

LOCK_FILE = "run.lock"


class RunLockedError(MedveilError):
    """Another process holds the lock."""


def holder_of(fd: int) -> int | None:
    """The process holding a lock on the file behind *fd*, from ``/proc/locks`` (Linux); else None."""
    try:
        info = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" ("->" marks a waiter)
        if len(fields) >= 6 and fields[1] != "->" and fields[1] == "FLOCK" and fields[5] == wanted:
            try:
                return int(fields[4])
            except ValueError:
                return None
    return None


class RunLock:
    """Exclusive locks on a set of directories, taken all at once or not at all."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def add_directory(self, path: Path, what: str) -> None:
        """Lock the directory *path* itself (used for OUTPUT: nothing is written into it)."""
        self._take(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path, what)

    def add_file(self, path: Path, what: str) -> None:
        """Lock a lock file (created 0600), and write this process's number into it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        self._take(fd, path.parent, what)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))

    def _take(self, fd: int, path: Path, what: str) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder_of(fd)
            os.close(fd)
            self.release()
            who = f"process {pid}" if pid else "another process"
            raise RunLockedError(f"another medveil run ({who}) is using the {what} {path}; wait for it to "
                                 "finish or stop it, then run again") from None
        except OSError as exc:
            os.close(fd)
            self.release()
            raise RunLockedError(f"the {what} {path} cannot be locked ({type(exc).__name__})") from None
        self._fds.append(fd)

    def release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)  # closing drops the flock
            except OSError:
                pass
        self._fds.clear()


@contextmanager
def locked_directory(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on *path* for the block, waiting for another holder to let go.

    Used where two runs with different workspaces share one directory (the
    mapping files): the second waits a moment instead of being refused.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
