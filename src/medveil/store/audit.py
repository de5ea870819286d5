"""The private workspace's audit store: one embedded SQLite database.

It answers three questions after the fact: which runs happened with which
settings, what became of every input file (so an interrupted run can resume
without redoing finished work), and how often each de-identification action
fired.  It deliberately holds no original PHI: inputs are identified by an
opaque keyed hash (``input_ref``) computed by the caller, reasons and events
are safe caller-provided strings.  Original paths are stored only when the
store is opened with ``record_originals=True``, an explicit opt-in for sites
that need to trace an output back to its source.

Why SQLite: it is in the standard library, a single file in the workspace, and
its WAL journal gives crash safety with cheap per-file commits; every call to
:meth:`AuditStore.record_file` is its own committed transaction, so after a
crash the store says exactly which files were finished.  ``synchronous=NORMAL``
keeps that cheap: a power cut may lose the last few commits, which only means
those few files are processed again on resume.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from medveil.errors import MedveilError
from medveil.records import Status

SCHEMA_VERSION = 3
#: The ``files.status`` column's words: :class:`medveil.records.Status`'s values (never renamed: old
#: workspaces hold them).
STATUSES = tuple(status.value for status in Status)

_SCHEMA = f"""
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    tool_version TEXT,
    table_edition TEXT,
    profile TEXT,
    options TEXT,
    key_fingerprint TEXT,
    input_ref TEXT,
    files_total INTEGER,
    files_written INTEGER,
    files_quarantined INTEGER,
    files_skipped INTEGER,
    outcome TEXT
);
CREATE TABLE files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    input_ref TEXT NOT NULL,
    input_sha256 TEXT,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    reason TEXT,
    output_relpath TEXT,
    output_sha256 TEXT,
    original_path TEXT,
    settings TEXT,
    journaled INTEGER
);
CREATE INDEX files_by_input ON files(input_ref, seq);
CREATE INDEX files_by_run ON files(run_id);
CREATE TABLE action_counts (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    action TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, action)
);
CREATE TABLE sequence_numbers (
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    number INTEGER NOT NULL,
    PRIMARY KEY (kind, ref),
    UNIQUE (kind, number)
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    input_ref TEXT,
    category TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX events_by_run ON events(run_id);
"""

#: Added in schema version 2: keyed fingerprints of input identifiers, for ``medveil verify``.
_FINGERPRINTS = """
CREATE TABLE IF NOT EXISTS identifier_fingerprints (
    digest TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    PRIMARY KEY (digest, key_fingerprint)
)
"""
_SCHEMA += _FINGERPRINTS

#: Added in schema version 3: what decided each output (for resuming only when nothing changed),
#: whether its mapping pairs reached the pair journal, and how a run ended.
_VERSION_3 = (
    "ALTER TABLE files ADD COLUMN settings TEXT",
    "ALTER TABLE files ADD COLUMN journaled INTEGER",
    "ALTER TABLE runs ADD COLUMN outcome TEXT",
)

#: An index for :meth:`AuditStore.last_event` (the gateway's resume); created on open, old stores included.
_EVENTS_BY_INPUT = "CREATE INDEX IF NOT EXISTS events_by_input ON events(input_ref, category, seq)"

_RUN_COLUMNS = ("run_id", "started_at", "finished_at", "tool_version", "table_edition",
                "profile", "options", "key_fingerprint", "input_ref", "files_total",
                "files_written", "files_quarantined", "files_skipped", "outcome")


class AuditStoreError(MedveilError):
    """The audit store cannot be opened or a request does not fit its contents."""


@dataclass(frozen=True)
class StoredResult:
    """What the store knows about the latest processing of one input."""

    run_id: str
    input_ref: str
    status: Status
    input_sha256: str | None
    output_relpath: str | None
    output_sha256: str | None
    reason: str | None
    #: Fingerprint of everything that decided the output (policy, key, version, table edition).
    settings: str | None = None
    #: Whether the file's mapping pairs went to the workspace's pair journal.
    journaled: bool = False


def utc_now() -> str:
    """ISO 8601 UTC timestamp with millisecond precision and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditStore:
    """Context manager around one SQLite connection; use :meth:`open`."""

    def __init__(self, connection: sqlite3.Connection, *, record_originals: bool = False) -> None:
        self._db = connection
        self.record_originals = record_originals

    @classmethod
    def open(cls, path: Path | str, *, record_originals: bool = False) -> AuditStore:
        """Open (creating if needed) the store at *path*.

        A new database file is made readable by its owner only, since with
        ``record_originals`` it may hold original paths.
        """
        path = Path(path)
        is_new = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot open audit store ({type(exc).__name__})") from None
        try:
            if is_new:
                os.chmod(path, 0o600)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            _ensure_schema(db)
            try:
                db.execute(_EVENTS_BY_INPUT)
            except sqlite3.OperationalError:
                pass  # a read-only store: lookups scan instead
        except sqlite3.DatabaseError as exc:
            db.close()
            raise AuditStoreError(
                f"{path.name} is not a usable audit store ({type(exc).__name__})") from None
        except BaseException:
            db.close()
            raise
        return cls(db, record_originals=record_originals)

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def batch(self) -> Iterator[AuditStore]:
        """Group several writes into one transaction: one commit per file, not per row."""
        with self._transaction():
            yield self

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:  # inside batch(): the outer transaction commits
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------

    def start_run(self, run_id: str, *, tool_version: str, table_edition: str, profile: str,
                  options: Mapping[str, Any], key_fingerprint: str, input_ref: str) -> None:
        """Record the start of a run and the settings that shape its output."""
        options_json = json.dumps(dict(options), sort_keys=True, separators=(",", ":"),
                                  default=str)
        try:
            self._db.execute(
                "INSERT INTO runs (run_id, started_at, tool_version, table_edition, profile,"
                " options, key_fingerprint, input_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, utc_now(), tool_version, table_edition, profile, options_json,
                 key_fingerprint, input_ref))
        except sqlite3.IntegrityError:
            raise AuditStoreError("a run with this run id is already recorded") from None

    def finish_run(self, run_id: str, *, files_total: int, files_written: int,
                   files_quarantined: int, files_skipped: int, outcome: str = "finished") -> None:
        """Stamp the end time, the totals and how the run ended ("finished", "interrupted").

        A run without an end time was killed.
        """
        cursor = self._db.execute(
            "UPDATE runs SET finished_at = ?, files_total = ?, files_written = ?,"
            " files_quarantined = ?, files_skipped = ?, outcome = ? WHERE run_id = ?",
            (utc_now(), files_total, files_written, files_quarantined, files_skipped, outcome, run_id))
        if cursor.rowcount != 1:
            raise AuditStoreError("unknown run id")

    def record_file(self, run_id: str, *, input_ref: str, input_sha256: str | None,
                    status: Status | str, reason: str | None = None, output_relpath: str | None = None,
                    output_sha256: str | None = None, original_path: str | None = None,
                    settings: str | None = None, journaled: bool = False) -> None:
        """Record the outcome for one input, committed immediately.

        *original_path* is dropped unless the store was opened with
        ``record_originals=True``: the default must be safe even when a caller
        passes everything it has.
        """
        if status not in STATUSES:
            raise AuditStoreError(f"file status must be one of {', '.join(STATUSES)}")
        stored_original = str(original_path) if (self.record_originals and original_path) else None
        try:
            self._db.execute(
                "INSERT INTO files (run_id, input_ref, input_sha256, status, reason, output_relpath,"
                " output_sha256, original_path, settings, journaled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, input_ref, input_sha256, status, reason, output_relpath, output_sha256,
                 stored_original, settings, int(journaled)))
        except sqlite3.IntegrityError:
            raise AuditStoreError("unknown run id") from None

    def add_action_counts(self, run_id: str, counts: Mapping[str, int]) -> None:
        """Add *counts* to the run's running totals per action, in one transaction."""
        rows = [(run_id, action, int(count)) for action, count in counts.items()]
        if not rows:
            return
        try:
            with self._transaction() as db:
                db.executemany(
                    "INSERT INTO action_counts (run_id, action, count) VALUES (?, ?, ?)"
                    " ON CONFLICT (run_id, action) DO UPDATE SET count = count + excluded.count",
                    rows)
        except sqlite3.IntegrityError:
            raise AuditStoreError("unknown run id") from None

    def add_event(self, run_id: str, input_ref: str | None, category: str, detail: str) -> None:
        """Record a per-file decision worth explaining later (safe text only)."""
        try:
            self._db.execute(
                "INSERT INTO events (run_id, input_ref, category, detail) VALUES (?, ?, ?, ?)",
                (run_id, input_ref, category, detail))
        except sqlite3.IntegrityError:
            raise AuditStoreError("unknown run id") from None

    def add_fingerprints(self, key_fingerprint: str, digests: list[str]) -> None:
        """Remember keyed fingerprints of input identifiers (never the identifiers)."""
        self._db.executemany(
            "INSERT OR IGNORE INTO identifier_fingerprints (digest, key_fingerprint) VALUES (?, ?)",
            [(digest, key_fingerprint) for digest in digests])

    def fingerprints(self, key_fingerprint: str) -> set[str]:
        rows = self._db.execute("SELECT digest FROM identifier_fingerprints WHERE key_fingerprint = ?",
                                (key_fingerprint,))
        return {row[0] for row in rows}

    def fingerprint_keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT key_fingerprint FROM identifier_fingerprints")}

    def sequence_number(self, kind: str, ref: str) -> int:
        """The number given to *ref* (an opaque keyed reference), assigning the next one if new.

        Sequential pseudonyms (MV0001, MV0002, ...) are the one place where
        medveil needs shared state: the numbers live here, keyed by a hash of
        the original, so the same workspace keeps giving a patient the same number.
        """
        with self._transaction() as db:
            row = db.execute("SELECT number FROM sequence_numbers WHERE kind = ? AND ref = ?",
                             (kind, ref)).fetchone()
            if row is not None:
                return int(row[0])
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM sequence_numbers WHERE kind = ?",
                                (kind,)).fetchone()[0]
            db.execute("INSERT INTO sequence_numbers (kind, ref, number) VALUES (?, ?, ?)",
                       (kind, ref, number))
            return int(number)

    # -- reading ----------------------------------------------------------------

    def last_result(self, input_ref: str) -> StoredResult | None:
        """The most recent outcome for *input_ref* over all runs, for resuming."""
        row = self._db.execute(
            "SELECT run_id, input_ref, status, input_sha256, output_relpath, output_sha256,"
            " reason, settings, journaled FROM files WHERE input_ref = ? ORDER BY seq DESC LIMIT 1",
            (input_ref,)).fetchone()
        if row is None:
            return None
        fields = dict(row)
        fields["journaled"] = bool(fields["journaled"])
        fields["status"] = Status(fields["status"])
        return StoredResult(**fields)

    def output_paths(self) -> set[str]:
        """Every release-tree path any run recorded as written (to tell medveil's files from others)."""
        rows = self._db.execute("SELECT DISTINCT output_relpath FROM files WHERE output_relpath IS NOT NULL")
        return {row[0] for row in rows}

    def last_event(self, input_ref: str, category: str) -> str | None:
        """The detail of the latest *category* event recorded for *input_ref*, over all runs.

        The gateway asks whether a file was forwarded (and where to) before it
        skips a re-sent instance on resume.
        """
        row = self._db.execute(
            "SELECT detail FROM events WHERE input_ref = ? AND category = ? ORDER BY seq DESC LIMIT 1",
            (input_ref, category)).fetchone()
        return None if row is None else row[0]

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """The run's row plus per-status file counts, action counts and event counts."""
        row = self._db.execute(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise AuditStoreError("unknown run id")
        summary = _run_dict(row)
        summary["status_counts"] = {
            r["status"]: r["n"] for r in self._db.execute(
                "SELECT status, COUNT(*) AS n FROM files WHERE run_id = ?"
                " GROUP BY status ORDER BY status", (run_id,))}
        summary["action_counts"] = {
            r["action"]: r["count"] for r in self._db.execute(
                "SELECT action, count FROM action_counts WHERE run_id = ? ORDER BY action",
                (run_id,))}
        summary["event_counts"] = {
            r["category"]: r["n"] for r in self._db.execute(
                "SELECT category, COUNT(*) AS n FROM events WHERE run_id = ?"
                " GROUP BY category ORDER BY category", (run_id,))}
        return summary

    def runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first."""
        rows = self._db.execute(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY started_at, rowid")
        return [_run_dict(r) for r in rows]

    def file_rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every file row in recording order (of one run, or of all); for reports."""
        query = ("SELECT seq, run_id, input_ref, input_sha256, status, reason, output_relpath, output_sha256,"
                 " original_path FROM files")
        rows = self._db.execute(query + " WHERE run_id = ? ORDER BY seq", (run_id,)) if run_id else \
            self._db.execute(query + " ORDER BY seq")
        return [dict(r) for r in rows]

    def event_rows(self, input_ref: str | None = None) -> list[dict[str, Any]]:
        """Every event in recording order (of one input, or of all); for reports."""
        query = "SELECT seq, run_id, input_ref, category, detail FROM events"
        rows = self._db.execute(query + " WHERE input_ref = ? ORDER BY seq", (input_ref,)) if input_ref else \
            self._db.execute(query + " ORDER BY seq")
        return [dict(r) for r in rows]


def _ensure_schema(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version in (1, 2):  # later versions only added a table and columns
        db.execute("BEGIN IMMEDIATE")
        if version == 1:
            db.execute(_FINGERPRINTS)
        for statement in _VERSION_3:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
        return
    if version != 0:
        raise AuditStoreError(
            f"audit store schema version {int(version)} is not supported "
            f"(this medveil expects {SCHEMA_VERSION})")
    if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
        raise AuditStoreError("database file is not a medveil audit store")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["options"] = json.loads(out["options"]) if out["options"] else {}
    return out
