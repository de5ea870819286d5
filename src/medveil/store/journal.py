"""The pair journal: every original identifier -> pseudonym pair, on disk before its file is released.

The mapping files are what lets an authorised party re-link a release to
its source, so a released file whose pairs are missing from them is a file
nobody can trace.  Pairs used to be held in memory and written at the end of
a run: a killed or crashed run, a full disk or a second run lost them while
the audit store already said "written", and a resumed run trusted that.

So the coordinator appends each file's pairs to this journal and ``fsync``s
it before the file is moved into the release tree; the mapping files are
rebuilt from the journal at the end of every run, resumed or not.  A crash
can leave pairs of a file that was never moved (harmless: a mapping row for
an identifier the release does not contain), never the reverse.

The journal holds original identifiers.  It lives in the private workspace
(mode 0700), is created 0600, and is only written when mapping files are
asked for.  One line per file: a JSON object ``{"u": {old: new}, "p": {old:
new}}``.  A line cut by a crash (no newline, or not JSON) is the last one and
is ignored: its file was never released.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from medveil.errors import MedveilError
from medveil.store.private import open_private

JOURNAL_FILE = "pairs.journal"


class JournalError(MedveilError):
    """The journal cannot be written or read."""


class PairJournal:
    """Append-only pairs of one workspace; :meth:`sync` makes what was appended durable."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._dirty = False

    def __enter__(self) -> PairJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            except OSError as exc:
                raise JournalError(f"the pair journal cannot be opened ({type(exc).__name__})") from None
        return self._fd

    def append(self, uid_pairs: Mapping[str, str], patient_pairs: Mapping[str, str]) -> None:
        """Add one file's pairs (not yet durable: call :meth:`sync` before releasing the file)."""
        if not uid_pairs and not patient_pairs:
            return
        line = json.dumps({"u": dict(uid_pairs), "p": dict(patient_pairs)}, separators=(",", ":"))
        data = (line + "\n").encode("utf-8", "surrogatepass")
        fd = self._open()
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            raise JournalError(f"the pair journal cannot be written ({type(exc).__name__}); "
                               "no file was released after it") from None
        self._dirty = True

    def sync(self) -> None:
        """Make every appended pair durable (one ``fsync`` for any number of files)."""
        if self._fd is None or not self._dirty:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise JournalError(f"the pair journal cannot be synced ({type(exc).__name__})") from None
        self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None

    def entries(self) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
        """Every complete line's (uid pairs, patient pairs), oldest first."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JournalError(f"the pair journal cannot be read ({type(exc).__name__})") from None
        for raw in data.split(b"\n")[:-1]:  # the part after the last newline is a torn line
            try:
                entry = json.loads(raw.decode("utf-8", "surrogatepass"))
                uids, patients = entry.get("u", {}), entry.get("p", {})
            except (ValueError, AttributeError):
                continue  # a torn or damaged line: its file was not released after it
            if isinstance(uids, dict) and isinstance(patients, dict):
                yield uids, patients
