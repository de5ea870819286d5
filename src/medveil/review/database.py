"""The workspace's review database: ``WORKSPACE/review/review.sqlite``.

One row per input (the latest run that released it wins): its header
differences, with values only as the OUTPUT holds them, and for images whose
pixels were masked, before/after pictures of the frames and of each box.  The
"before" pictures are original pixels, which is why they live here and
nowhere else: the folder is created 0700 and the database 0600 (SQLite gives
its -wal and -shm files the database's mode), like the audit store beside it.

Why a database and not files: a run of 100,000 inputs would otherwise leave
100,000 small files in the workspace, and a row per input replaces the
previous run's material for that input in one transaction.  Pictures are
bounded in size by :mod:`medveil.review.capture`, so they sit in the rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from medveil.errors import MedveilError
from medveil.review.capture import ReviewMaterial
from medveil.store.audit import utc_now

FOLDER = "review"
FILENAME = "review.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    output TEXT NOT NULL
);
CREATE TABLE files (
    input_ref TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    output_relpath TEXT,
    changes TEXT NOT NULL,
    changes_left_out INTEGER NOT NULL,
    note TEXT,
    kept_at TEXT NOT NULL
);
CREATE TABLE pictures (
    input_ref TEXT NOT NULL,
    number INTEGER NOT NULL,
    frame INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('frame', 'box')),
    frame_rows INTEGER NOT NULL,
    frame_columns INTEGER NOT NULL,
    region TEXT NOT NULL,
    boxes TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    before_png BLOB NOT NULL,
    after_png BLOB NOT NULL,
    PRIMARY KEY (input_ref, number)
);
"""


class ReviewDatabaseError(MedveilError):
    """The review database cannot be opened or is not one."""


@dataclass(frozen=True)
class PictureInfo:
    """One before/after pair as the pages show it (the PNGs are fetched by number)."""

    number: int
    frame: int
    kind: str  # "frame": the whole frame downscaled; "box": one masked box enlarged
    frame_rows: int
    frame_columns: int
    region: tuple[int, int, int, int]  # what the picture covers, in frame pixels
    boxes: tuple[tuple[int, int, int, int], ...]  # masked boxes on that frame, in frame pixels
    width: int
    height: int


@dataclass(frozen=True)
class FileReview:
    """The review material kept for one input."""

    input_ref: str
    run_id: str
    output_relpath: str | None
    changes: list[dict]
    changes_left_out: int
    note: str | None
    pictures: list[PictureInfo]


def location(workspace: Path) -> Path:
    return Path(workspace) / FOLDER / FILENAME


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        os.chmod(folder, 0o700)


class ReviewDatabase:
    """One connection to a workspace's review database."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, workspace: Path, *, create: bool = False) -> ReviewDatabase | None:
        """Open the database; None when it does not exist and *create* is false."""
        path = location(workspace)
        if not path.exists():
            if not create:
                return None
            _private_folder(path.parent)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        try:
            # The gateway's runner may write from a worker thread and close from another;
            # calls never overlap (one keeper per run), so sharing the connection is safe.
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                    raise ReviewDatabaseError(f"{path.name} is not a medveil review database")
                db.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            elif version != SCHEMA_VERSION:
                raise ReviewDatabaseError(f"review database schema version {int(version)} is not supported")
        except sqlite3.DatabaseError as exc:
            raise ReviewDatabaseError(f"{path.name} is not a usable review database ({type(exc).__name__})") \
                from None
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewDatabase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------

    def note_run(self, run_id: str, output: str) -> None:
        """Where a run wrote its release tree (the review page reads outputs from there)."""
        self._db.execute("INSERT OR REPLACE INTO runs (run_id, output) VALUES (?, ?)", (run_id, output))

    def keep(self, input_ref: str, run_id: str, output_relpath: str | None, material: ReviewMaterial) -> None:
        """Replace what is kept for *input_ref* with *material*, in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM pictures WHERE input_ref = ?", (input_ref,))
            self._db.execute(
                "INSERT OR REPLACE INTO files (input_ref, run_id, output_relpath, changes, changes_left_out,"
                " note, kept_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (input_ref, run_id, output_relpath,
                 json.dumps([c.as_dict() for c in material.changes], separators=(",", ":")),
                 material.changes_left_out, material.note, utc_now()))
            number = 0
            for view in material.views:
                for kind, picture in [("frame", view.whole)] + [("box", crop) for crop in view.crops]:
                    self._db.execute(
                        "INSERT INTO pictures (input_ref, number, frame, kind, frame_rows, frame_columns, region,"
                        " boxes, width, height, before_png, after_png) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (input_ref, number, view.frame, kind, view.rows, view.columns, json.dumps(picture.region),
                         json.dumps(view.boxes), picture.width, picture.height, picture.before_png,
                         picture.after_png))
                    number += 1
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reading ------------------------------------------------------------------------------

    def outputs(self) -> dict[str, str]:
        """run id -> the release tree it wrote."""
        return {row["run_id"]: row["output"] for row in self._db.execute("SELECT run_id, output FROM runs")}

    def file(self, input_ref: str) -> FileReview | None:
        row = self._db.execute("SELECT * FROM files WHERE input_ref = ?", (input_ref,)).fetchone()
        if row is None:
            return None
        return FileReview(input_ref=row["input_ref"], run_id=row["run_id"], output_relpath=row["output_relpath"],
                          changes=json.loads(row["changes"]), changes_left_out=row["changes_left_out"],
                          note=row["note"], pictures=self.pictures(input_ref))

    def pictures(self, input_ref: str) -> list[PictureInfo]:
        rows = self._db.execute(
            "SELECT number, frame, kind, frame_rows, frame_columns, region, boxes, width, height FROM pictures"
            " WHERE input_ref = ? ORDER BY number", (input_ref,))
        return [PictureInfo(number=r["number"], frame=r["frame"], kind=r["kind"], frame_rows=r["frame_rows"],
                            frame_columns=r["frame_columns"], region=tuple(json.loads(r["region"])),
                            boxes=tuple(tuple(b) for b in json.loads(r["boxes"])), width=r["width"],
                            height=r["height"]) for r in rows]

    def picture_png(self, input_ref: str, number: int, side: str) -> bytes | None:
        """The PNG of one picture, ``side`` "before" (original pixels) or "after"."""
        column = {"before": "before_png", "after": "after_png"}[side]
        row = self._db.execute(f"SELECT {column} FROM pictures WHERE input_ref = ? AND number = ?",
                               (input_ref, number)).fetchone()
        return None if row is None else bytes(row[0])

    def refs_with_pictures(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT input_ref FROM pictures")}
