"""Cleaned files waiting to leave: a directory in the private workspace.

A file enters the outbox only after the core cleaned and verified it and
the ledger recorded it; it leaves when the destination confirmed it.  An
entry is one file, ``<seq>-<input ref>-<output sha256>.dcm``: the cleaned
bytes exactly as the core encoded them, named with what the ledger needs to
record the forwarding (no identifier: the input reference is keyed, the
hash is of the released bytes).  It is written to a temporary name,
flushed to disk and renamed, so a crash leaves a whole entry or a
temporary file that the next start removes; a restart finds every entry
that was acknowledged to the sender.  Sequence numbers keep arrival order.

The directory is 0700 and the files 0600: the outbox sits in the private
workspace next to the quarantine, and a de-identified file is still not for
other local users until it is released.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from medveil.store.private import TMP_PREFIX, write_durably

#: The outbox's folder in the workspace.
OUTBOX = "outbox"
_NAME = re.compile(r"^(\d{12})-([0-9a-f]{1,64})-([0-9a-f]{64})\.dcm$")


@dataclass(frozen=True)
class Entry:
    """One outbox file and what the ledger recorded about it."""

    seq: int
    path: Path
    input_ref: str
    output_sha256: str


class Outbox:
    """A durable FIFO of cleaned files; safe to share between threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)  # mkdir's mode is filtered by the umask
        self._lock = threading.Lock()
        highest = 0
        for path in self.directory.iterdir():
            if path.name.startswith(TMP_PREFIX):
                path.unlink(missing_ok=True)  # a crash interrupted this write: it was never acknowledged
            elif match := _NAME.match(path.name):
                highest = max(highest, int(match.group(1)))
        self._next = highest + 1

    def put(self, data: bytes, *, input_ref: str, output_sha256: str) -> Entry:
        """Store *data* durably and return its entry (visible to :meth:`pending` once this returns)."""
        with self._lock:
            seq = self._next
            self._next += 1
        path = self.directory / f"{seq:012d}-{input_ref}-{output_sha256}.dcm"
        write_durably(path, data)
        return Entry(seq, path, input_ref, output_sha256)

    def pending(self) -> list[Entry]:
        """Every entry waiting, oldest first."""
        entries = []
        for path in sorted(self.directory.iterdir()):
            if match := _NAME.match(path.name):
                entries.append(Entry(int(match.group(1)), path, match.group(2), match.group(3)))
        return entries

    def __len__(self) -> int:
        return sum(1 for p in self.directory.iterdir() if _NAME.match(p.name))

    def remove(self, entry: Entry) -> None:
        """The destination has the file: forget it."""
        entry.path.unlink(missing_ok=True)
