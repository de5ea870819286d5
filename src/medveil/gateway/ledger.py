"""The workspace bookkeeping of the gateway: the one adapter over the runners' shared bookkeeping.

A gateway records what a batch run records, in the same workspace and the
same way, through :class:`medveil.runner.book.RunBook`, so that
``medveil verify``, the review page, a later batch run and a later gateway
all see one history:

* the workspace lock (a batch run and a gateway never share a workspace at once),
* the audit store (one run per ``serve`` or ``pull`` invocation; one file row
  per received instance; counts, events and identifier fingerprints),
* the quarantine (``quarantine/<ref>.dcm`` 0600 and ``<ref>.reason.txt``),
* the pair journal: a file's mapping pairs are fsync'd there before the
  file enters the outbox; ``uid_mapping.csv`` / ``patid_mapping.csv`` are
  rebuilt from it when an association ends and when the gateway stops,
* sequential Patient IDs, numbered in the workspace's sequence table,
* the decisions that involve two files (duplicate SOP Instance UIDs with
  different content, pseudonym collisions), as in batch mode.

SQLite connections belong to the thread that opened them and associations
arrive on threads of their own, so every call runs on one bookkeeping
thread, which also puts those decisions in one order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from medveil.gateway.outbox import OUTBOX, Entry, Outbox
from medveil.pseudonym import Key, derive
from medveil.records import FileRecord, Status
from medveil.runner.book import RunBook, RunConfig, RunSummary
from medveil.store.audit import AuditStore
from medveil.store.private import open_private


def instance_ref(key: Key, sop_instance_uid: str) -> str:
    """The audit store's opaque reference to a received instance (keyed, like batch input refs)."""
    return derive(key, "gateway-instance", sop_instance_uid).hex()[:32]


@dataclass(frozen=True)
class Admitted:
    """What became of one received file."""

    status: Status  # WRITTEN (in the outbox), UNCHANGED (already forwarded), QUARANTINED
    reason: str | None = None
    entry: Entry | None = None


def _write_private(data: bytes) -> Callable[[Path], tuple[bool, str | None]]:
    def copier(target: Path) -> tuple[bool, str | None]:
        try:
            with os.fdopen(open_private(target), "wb") as handle:
                handle.write(data)
        except OSError:
            return False, None
        return True, None
    return copier


