"""A curator's decision on a quarantined file: release it after a fix, or drop it.

**Release** means: run the whole per-file pipeline again
(:func:`medveil.runner.core.deidentify_bytes`, with the run's key and the
policy the reviewer was started with) on the quarantine copy,
``WORKSPACE/quarantine/<ref>.dcm``, which the curator may have fixed in place
(for example with dcmodify or pydicom: add a missing UID, remove a broken
attribute).  The file is released only if that run passes, exactly as a batch
run would have released it: it is written atomically into the run's release
tree, its mapping pairs are merged into the mapping files when the run kept
them, its events and fingerprints go into the audit store, and its quarantine
copy is removed.  If it does not pass, it stays in quarantine with the new
reason.  A release is refused before anything is written when the key or the
policy differs from the run's (the release would not match the rest of the
tree), when the run wrote mapping files and none are given, or when another
file already holds the output's name.

**Drop** removes the quarantine copy; the file is not released.

Every decision, including a refused release, is recorded in the audit store
as a run of its own (engine "review": a start time, the file's row) with a
``review-decision`` event that carries the decision, its UTC timestamp and,
for a refusal, the reason (safe text, never a value).  A file's state in
:mod:`medveil.review.overview` is its latest row, so a decision shows at once.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pydicom

from medveil._version import __version__
from medveil.engine.deidentify import patient_key
from medveil.errors import MedveilError, safe_reason
from medveil.policy import Policy
from medveil.policy.fingerprint import settings_fingerprint
from medveil.pseudonym import Key, derive
from medveil.quiet import silenced
from medveil.review.keep import ReviewKeeper
from medveil.review.overview import DECISION, REVIEW_ENGINE, is_ref
from medveil.runner.core import deidentify_bytes
from medveil.runner.process import TMP_PREFIX
from medveil.store.audit import AuditStore, utc_now
from medveil.store.mappings import MappingCollisionError, write_mappings

DROPPED = "dropped by a curator in review"



class DecisionError(MedveilError):
    """The decision cannot be carried out (nothing was changed)."""


@dataclass(frozen=True)
class Outcome:
    decision: str  # "released", "release-refused" or "dropped"
    at: str
    reason: str | None = None
    output_relpath: str | None = None


@dataclass(frozen=True)
class Reviewer:
    """What releasing needs besides the workspace: the run's key and policy, and where mappings go."""

    key: Key | None = None
    policy: Policy | None = None
    mappings_dir: Path | None = None
    output: str | None = None  # the release tree; default: where the run wrote


def _quarantined(store: AuditStore, workspace: Path, ref: str) -> dict:
    if not is_ref(ref):
        raise DecisionError("not an input reference")
    last = store.last_result(ref)
    if last is None or last.status != "quarantined":
        raise DecisionError("that file is not in quarantine")
    if not (workspace / "quarantine" / f"{ref}.dcm").is_file():
        raise DecisionError("the quarantine copy of that file is missing")
    run = next((r for r in store.runs() if r["run_id"] == last.run_id), None)
    if run is None:
        raise DecisionError("the run that quarantined that file is not recorded")
    return run


def _record(store: AuditStore, run: dict, ref: str, status: str, detail: dict, *, reason: str | None = None,
            done=None) -> str:
    """One decision as a run of its own; returns its run id."""
    run_id = uuid.uuid4().hex
    recorded = run.get("options") or {}
    options = {"engine": REVIEW_ENGINE, "decision": detail["decision"], "of_run": run["run_id"],
               "options": recorded.get("options", []), "settings": recorded.get("settings")}
    store.start_run(run_id, tool_version=__version__, table_edition=run.get("table_edition") or "",
                    profile=run.get("profile") or "", options=options,
                    key_fingerprint=run.get("key_fingerprint") or "", input_ref=ref)
    with store.batch():
        if done is not None:
            if done.counts:
                store.add_action_counts(run_id, dict(done.counts))
            for category, event_detail in done.events:
                store.add_event(run_id, ref, category, event_detail)
            if done.fingerprints:
                store.add_fingerprints(run.get("key_fingerprint") or "", done.fingerprints)
        store.add_event(run_id, ref, DECISION, json.dumps(detail, sort_keys=True))
        store.record_file(run_id, input_ref=ref, status=status, reason=reason,
                          input_sha256=getattr(done, "input_sha256", None),
                          output_relpath=getattr(done, "relpath", None),
                          output_sha256=getattr(done, "output_sha256", None),
                          settings=recorded.get("settings") if status == "written" else None)
    store.finish_run(run_id, files_total=1, files_written=int(status == "written"),
                     files_quarantined=int(status == "quarantined"), files_skipped=int(status == "skipped"))
    return run_id


def _detail(decision: str, at: str, reason: str | None = None) -> dict:
    detail = {"decision": decision, "at": at, "by": _account()}
    if reason:
        detail["reason"] = reason
    return detail


def _account() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001  (no account name in a container is not an error)
        return "unknown"


def drop(workspace: Path, ref: str) -> Outcome:
    """Remove the quarantine copy of *ref* and record the decision."""
    workspace = Path(workspace)
    with AuditStore.open(workspace / "audit.sqlite") as store:
        run = _quarantined(store, workspace, ref)
        at = utc_now()
        _record(store, run, ref, "skipped", _detail("dropped", at), reason=DROPPED)
    for name in (f"{ref}.dcm", f"{ref}.reason.txt"):
        (workspace / "quarantine" / name).unlink(missing_ok=True)
    return Outcome("dropped", at)


