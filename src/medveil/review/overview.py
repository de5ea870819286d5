"""One account of a workspace: what a run did to each file, and what curators decided since.

``medveil report``, the review page and ``deidentify --report`` all show
this account, so they never disagree.  It is read from the audit store (runs,
file rows, action counts, events) and the review database (header
differences, pictures), and holds only what those hold: statuses, reasons,
counts, box geometry, pseudonymous output paths, and original input paths
only where the run was told to record them (``--record-originals``; shown
only where the caller asks for them).

A file's *state* is its latest row over all runs of the workspace, so a
quarantined file that a curator later released or dropped shows as such,
while the run's own counts stay what the run did.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medveil.errors import MedveilError
from medveil.records import Status
from medveil.review.database import ReviewDatabase
from medveil.store.audit import AuditStore

#: Table E.1-1 action codes as the summary words them.
ACTION_NAMES = {"X": "removed", "Z": "emptied", "D": "dummy value", "K": "kept", "C": "cleaned/shifted",
                "U": "UIDs replaced", "U*": "references remapped", "P": "pseudonymised", "R": "recipe value"}
DECISION = "review-decision"
#: Runs that hold a curator's decision rather than a batch run.
REVIEW_ENGINE = "review"
_REF = re.compile(r"^[0-9a-f]{8,64}$")


class WorkspaceError(MedveilError):
    """The folder is not a medveil workspace, or the run asked for is not in it."""


def is_ref(text: str) -> bool:
    """Whether *text* looks like an input reference (hex), so it is safe in a path or URL."""
    return bool(_REF.match(text))


@dataclass
class FileState:
    """One input of the run, as it stands now."""

    input_ref: str
    status: str  # now: written, unchanged, quarantined, skipped (dropped files are skipped)
    run_status: str  # what the run itself did
    reason: str | None
    output_relpath: str | None
    original_path: str | None
    repairs: list[dict] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)
    pictures: bool = False
    in_quarantine: bool = False

    @property
    def masked(self) -> int:
        return len(self.boxes)

    def as_dict(self, *, originals: bool = False) -> dict[str, Any]:
        out = {"input_ref": self.input_ref, "status": self.status, "run_status": self.run_status,
               "reason": self.reason, "output": self.output_relpath, "repairs": self.repairs,
               "masked_boxes": self.boxes, "decisions": self.decisions, "events": dict(self.events),
               "in_quarantine": self.in_quarantine}
        if originals:
            out["original_path"] = self.original_path
        return out


@dataclass
class Overview:
    """A run and its files; see the module docstring."""

    workspace: Path
    run: dict[str, Any]
    runs: list[dict[str, Any]]
    files: list[FileState]
    output: str | None  # the run's release tree, when the review database knows it

    @property
    def status_counts(self) -> Counter:
        return Counter(f.status for f in self.files)

    @property
    def run_status_counts(self) -> Counter:
        return Counter(f.run_status for f in self.files)

    @property
    def actions(self) -> dict[str, int]:
        return dict(self.run.get("action_counts", {}))

    @property
    def event_counts(self) -> dict[str, int]:
        return dict(self.run.get("event_counts", {}))

    @property
    def repairs_by_attribute(self) -> Counter:
        return Counter(r.get("attribute", "?") for f in self.files for r in f.repairs)

    @property
    def quarantine_reasons(self) -> Counter:
        return Counter(f.reason or "unknown" for f in self.files if f.status == Status.QUARANTINED)

    @property
    def quarantined(self) -> list[FileState]:
        return [f for f in self.files if f.status == Status.QUARANTINED]

    @property
    def masked(self) -> list[FileState]:
        return [f for f in self.files if f.boxes]

    def file(self, input_ref: str) -> FileState | None:
        return next((f for f in self.files if f.input_ref == input_ref), None)

    def summary_dict(self) -> dict[str, Any]:
        return {"workspace": str(self.workspace), "run_id": self.run["run_id"],
                "started_at": self.run.get("started_at"), "finished_at": self.run.get("finished_at"),
                "profile": self.run.get("profile"), "options": self.run.get("options", {}),
                "tool_version": self.run.get("tool_version"), "files": len(self.files),
                "run_status": dict(self.run_status_counts), "status_now": dict(self.status_counts),
                "actions": self.actions, "events": self.event_counts,
                "repairs": dict(self.repairs_by_attribute), "quarantine_reasons": dict(self.quarantine_reasons),
                "masked_files": len(self.masked), "masked_boxes": sum(f.masked for f in self.files)}

    def as_dict(self, *, originals: bool = False) -> dict[str, Any]:
        return {"summary": self.summary_dict(), "files": [f.as_dict(originals=originals) for f in self.files]}


def batch_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if (r.get("options") or {}).get("engine") != REVIEW_ENGINE]


def load(workspace: Path, run_id: str | None = None) -> Overview:
    """The account of *run_id* (a prefix will do), by default the workspace's latest batch run."""
    workspace = Path(workspace)
    store_path = workspace / "audit.sqlite"
    if not store_path.is_file():
        raise WorkspaceError(f"no audit store in {workspace}: not a medveil workspace")
    with AuditStore.open(store_path) as store:
        runs = store.runs()
        run = _pick(runs, run_id)
        summary = store.run_summary(run["run_id"])
        rows = store.file_rows()
        events = store.event_rows()
    order = {r["run_id"]: index for index, r in enumerate(runs)}
    latest: dict[str, dict] = {}
    for row in rows:
        latest[row["input_ref"]] = row
    run_rows = [r for r in rows if r["run_id"] == run["run_id"]]
    run_row_by_ref: dict[str, dict] = {}
    for row in run_rows:  # a ref recorded twice in one run: its last row is what the run did
        run_row_by_ref[row["input_ref"]] = row
    per_ref_events = _events_by_ref(events, order)
    database = ReviewDatabase.open(workspace)
    pictured, output = set(), None
    if database is not None:
        with database:
            pictured = database.refs_with_pictures()
            output = database.outputs().get(run["run_id"])
    quarantine = workspace / "quarantine"
    files = []
    for ref, row in run_row_by_ref.items():
        now = latest[ref]
        chosen = per_ref_events.get(ref, {})
        files.append(FileState(
            input_ref=ref, status=now["status"], run_status=row["status"], reason=now["reason"],
            output_relpath=now["output_relpath"] or row["output_relpath"],
            original_path=now["original_path"] or row["original_path"],
            repairs=chosen.get("repair", []), boxes=chosen.get("pixel-box", []),
            decisions=chosen.get(DECISION, []), events=chosen.get("_counts", Counter()),
            pictures=ref in pictured, in_quarantine=(quarantine / f"{ref}.dcm").is_file()))
    return Overview(workspace=workspace, run=summary, runs=runs, files=files, output=output)


