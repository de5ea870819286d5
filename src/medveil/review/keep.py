"""The batch coordinator's hook: keep each released file's review material in the workspace.

The run (:mod:`medveil.runner.base`, whatever executes its files) calls
:meth:`ReviewKeeper.keep` once per released file, in input order, with the
worker's account of it (a :class:`medveil.records.FileRecord`, which carries
``review`` and ``relpath``).  The keeper also notes where the run's
release tree is, so that a curator's release of a quarantined file lands
beside the others.
Everything else about review lives in :mod:`medveil.review`.

Review material is a convenience for the curator, never a condition of the
release: when the workspace cannot take it (disk full, a damaged database),
the run goes on and the failure is counted, not raised.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from medveil.review.database import ReviewDatabase, ReviewDatabaseError


class ReviewKeeper:
    """Writes review material for one run; opens the database on first use."""

    def __init__(self, workspace: Path, output: Path | str, run_id: str) -> None:
        self.run_id = run_id
        self.failures = 0
        self._db: ReviewDatabase | None = None
        output = str(output) if "://" in str(output) else str(Path(output).resolve())
        try:  # the run's release tree: where a curator's release of a quarantined file goes
            self._db = ReviewDatabase.open(Path(workspace), create=True)
            assert self._db is not None  # create=True makes the database when it is missing
            self._db.note_run(run_id, output)
        except (OSError, sqlite3.Error, ReviewDatabaseError):
            self.failures += 1

    def keep(self, ref: str, done) -> None:
        """Keep *done*'s review material (if the core made any) under the input's *ref*."""
        material = getattr(done, "review", None)
        if material is None or self._db is None:
            return
        try:
            self._db.keep(ref, self.run_id, getattr(done, "relpath", None), material)
        except (OSError, sqlite3.Error, ReviewDatabaseError):
            self.failures += 1

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def __del__(self) -> None:  # the coordinator has no close step; the connection closes with it
        self.close()
