"""The workspace bookkeeping of the gateway: the one adapter over the batch runner's pieces.

A gateway records what a batch run records, in the same workspace and the
same way, so that ``medveil verify``, the review page, a later batch run and
a later gateway all see one history:

* the audit store (one run per ``serve`` or ``pull`` invocation; one file row
  per received instance; counts, events and identifier fingerprints),
* the quarantine (``quarantine/<ref>.dcm`` and ``<ref>.reason.txt``),
* the mapping pairs, merged into ``uid_mapping.csv`` / ``patid_mapping.csv``
  before any file whose pairs they are leaves (:meth:`Ledger.flush`),
* sequential Patient IDs, numbered in the workspace's sequence table.

Everything here goes through the batch runner's coordinator
(:class:`medveil.runner.batch._Coordinator`), so the two engines cannot
drift apart; this module is the only place the gateway touches those
internals.  SQLite connections belong to the thread that opened them and
associations arrive on threads of their own, so every call runs on one
bookkeeping thread, which also puts "two files" decisions (collisions) in
one order.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from medveil._version import __version__
from medveil.errors import MedveilError, safe_reason
from medveil.gateway.outbox import Entry, Outbox
from medveil.pseudonym import Key, derive
from medveil.runner.batch import (
    RunConfig,
    RunSummary,
    _Coordinator,
    quarantine_file,
    sequential_patient_id,
)
from medveil.runner.core import AuditRecord
from medveil.store.audit import AuditStore
from medveil.store.mappings import PATID_FILE, UID_FILE, MappingTable, write_mappings


def instance_ref(key: Key, sop_instance_uid: str) -> str:
    """The audit store's opaque reference to a received instance (keyed, like batch input refs)."""
    return derive(key, "gateway-instance", sop_instance_uid).hex()[:32]


@dataclass(frozen=True)
class Admitted:
    """What became of one received file."""

    status: str  # "written" (in the outbox), "unchanged" (already forwarded), "quarantined"
    reason: str | None = None
    entry: Entry | None = None


