"""A curator's decision on a quarantined file: release it after a fix, or drop it.

**Release** means: run the whole per-file pipeline again
(:func:`medveil.pipeline.deidentify_bytes`, with the run's key and the
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

A file that a gateway (``medveil serve`` or ``pull``) quarantined is released
into that gateway's outbox as an entry, recorded first and then queued as the
gateway does it: the next ``serve`` or ``pull`` on the workspace forwards it.

**Drop** removes the quarantine copy; the file is not released.

Every decision, including a refused release, is recorded in the audit store
as a run of its own (engine "review": a start time, the file's row) with a
``review-decision`` event that carries the decision, its UTC timestamp and,
for a refusal, the reason (safe text, never a value).  A file's state in
:mod:`medveil.review.overview` is its latest row, so a decision shows at once.
"""

from __future__ import annotations

import getpass
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from medveil._version import __version__
from medveil.dicomio.discover import read_regular
from medveil.errors import MedveilError
from medveil.gateway.outbox import OUTBOX, Outbox
from medveil.pipeline import deidentify_bytes
from medveil.policy import Policy
from medveil.policy.fingerprint import settings_fingerprint
from medveil.pseudonym import Key
from medveil.records import Status
from medveil.review.overview import DECISION, REVIEW_ENGINE, is_ref
from medveil.runner.book import RunBook, RunConfig, check_layout, sha256_file
from medveil.runner.lock import LOCK_FILE, RunLock
from medveil.store.audit import AuditStore, utc_now
from medveil.store.private import write_durably

DROPPED = "dropped by a curator in review"



class DecisionError(MedveilError):
    """The decision cannot be carried out (nothing was changed)."""


@dataclass(frozen=True)
class Outcome:
    decision: str  # "released", "release-refused" or "dropped"
    at: str
    reason: str | None = None
    output_relpath: str | None = None
    queued: bool = False  # released into a gateway's outbox: the next serve or pull forwards it


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
    if last is None or last.status is not Status.QUARANTINED:
        raise DecisionError("that file is not in quarantine")
    if not (workspace / "quarantine" / f"{ref}.dcm").is_file():
        raise DecisionError("the quarantine copy of that file is missing")
    run = next((r for r in store.runs() if r["run_id"] == last.run_id), None)
    if run is None:
        raise DecisionError("the run that quarantined that file is not recorded")
    return run


def _record(store: AuditStore, run: dict, ref: str, status: Status, detail: dict, *, reason: str | None = None,
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
                          settings=recorded.get("settings") if status is Status.WRITTEN else None)
    store.finish_run(run_id, files_total=1, files_written=int(status is Status.WRITTEN),
                     files_quarantined=int(status is Status.QUARANTINED),
                     files_skipped=int(status is Status.SKIPPED))
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
    """Remove the quarantine copy of *ref* and record the decision (holding the workspace's lock)."""
    workspace = Path(workspace)
    lock = RunLock()
    lock.add_file(workspace / LOCK_FILE, "workspace")
    try:
        with AuditStore.open(workspace / "audit.sqlite") as store:
            run = _quarantined(store, workspace, ref)
            at = utc_now()
            _record(store, run, ref, Status.SKIPPED, _detail("dropped", at), reason=DROPPED)
        for name in (f"{ref}.dcm", f"{ref}.reason.txt"):
            (workspace / "quarantine" / name).unlink(missing_ok=True)
    finally:
        lock.release()
    return Outcome("dropped", at)


