"""The SQLite audit store: schema, records, resuming, no PHI by default."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest

from medveil.errors import MedveilError
from medveil.store.audit import SCHEMA_VERSION, AuditStore, AuditStoreError, StoredResult

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ORIGINAL = "/data/DOE^JOHN/study/IM0001.dcm"


def _start(store: AuditStore, run_id: str = "run-1") -> None:
    store.start_run(run_id, tool_version="0.1.0", table_edition="2024c", profile="basic",
                    options={"retain_dates": False, "workers": 2}, key_fingerprint="fp:abcd",
                    input_ref="ref:root")


def test_schema_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "ws" / "audit.sqlite"
    with AuditStore.open(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"runs", "files", "action_counts", "events"} <= tables
        columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
        assert {"run_id", "input_ref", "input_sha256", "status", "reason", "output_relpath",
                "output_sha256", "original_path"} <= columns
        run_columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        assert {"run_id", "started_at", "finished_at", "tool_version", "table_edition", "profile",
                "options", "key_fingerprint", "input_ref", "files_total", "files_written",
                "files_quarantined", "files_skipped"} <= run_columns
        with pytest.raises(sqlite3.IntegrityError):  # CHECK constraint on status
            db.execute("INSERT INTO runs (run_id, started_at) VALUES ('r', 'x')")
            db.execute("INSERT INTO files (run_id, input_ref, status) VALUES ('r', 'i', 'bogus')")
    finally:
        db.close()


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditStore.open(path) as store:
        _start(store)
    with AuditStore.open(path) as store:
        assert [r["run_id"] for r in store.runs()] == ["run-1"]


def test_refuses_foreign_database_and_future_schema(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE something (x)")
    db.commit()
    db.close()
    with pytest.raises(AuditStoreError):
        AuditStore.open(other)

    future = tmp_path / "future.sqlite"
    db = sqlite3.connect(future)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(AuditStoreError, match="schema version 99"):
        AuditStore.open(future)

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(AuditStoreError):
        AuditStore.open(garbage)


def test_run_lifecycle_and_summary(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "audit.sqlite") as store:
        _start(store)
        store.record_file("run-1", input_ref="ref:a", input_sha256="aa", status="written",
                          output_relpath="S1/ST1/SE1/IM1.dcm", output_sha256="bb")
        store.record_file("run-1", input_ref="ref:b", input_sha256="cc", status="quarantined",
                          reason="may carry burned-in text")
        store.record_file("run-1", input_ref="ref:c", input_sha256=None, status="skipped",
                          reason="not DICOM")
        store.add_event("run-1", "ref:a", "date", "invalid date emptied")
        store.add_event("run-1", "ref:a", "date", "invalid date emptied")
        store.finish_run("run-1", files_total=3, files_written=1, files_quarantined=1,
                         files_skipped=1)
        summary = store.run_summary("run-1")
    assert summary["run_id"] == "run-1"
    assert summary["profile"] == "basic" and summary["table_edition"] == "2024c"
    assert summary["options"] == {"retain_dates": False, "workers": 2}
    assert ISO_UTC.match(summary["started_at"]) and ISO_UTC.match(summary["finished_at"])
    assert summary["files_total"] == 3 and summary["files_written"] == 1
    assert summary["status_counts"] == {"quarantined": 1, "skipped": 1, "written": 1}
    assert summary["event_counts"] == {"date": 2}


def test_unknown_run_and_bad_status(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "audit.sqlite") as store:
        with pytest.raises(AuditStoreError):
            store.record_file("nope", input_ref="r", input_sha256="x", status="written")
        with pytest.raises(AuditStoreError):
            store.finish_run("nope", files_total=0, files_written=0, files_quarantined=0,
                             files_skipped=0)
        with pytest.raises(AuditStoreError):
            store.run_summary("nope")
        _start(store)
        with pytest.raises(AuditStoreError):
            _start(store)  # duplicate run id
        with pytest.raises(MedveilError):
            store.record_file("run-1", input_ref="r", input_sha256="x", status="done")


def test_last_result_is_most_recent_over_runs(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditStore.open(path) as store:
        assert store.last_result("ref:a") is None
        _start(store, "run-1")
        store.record_file("run-1", input_ref="ref:a", input_sha256="aa", status="quarantined",
                          reason="cannot be parsed as DICOM")
    # A new process (resume) sees what the crashed one committed.
    with AuditStore.open(path) as store:
        record = store.last_result("ref:a")
        assert record == StoredResult(run_id="run-1", input_ref="ref:a", status="quarantined",
                                    input_sha256="aa", output_relpath=None, output_sha256=None,
                                    reason="cannot be parsed as DICOM")
        _start(store, "run-0")  # run ids need not sort by time
        store.record_file("run-0", input_ref="ref:a", input_sha256="aa", status="written",
                          output_relpath="x/y.dcm", output_sha256="bb")
        latest = store.last_result("ref:a")
        assert latest is not None
        assert (latest.run_id, latest.status, latest.output_relpath, latest.output_sha256) == \
            ("run-0", "written", "x/y.dcm", "bb")
        assert store.last_result("ref:other") is None


def test_record_file_is_committed_immediately(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    store = AuditStore.open(path)
    _start(store)
    store.record_file("run-1", input_ref="ref:a", input_sha256="aa", status="written",
                      output_relpath="o.dcm", output_sha256="bb")
    # Read through an independent connection while the store is still open,
    # as a resumed process would after a crash.
    other = sqlite3.connect(path)
    try:
        assert other.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 1
    finally:
        other.close()
        store.close()


def test_original_path_only_with_record_originals(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditStore.open(path) as store:
        _start(store)
        store.record_file("run-1", input_ref="ref:a", input_sha256="aa", status="written",
                          original_path=ORIGINAL)
    with AuditStore.open(path, record_originals=True) as store:
        _start(store, "run-2")
        store.record_file("run-2", input_ref="ref:a", input_sha256="aa", status="unchanged",
                          original_path=ORIGINAL)
    db = sqlite3.connect(path)
    try:
        rows = dict(db.execute("SELECT run_id, original_path FROM files").fetchall())
    finally:
        db.close()
    assert rows == {"run-1": None, "run-2": ORIGINAL}
    # Without the opt-in, nothing of the original path reaches the file at all.
    path2 = tmp_path / "clean.sqlite"
    with AuditStore.open(path2) as store:
        _start(store)
        store.record_file("run-1", input_ref="ref:a", input_sha256="aa", status="written",
                          original_path=ORIGINAL)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("clean.sqlite*"))
    assert b"DOE^JOHN" not in raw


def test_action_counts_upsert(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "audit.sqlite") as store:
        _start(store)
        store.add_action_counts("run-1", {"X": 3, "D": 1})
        store.add_action_counts("run-1", {"X": 2, "U": 4})
        store.add_action_counts("run-1", {})
        _start(store, "run-2")
        store.add_action_counts("run-2", {"X": 1})
        assert store.run_summary("run-1")["action_counts"] == {"D": 1, "U": 4, "X": 5}
        assert store.run_summary("run-2")["action_counts"] == {"X": 1}
        with pytest.raises(AuditStoreError):
            store.add_action_counts("nope", {"X": 1})
        assert store.run_summary("run-1")["action_counts"]["X"] == 5


def test_runs_lists_all(tmp_path: Path) -> None:
    with AuditStore.open(tmp_path / "audit.sqlite") as store:
        _start(store, "a")
        _start(store, "b")
        store.finish_run("a", files_total=0, files_written=0, files_quarantined=0,
                         files_skipped=0)
        runs = store.runs()
    assert [r["run_id"] for r in runs] == ["a", "b"]
    assert runs[0]["finished_at"] is not None and runs[1]["finished_at"] is None
    assert runs[0]["key_fingerprint"] == "fp:abcd"


def test_last_event_is_the_latest_of_its_category_for_one_input(tmp_path):
    from medveil.store.audit import AuditStore

    with AuditStore.open(tmp_path / "audit.sqlite") as store:
        for run in ("r1", "r2"):
            store.start_run(run, tool_version="t", table_edition="e", profile="p", options={},
                            key_fingerprint="k", input_ref="i")
        assert store.last_event("a", "forwarded") is None
        store.add_event("r1", "a", "forwarded", "first")
        store.add_event("r1", "b", "forwarded", "other input")
        store.add_event("r2", "a", "forward-retry", "other category")
        store.add_event("r2", "a", "forwarded", "second")
        assert store.last_event("a", "forwarded") == "second"
        assert store.last_event("b", "forwarded") == "other input"
        assert store.last_event("a", "forward-retry") == "other category"
