"""Cleaned files waiting to leave: a directory in the private workspace.

A file enters the outbox only after the core cleaned and verified it and
the ledger recorded it; it leaves when the destination confirmed it.  Each
entry is two files, ``<seq>.json`` (what the ledger needs to record the
forwarding: the input reference, the output's path and hash) and
``<seq>.dcm`` (the cleaned bytes, exactly as the core encoded them).  Both
are written to a temporary name, flushed to disk and renamed, the sidecar
first: an entry exists once its ``.dcm`` does, so a crash leaves either a
whole entry or nothing that counts, and a restart finds every entry that
was acknowledged to the sender.  Sequence numbers keep arrival order.

The directory is 0700 and the files 0600: the outbox sits in the private
workspace next to the quarantine, and a de-identified file is still not for
other local users until it is released.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from medveil.store.mappings import _fsync_dir  # one helper for "make the rename durable"

TMP_PREFIX = ".medveil-tmp-"


@dataclass(frozen=True)
class Entry:
    """One outbox file and what the ledger recorded about it."""

    seq: int
    path: Path
    input_ref: str
    relpath: str
    output_sha256: str
    run_id: str | None = None


class Outbox:
    """A durable FIFO of cleaned files; safe to share between threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)  # mkdir's mode is filtered by the umask
        self._lock = threading.Lock()
        self._recover()

    def _recover(self) -> None:
        """Drop what a crash left half-made: temporaries and sidecars without their file."""
        highest = 0
        for path in self.directory.iterdir():
            if path.name.startswith(TMP_PREFIX):
                path.unlink(missing_ok=True)
            elif path.suffix == ".json" and not path.with_suffix(".dcm").exists():
                path.unlink(missing_ok=True)
            elif path.suffix == ".dcm" and path.stem.isdigit():
                highest = max(highest, int(path.stem))
        self._next = highest + 1

    def put(self, data: bytes, *, input_ref: str, relpath: str, output_sha256: str,
            run_id: str | None = None) -> Entry:
        """Store *data* durably and return its entry (visible to :meth:`pending` once this returns)."""
        with self._lock:
            seq = self._next
            self._next += 1
        path = self.directory / f"{seq:012d}.dcm"
        meta = {"input_ref": input_ref, "relpath": relpath, "output_sha256": output_sha256, "run_id": run_id}
        self._write(path.with_suffix(".json"), json.dumps(meta, sort_keys=True).encode())
        self._write(path, data)
        _fsync_dir(self.directory)
        return Entry(seq, path, input_ref, relpath, output_sha256, run_id)

    def _write(self, path: Path, data: bytes) -> None:
        tmp = self.directory / f"{TMP_PREFIX}{path.name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def pending(self) -> list[Entry]:
        """Every entry waiting, oldest first."""
        entries = []
        for path in sorted(self.directory.glob("*.dcm")):
            if not path.stem.isdigit():
                continue
            try:
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = None
            if not isinstance(meta, dict) or not all(
                    isinstance(meta.get(k), str) for k in ("input_ref", "relpath", "output_sha256")):
                # A sidecar is written before its file, so this is damage from outside:
                # the file still goes out (it is clean), recorded under what can be known.
                meta = {"input_ref": "", "relpath": "", "output_sha256": ""}
            entries.append(Entry(int(path.stem), path, meta["input_ref"], meta["relpath"],
                                 meta["output_sha256"], meta.get("run_id")))
        return entries

    def __len__(self) -> int:
        return sum(1 for p in self.directory.glob("*.dcm") if p.stem.isdigit())

    def remove(self, entry: Entry) -> None:
        """The destination has the file: forget it (the file first, so no orphan ever counts)."""
        entry.path.unlink(missing_ok=True)
        entry.path.with_suffix(".json").unlink(missing_ok=True)