def _pick(runs: list[dict[str, Any]], run_id: str | None) -> dict[str, Any]:
    candidates = batch_runs(runs)
    if run_id:
        matches = [r for r in candidates if r["run_id"].startswith(run_id)]
        if len(matches) != 1:
            raise WorkspaceError("no run with that id in the workspace" if not matches else
                                 "several runs start with that id; give more of it")
        return matches[0]
    if not candidates:
        raise WorkspaceError("the workspace has no run yet")
    return candidates[-1]


def _events_by_ref(events: list[dict], order: dict[str, int]) -> dict[str, dict]:
    """Per input: the events of the latest run that recorded any for it, and every decision.

    A file that a later run found unchanged has its events in the run that wrote it.
    """
    latest_run: dict[str, int] = {}
    for event in events:
        if event["category"] != DECISION and event["input_ref"]:
            latest_run[event["input_ref"]] = max(latest_run.get(event["input_ref"], -1),
                                                 order.get(event["run_id"], -1))
    out: dict[str, dict] = {}
    for event in events:
        ref = event["input_ref"]
        if not ref:
            continue
        bucket = out.setdefault(ref, {"_counts": Counter()})
        category = event["category"]
        if category == DECISION:
            bucket.setdefault(DECISION, []).append(_json(event["detail"]))
            continue
        if order.get(event["run_id"], -1) != latest_run.get(ref):
            continue
        bucket["_counts"][category] += 1
        if category in ("repair", "pixel-box"):
            bucket.setdefault(category, []).append(_json(event["detail"]))
    return out


def _json(detail: str | None) -> dict:
    try:
        value = json.loads(detail or "{}")
    except ValueError:
        return {"detail": detail}
    return value if isinstance(value, dict) else {"detail": value}