def release(workspace: Path, ref: str, reviewer: Reviewer, outputs: dict[str, str]) -> Outcome:
    """Run the pipeline on the (fixed) quarantine copy of *ref*; release it only if it passes.

    *outputs* maps run ids to their release trees (from the review database).
    Raises :class:`DecisionError` when the release cannot even be tried.
    """
    workspace = Path(workspace)
    if reviewer.key is None or reviewer.policy is None:
        raise DecisionError("releasing needs the run's key and policy: start the review with --key-file "
                            "and the run's --profile/--option/--recipe")
    with AuditStore.open(workspace / "audit.sqlite") as store:
        run = _quarantined(store, workspace, ref)
        _check_same_run_settings(run, reviewer)
        output = reviewer.output or outputs.get(run["run_id"])
        if not output:
            raise DecisionError("where the run's release tree is is not recorded: start the review with --output")
        if "://" in output:
            raise DecisionError("releasing into a URL is not supported from the review page: rerun the batch")
        if (run.get("options") or {}).get("mappings") and reviewer.mappings_dir is None:
            raise DecisionError("the run wrote mapping files: start the review with --mappings DIR")
        copy = workspace / "quarantine" / f"{ref}.dcm"
        data = copy.read_bytes()
        patient_id = _patient_number(store, reviewer, copy)
        out, record = deidentify_bytes(data, reviewer.policy, reviewer.key, patient_id=patient_id)
        at = utc_now()
        if record.status != "written":
            reason = record.reason or "unknown"
            _record(store, run, ref, "quarantined", _detail("release-refused", at, reason), reason=reason)
            return Outcome("release-refused", at, reason=reason)
        try:
            # As in the batch runner: pairs go in before the file, so a failure in between
            # leaves a few pairs of a file not written, never a file without its pairs.
            _check_free(Path(output), record.relpath, record.output_sha256)
            if reviewer.mappings_dir is not None:
                write_mappings(reviewer.mappings_dir, record.uid_pairs, record.patient_pairs)
            _write(Path(output), record.relpath, out, record.output_sha256)
        except (DecisionError, MappingCollisionError) as exc:
            reason = safe_reason(exc) if isinstance(exc, DecisionError) else \
                "pseudonym collision with another input; use more digits"
            _record(store, run, ref, "quarantined", _detail("release-refused", at, reason), reason=reason)
            return Outcome("release-refused", at, reason=reason)
        run_id = _record(store, run, ref, "written", _detail("released", at), done=record)
    keeper = ReviewKeeper(workspace, output, run_id)
    keeper.keep(ref, record)
    keeper.close()
    for name in (f"{ref}.dcm", f"{ref}.reason.txt"):
        (workspace / "quarantine" / name).unlink(missing_ok=True)
    return Outcome("released", at, output_relpath=record.relpath)


def _check_same_run_settings(run: dict, reviewer: Reviewer) -> None:
    """The release must be what the run would have written: same key, same settings."""
    if run.get("key_fingerprint") and reviewer.key.fingerprint() != run["key_fingerprint"]:
        raise DecisionError("the key is not the run's key (its pseudonyms would not match the release)")
    recorded = (run.get("options") or {}).get("settings")
    if recorded is not None:
        same = settings_fingerprint(reviewer.policy, reviewer.key) == recorded
    else:  # runs recorded before settings fingerprints: profile and options must match
        same = run.get("profile") == reviewer.policy.name and sorted(
            (run.get("options") or {}).get("options", [])) == sorted(o.value for o in reviewer.policy.options)
    if not same:
        names = ", ".join((run.get("options") or {}).get("options", [])) or "none"
        raise DecisionError(f"the policy differs from the run's (profile {run.get('profile')}, options {names}, "
                            "pixel settings, recipe or medveil version): start the review with the run's settings")


def _patient_number(store: AuditStore, reviewer: Reviewer, path: Path) -> str | None:
    """The sequential Patient ID the batch runner would give (the workspace's numbering)."""
    if not reviewer.policy.sequential_patient_ids:
        return None
    try:
        with silenced():
            header = pydicom.dcmread(path, force=True, stop_before_pixels=True,
                                     specific_tags=["PatientID", "PatientName", "PatientBirthDate",
                                                    "StudyInstanceUID"])
    except Exception:  # noqa: BLE001  (the pipeline will refuse the file with its own reason)
        return None
    ref = derive(reviewer.key, "sequence", patient_key(header)).hex()
    return reviewer.policy.patient_id_format.number(store.sequence_number("patient-id", ref))


def _check_free(root: Path, relpath: str, sha256: str) -> None:
    """Refuse when another file of the release already holds the output's name."""
    target = root / relpath
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
        raise DecisionError("another file of the release has the same SOP Instance UID")


def _write(root: Path, relpath: str, data: bytes, sha256: str) -> None:
    """Write atomically under *root* (a temporary file beside the tree, then a rename)."""
    target = root / relpath
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{TMP_PREFIX}review-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.write_bytes(data)
    os.replace(tmp, target)