class _GatewayCoordinator(_Coordinator):
    """The batch coordinator, fed bytes that arrived over the network instead of paths."""

    def quarantine_bytes(self, data: bytes, ref: str, reason: str) -> None:
        quarantine_file(self.quarantine, ref, reason, lambda target: _write_private(target, data))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class Ledger:
    """Open with :meth:`open`; every method may be called from any thread."""

    def __init__(self, workspace: Path, policy, key: Key, *, mappings_dir: Path | None,
                 record_originals: bool, mode: str, destination: str, settings: dict[str, Any]) -> None:
        self.workspace = Path(workspace)
        self.key = key
        self.policy = policy
        self.destination = destination
        self.mappings_dir = mappings_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medveil-ledger")
        self._dirty = False
        self.outbox = Outbox(self.workspace / "outbox")
        run_id = uuid.uuid4().hex
        self.summary = RunSummary(run_id=run_id, quarantine_dir=self.workspace / "quarantine",
                                  workspace=self.workspace)
        config = RunConfig(input=self.workspace, output=self.workspace / "outbox", policy=policy, key=key,
                           workspace=self.workspace, mappings_dir=mappings_dir,
                           record_originals=record_originals)
        self._call(self._open, config, mode, settings)

    def _call(self, fn: Callable, *args):
        return self._executor.submit(fn, *args).result()

    def _open(self, config: RunConfig, mode: str, settings: dict[str, Any]) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = AuditStore.open(self.workspace / "audit.sqlite", record_originals=config.record_originals)
        options = {"options": sorted(o.value for o in config.policy.options), "mode": mode,
                   "mappings": config.mappings_dir is not None, **settings}
        self.store.start_run(self.summary.run_id, tool_version=__version__,
                             table_edition=config.policy.table.edition, profile=config.policy.name,
                             options=options, key_fingerprint=config.key.fingerprint(),
                             input_ref=derive(config.key, "gateway-run", mode).hex()[:32])
        self.coordinator = _GatewayCoordinator(config, self.store, self.summary, None)
        self.config = config
        if config.mappings_dir is not None:  # collisions with earlier runs are found per file, not at the end
            for name, table in ((UID_FILE, "uids"), (PATID_FILE, "patids")):
                path = config.mappings_dir / name
                if path.exists():
                    setattr(self.coordinator, table, MappingTable.load(path))

    # -- receiving ------------------------------------------------------------------

    def already_forwarded(self, ref: str, input_sha256: str) -> bool:
        """Resume: this exact input was released and forwarded to this destination before."""
        return self._call(self._already_forwarded, ref, input_sha256)

    def _already_forwarded(self, ref: str, input_sha256: str) -> bool:
        last = self.store.last_result(ref)
        if last is None or last.status not in ("written", "unchanged") or last.input_sha256 != input_sha256:
            return False
        detail = self.store.last_event(ref, "forwarded")
        if detail is None:
            return False
        try:
            sent = json.loads(detail)
        except ValueError:
            return False
        return sent.get("output_sha256") == last.output_sha256 and sent.get("destination") == self.destination

    def sequential_patient_id(self, data: bytes) -> str | None:
        if not self.policy.sequential_patient_ids:
            return None
        return self._call(sequential_patient_id, self.policy, self.key, self.store, BytesIO(data))

    def unchanged(self, ref: str, input_sha256: str, label: str) -> Admitted:
        return self._call(self._unchanged, ref, input_sha256, label)

    def _unchanged(self, ref: str, input_sha256: str, label: str) -> Admitted:
        last = self.store.last_result(ref)
        self.coordinator.record(ref, label, "unchanged", None, input_sha256=input_sha256,
                                output_relpath=last.output_relpath, output_sha256=last.output_sha256)
        return Admitted("unchanged")

    def quarantine(self, ref: str, data: bytes, reason: str, input_sha256: str | None, label: str) -> Admitted:
        return self._call(self._quarantine, ref, data, reason, input_sha256, label)

    def _quarantine(self, ref, data, reason, input_sha256, label) -> Admitted:
        self.coordinator.quarantine_bytes(data, ref, reason)
        self.coordinator.record(ref, label, "quarantined", reason, input_sha256=input_sha256)
        return Admitted("quarantined", reason)

    def release(self, ref: str, data: bytes, cleaned: bytes, record: AuditRecord, label: str) -> Admitted:
        """Record a cleaned file and put it in the outbox; a clash sends the input to quarantine."""
        return self._call(self._release, ref, data, cleaned, record, label)

    def _release(self, ref, data, cleaned, record: AuditRecord, label) -> Admitted:
        try:
            self.coordinator._merge_pairs(record)
        except MedveilError as exc:
            return self._quarantine(ref, data, safe_reason(exc), record.input_sha256, label)
        if record.uid_pairs or record.patient_pairs:
            self._dirty = True
        # Recorded first, then queued: the forwarder only ever sees files the store holds.
        self.coordinator.record_released(ref, label, "written", record)
        entry = self.outbox.put(cleaned, input_ref=ref, output_sha256=record.output_sha256)
        return Admitted("written", entry=entry)

    # -- forwarding -------------------------------------------------------------------

    def flush(self) -> None:
        """Make every mapping pair durable (called before each batch leaves)."""
        self._call(self._flush)

    def _flush(self) -> None:
        if self._dirty and self.mappings_dir is not None:
            write_mappings(self.mappings_dir, self.coordinator.uids.items(), self.coordinator.patids.items())
        self._dirty = False

    def forwarded(self, entry: Entry, detail: str) -> None:
        self._call(self._event, entry, "forwarded", json.dumps(
            {"destination": self.destination, "output_sha256": entry.output_sha256, "answer": detail},
            sort_keys=True))

    def forward_failed(self, entry: Entry, detail: str) -> None:
        self._call(self._event, entry, "forward-retry", json.dumps(
            {"destination": self.destination, "why": detail}, sort_keys=True))

    def _event(self, entry: Entry, category: str, detail: str) -> None:
        self.summary.events[category] += 1
        self.store.add_event(self.summary.run_id, entry.input_ref or None, category, detail)

    def event(self, category: str, detail: str) -> None:
        """A run-level event (an association opened or ended), safe text only."""
        self._call(self._run_event, category, detail)

    def _run_event(self, category: str, detail: str) -> None:
        self.summary.events[category] += 1
        self.store.add_event(self.summary.run_id, None, category, detail)

    # -- closing ----------------------------------------------------------------------

    def close(self) -> RunSummary:
        self._call(self._close)
        self._executor.shutdown(wait=True)
        return self.summary

    def _close(self) -> None:
        try:
            self._flush()
            s = self.summary
            s.files_total = s.written + s.unchanged + s.quarantined + s.skipped
            self.store.finish_run(s.run_id, files_total=s.files_total, files_written=s.written + s.unchanged,
                                  files_quarantined=s.quarantined, files_skipped=s.skipped)
        finally:
            self.store.close()