class Ledger:
    """Every method may be called from any thread; :meth:`close` ends the run."""

    def __init__(self, workspace: Path, policy, key: Key, *, mappings_dir: Path | None,
                 record_originals: bool, mode: str, destination: str, settings: dict[str, Any]) -> None:
        self.workspace = Path(workspace)
        self.key = key
        self.policy = policy
        self.destination = destination
        self.mappings_dir = mappings_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medveil-ledger")
        self._dirty = False
        config = RunConfig(input=self.workspace, output=self.workspace / OUTBOX, policy=policy, key=key,
                           workspace=self.workspace, mappings_dir=mappings_dir,
                           record_originals=record_originals)
        try:
            self._call(self._open, config, mode, settings)
        except BaseException:
            self._executor.shutdown(wait=True)
            raise
        self.outbox = Outbox(self.workspace / OUTBOX)

    @property
    def summary(self) -> RunSummary:
        return self.book.summary

    def _call(self, fn: Callable, *args):
        return self._executor.submit(fn, *args).result()

    @property
    def _store(self) -> AuditStore:
        """The run's audit store: the book is open from the ledger's start to its close."""
        store = self.book.store
        assert store is not None
        return store

    def _open(self, config: RunConfig, mode: str, settings: dict[str, Any]) -> None:
        self.book = RunBook(config, local_output=False).open()
        self._store.add_event(self.book.run_id, None, "gateway",
                                  json.dumps({"mode": mode, **settings}, sort_keys=True, default=str))

    # -- receiving ------------------------------------------------------------------

    def already_forwarded(self, ref: str, input_sha256: str) -> bool:
        """Resume: this exact input was released with these settings and forwarded to this destination."""
        return self._call(self._already_forwarded, ref, input_sha256)

    def _already_forwarded(self, ref: str, input_sha256: str) -> bool:
        store = self._store
        last = store.last_result(ref)
        if (last is None or not last.status.released or last.input_sha256 != input_sha256
                or last.settings != self.book.settings):
            return False
        if self.mappings_dir is not None and not last.journaled:
            return False
        detail = store.last_event(ref, "forwarded")
        try:
            sent = json.loads(detail) if detail else {}
        except ValueError:
            return False
        return sent.get("output_sha256") == last.output_sha256 and sent.get("destination") == self.destination

    def sequential_patient_id(self, data: bytes) -> str | None:
        if not self.policy.sequential_patient_ids:
            return None
        return self._call(self.book.sequential_patient_id, BytesIO(data))

    def unchanged(self, ref: str, input_sha256: str, label: str) -> Admitted:
        return self._call(self._unchanged, ref, input_sha256, label)

    def _unchanged(self, ref: str, input_sha256: str, label: str) -> Admitted:
        last = self._store.last_result(ref)
        assert last is not None  # unchanged() follows already_forwarded(), which found it
        self.book.record(ref, label, Status.UNCHANGED, None, input_sha256=input_sha256,
                         output_relpath=last.output_relpath, output_sha256=last.output_sha256,
                         settings=self.book.settings, journaled=last.journaled)
        return Admitted(Status.UNCHANGED)

    def quarantine(self, ref: str, data: bytes, reason: str, input_sha256: str | None, label: str) -> Admitted:
        return self._call(self._quarantine, ref, data, reason, input_sha256, label)

    def _quarantine(self, ref, data, reason, input_sha256, label) -> Admitted:
        self.book.refuse(ref, label, reason, input_sha256=input_sha256, copier=_write_private(data))
        return Admitted(Status.QUARANTINED, reason)

    def release(self, ref: str, data: bytes, cleaned: bytes, record: FileRecord, label: str) -> Admitted:
        """Record a cleaned file and put it in the outbox; a clash sends the input to quarantine."""
        return self._call(self._release, ref, data, cleaned, record, label)

    def _release(self, ref, data, cleaned, record: FileRecord, label) -> Admitted:
        assert record.relpath is not None and record.output_sha256 is not None  # a written record has both
        why = self.book.claim(record.relpath, record.output_sha256, record.uid_pairs, record.patient_pairs)
        if why is not None:
            return self._quarantine(ref, data, why, record.input_sha256, label)
        self.book.sync()  # the pairs are durable before the file can leave
        if record.uid_pairs or record.patient_pairs:
            self._dirty = True
        # Recorded first, then queued: the forwarder only ever sees files the store holds.
        self.book.released(ref, label, Status.WRITTEN, record)
        entry = self.outbox.put(cleaned, input_ref=ref, output_sha256=record.output_sha256)
        return Admitted(Status.WRITTEN, entry=entry)

    # -- forwarding and mapping files -------------------------------------------------

    def flush(self) -> None:
        """Rebuild the mapping files from the journal when pairs came in since the last time."""
        self._call(self._flush)

    def _flush(self) -> None:
        if self._dirty:
            self.book.write_mappings()
        self._dirty = False

    def forwarded(self, entry: Entry, detail: str) -> None:
        self._call(self._event, entry.input_ref, "forwarded", json.dumps(
            {"destination": self.destination, "output_sha256": entry.output_sha256, "answer": detail},
            sort_keys=True))

    def forward_failed(self, entry: Entry, detail: str) -> None:
        self._call(self._event, entry.input_ref, "forward-retry", json.dumps(
            {"destination": self.destination, "why": detail}, sort_keys=True))

    def event(self, category: str, detail: str) -> None:
        """A run-level event (an association opened or ended), safe text only."""
        self._call(self._event, None, category, detail)

    def _event(self, ref: str | None, category: str, detail: str) -> None:
        self.book.summary.events[category] += 1
        self._store.add_event(self.book.run_id, ref or None, category, detail)

    # -- closing ----------------------------------------------------------------------

    def close(self, outcome: str = "finished") -> RunSummary:
        try:
            self._call(self._close, outcome)
        finally:
            self._executor.shutdown(wait=True)
        return self.summary

    def _close(self, outcome: str) -> None:
        s = self.book.summary
        s.files_total = s.written + s.unchanged + s.quarantined + s.skipped
        self.book.close(outcome)