def release(workspace: Path, ref: str, reviewer: Reviewer, outputs: dict[str, str]) -> Outcome:
    """Run the pipeline on the (fixed) quarantine copy of *ref*; release it only if it passes.

    The release is a run of its own through the runners' bookkeeping
    (:class:`medveil.runner.book.RunBook`): it holds the locks on the
    release tree and the workspace, numbers patients in the workspace's
    sequence, journals the pairs before the file is written, checks the
    output's name against the tree and the pseudonyms against every earlier
    pair, and rebuilds the mapping files.  *outputs* maps run ids to their
    release trees (from the review database).  Raises :class:`DecisionError`
    when the release cannot even be tried.
    """
    workspace = Path(workspace)
    if reviewer.key is None or reviewer.policy is None:
        raise DecisionError("releasing needs the run's key and policy: start the review with --key-file "
                            "and the run's --profile/--option/--recipe")
    with AuditStore.open(workspace / "audit.sqlite") as store:
        run = _quarantined(store, workspace, ref)
    _check_same_run_settings(run, reviewer.key, reviewer.policy)
    output = reviewer.output or outputs.get(run["run_id"])
    if not output:
        raise DecisionError("where the run's release tree is is not recorded: start the review with --output")
    if "://" in output:
        raise DecisionError("releasing into a URL is not supported from the review page: rerun the batch")
    if (run.get("options") or {}).get("mappings") and reviewer.mappings_dir is None:
        raise DecisionError("the run wrote mapping files: start the review with --mappings DIR")
    # A gateway's run "writes" into its outbox (medveil.gateway.ledger): a file released there must
    # become an outbox entry, which the next serve or pull forwards, not a folder tree nothing sends.
    queued = Path(output).resolve() == (workspace / OUTBOX).resolve()
    quarantine = workspace / "quarantine"
    copy = quarantine / f"{ref}.dcm"
    config = RunConfig(input=quarantine, output=Path(output), policy=reviewer.policy, key=reviewer.key,
                       workspace=workspace, mappings_dir=reviewer.mappings_dir, force=True)
    try:
        # As a batch run does: no workspace or mapping file inside the release tree, no release
        # inside the workspace's quarantine (the reviewer's --output and --mappings are free text).
        check_layout(config)
    except MedveilError as exc:
        raise DecisionError(str(exc)) from None
    book = RunBook(config, run_options={"engine": REVIEW_ENGINE, "decision": "release", "of_run": run["run_id"]})
    book.open()
    audit = book.store
    assert audit is not None  # open() opened it
    with book.running():
        book.summary.files_total = 1
        patient_id = book.sequential_patient_id(copy)
        out, record = deidentify_bytes(read_regular(copy), reviewer.policy, reviewer.key, patient_id=patient_id)
        at = utc_now()
        why = record.reason if record.status is not Status.WRITTEN else None
        if why is None:  # written: the record has its name and its hash
            assert record.relpath is not None and record.output_sha256 is not None
            why = _taken(Path(output), record.relpath, record.output_sha256) or \
                book.claim(record.relpath, record.output_sha256, record.uid_pairs, record.patient_pairs)
        if why is not None:
            book.quarantine_copy(ref, copy, why, copier=lambda _target: (True, record.input_sha256))
            book.record(ref, copy, Status.QUARANTINED, why, input_sha256=record.input_sha256)
            audit.add_event(book.run_id, ref, DECISION,
                                 json.dumps(_detail("release-refused", at, why), sort_keys=True))
            return Outcome("release-refused", at, reason=why)
        assert record.relpath is not None and record.output_sha256 is not None and isinstance(out, bytes)
        book.sync()  # the pairs are durable before the file is released
        if queued:  # as the gateway's ledger does: recorded first, then queued
            book.released(ref, copy, Status.WRITTEN, record)
            Outbox(Path(output)).put(out, input_ref=ref, output_sha256=record.output_sha256)
        else:
            write_durably(Path(output) / record.relpath, out, make_parents=True)
            book.released(ref, copy, Status.WRITTEN, record)
        audit.add_event(book.run_id, ref, DECISION, json.dumps(_detail("released", at), sort_keys=True))
    for name in (f"{ref}.dcm", f"{ref}.reason.txt"):
        (quarantine / name).unlink(missing_ok=True)
    return Outcome("released", at, output_relpath=record.relpath, queued=queued)


def _check_same_run_settings(run: dict, key: Key, policy: Policy) -> None:
    """The release must be what the run would have written: same key, same settings."""
    if run.get("key_fingerprint") and key.fingerprint() != run["key_fingerprint"]:
        raise DecisionError("the key is not the run's key (its pseudonyms would not match the release)")
    recorded = (run.get("options") or {}).get("settings")
    if recorded is not None:
        same = settings_fingerprint(policy, key) == recorded
    else:  # runs recorded before settings fingerprints: profile and options must match
        same = run.get("profile") == policy.name and sorted(
            (run.get("options") or {}).get("options", [])) == sorted(o.value for o in policy.options)
    if not same:
        names = ", ".join((run.get("options") or {}).get("options", [])) or "none"
        raise DecisionError(f"the policy differs from the run's (profile {run.get('profile')}, options {names}, "
                            "pixel settings, recipe or medveil version): start the review with the run's settings")


def _taken(root: Path, relpath: str, sha256: str) -> str | None:
    """Why the output's name cannot be used: another file of the release already holds it."""
    target = root / relpath
    if target.is_file() and sha256_file(target) != sha256:  # a FIFO planted there is never opened
        return "another file of the release has the same SOP Instance UID"
    return None
