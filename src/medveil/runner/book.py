"""A run's bookkeeping, shared by every runner: what was asked, what became of each input.

The runners differ in where files are de-identified (this process, a pool
of worker processes, a Dask cluster); everything around that is here, once:

* the run's layout checks, and the exclusive locks on OUTPUT and the
  workspace (:mod:`medveil.runner.lock`), so two runs never share them;
* the private workspace (mode 0700, tightened if it was open to others),
  its audit store, its quarantine (copies 0600, up to a size cap) and its
  pair journal (:mod:`medveil.store.journal`);
* refusing an OUTPUT that holds files no run of this workspace wrote;
* resuming: an input is skipped only when an earlier run released exactly
  these bytes with the same settings fingerprint, its output is intact and,
  when mappings are asked for, its pairs reached the journal;
* the decisions that involve two files, made strictly in input order:
  duplicate SOP Instance UIDs and pseudonym collisions;
* the mapping files, rebuilt from the journal at the end of every run,
  however it ended.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pydicom

from medveil._version import __version__
from medveil.dicomio.discover import read_meta_group
from medveil.engine.deidentify import IMPLEMENTATION_CLASS_UID, patient_key
from medveil.errors import MedveilError
from medveil.policy import Policy
from medveil.policy.fingerprint import settings_fingerprint
from medveil.pseudonym import Key, derive
from medveil.quiet import silenced
from medveil.records import FileRecord, Status
from medveil.review.keep import ReviewKeeper
from medveil.runner.lock import LOCK_FILE, RunLock, locked_directory
from medveil.store.audit import AuditStore, AuditStoreError, StoredResult
from medveil.store.journal import JOURNAL_FILE, JournalError, PairJournal
from medveil.store.mappings import MappingCollisionError, MappingTable, write_mappings
from medveil.store.private import FILE_MODE, TMP_PREFIX, open_private, private_dir

#: Quarantine copies larger than this are not made (the reason and the input's hash are kept).
QUARANTINE_LIMIT = 1 << 30


class WorkspaceError(MedveilError):
    """The workspace or mappings directory cannot be written (disk full, permissions)."""


@dataclass(frozen=True)
class RunConfig:
    input: Path | str  # a str is a URL (the dask runner only)
    output: Path | str
    policy: Policy
    key: Key
    workspace: Path
    mappings_dir: Path | None = None
    workers: int = 1
    record_originals: bool = False
    resume: bool = True
    #: Follow symbolic links that lead out of INPUT (never to a protected file).
    follow_symlinks: bool = False
    #: Files never read as input, whatever links to them (the key file).
    protected: tuple[Path, ...] = ()
    #: Write into an OUTPUT that holds files no run of this workspace wrote.
    force: bool = False
    #: Bytes one file may cost a worker; None: the machine's available memory shared by the workers.
    memory_budget: int | None = None
    #: Quarantine copies larger than this many bytes are not made.
    quarantine_limit: int = QUARANTINE_LIMIT


@dataclass
class RunSummary:
    run_id: str
    files_total: int = 0
    written: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    #: Attributes repaired instead of quarantining their file, by keyword ("repair" events).
    repairs: Counter = field(default_factory=Counter)
    quarantine_dir: Path | None = None
    workspace: Path | None = None
    output: Path | str | None = None
    mappings_dir: Path | None = None
    #: Things the user should know that are not about one file (a directory's mode was fixed, ...).
    notices: list[str] = field(default_factory=list)
    #: Why inputs an earlier run had released were processed again, with counts.
    reprocessed: Counter = field(default_factory=Counter)
    #: Each quarantined input (its path within INPUT) with its reason, in input order.
    quarantined_inputs: list[tuple[str, str]] = field(default_factory=list)
    #: Each skipped input (its path within INPUT) with its reason, in input order.
    skipped_inputs: list[tuple[str, str]] = field(default_factory=list)
    #: Inputs whose pixels were masked (their paths within INPUT).
    masked_inputs: list[str] = field(default_factory=list)
    #: Inputs that gave the same output as an earlier input of this run: (input, the earlier input).
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    #: Memory budget per worker, in bytes.
    memory_budget: int | None = None
    #: True when the run was stopped (Ctrl-C, SIGTERM) before every input was handled.
    interrupted: bool = False


def default_workspace(output: Path) -> Path:
    """Beside OUTPUT, never inside it: the workspace holds the audit store and quarantine."""
    output = output.resolve()
    return output.parent / f"{output.name}.medveil-workspace"


def input_ref(key: Key, root: Path, path: Path) -> str:
    """An opaque, keyed reference to an input path (paths often carry names and MRNs)."""
    try:
        rel = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        rel = str(path.resolve())
    return derive(key, "input-path", rel).hex()[:32]


def escaped(path: Path | str) -> str:
    """*path* as text that any store and terminal takes: bytes that are not UTF-8 escaped as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def display_path(root: Path | str, path: Path | str) -> str:
    """*path* as the user knows it: relative to INPUT where it lies inside, undecodable bytes escaped.

    Paths are the user's own and are shown on their terminal and in the
    private workspace, never in the release or the audit store (unless
    original paths are recorded on request).
    """
    path = Path(path)
    try:
        shown = path.relative_to(Path(root)) if Path(root).is_dir() else path
    except ValueError:
        shown = path
    return escaped(shown)


def check_layout(config: RunConfig) -> None:
    out = Path(config.output).resolve()
    for name, path in (("workspace", config.workspace), ("mappings directory", config.mappings_dir)):
        if path is None:
            continue
        p = path.resolve()
        if p == out or out in p.parents:
            raise MedveilError(f"the {name} must not be inside the output directory: it holds "
                               "original identifiers or files that were not de-identified")
    src = Path(config.input).resolve()
    if src == out or (src.is_dir() and src in out.parents):
        raise MedveilError("the output directory must not be the input or lie inside it")
    if out in src.parents:
        raise MedveilError("the input must not lie inside the output directory: originals would "
                           "sit in the release")
    if src.is_dir():
        for name, path in (("workspace", config.workspace), ("mappings directory", config.mappings_dir)):
            if path is not None and (path.resolve() == src or src in path.resolve().parents):
                raise MedveilError(f"the {name} must not be inside the input directory: later runs "
                                   "would read it as input")


def instance_of(relpath: str) -> str:
    """The SOP Instance UID part of an output path (its file name)."""
    return Path(relpath).stem


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fs_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return type(exc).__name__


class RunBook:
    """Everything a runner records about one run; a context manager around the run."""

    def __init__(self, config: RunConfig, *, local_output: bool = True,
                 progress: Callable[[str], None] | None = None, run_options: dict[str, Any] | None = None):
        self.config = config
        self.local_output = local_output
        self.progress = progress or (lambda status: None)
        self.run_id = uuid.uuid4().hex
        self.summary = RunSummary(run_id=self.run_id, quarantine_dir=config.workspace / "quarantine",
                                  workspace=config.workspace, output=config.output,
                                  mappings_dir=config.mappings_dir, memory_budget=config.memory_budget)
        self.settings = settings_fingerprint(config.policy, config.key)
        self.quarantine = config.workspace / "quarantine"
        self.tmp = config.workspace / "tmp"
        self.uids = MappingTable()
        self.patids = MappingTable("patid")
        #: new SOP Instance UID -> output hash, for this run: one instance, one file, even
        #: when two inputs with one UID land in different series or patients.
        self.claimed: dict[str, str] = {}
        #: new SOP Instance UID -> the input of this run that first released it (path within INPUT).
        self.first_input: dict[str, str] = {}
        #: What the run's row records about it besides the policy (e.g. the review page's decision).
        self.run_options = dict(run_options or {})
        self.lock = RunLock()
        self.store: AuditStore | None = None
        self.journal: PairJournal | None = None
        self._started = False

    @property
    def audit(self) -> AuditStore:
        """The audit store, open between :meth:`open` and :meth:`close`."""
        assert self.store is not None, "the run book is not open"
        return self.store

    # -- opening and closing ------------------------------------------------------

    def open(self) -> RunBook:
        config = self.config
        notices = self.summary.notices
        if self.local_output:
            Path(config.output).mkdir(parents=True, exist_ok=True)
            self.lock.add_directory(Path(config.output), "output directory")
        try:
            private_dir(config.workspace, "workspace", notices)
            self.lock.add_file(config.workspace / LOCK_FILE, "workspace")
            private_dir(self.tmp, "workspace", None)
            if config.mappings_dir is not None:
                private_dir(config.mappings_dir, "mappings directory", notices)
            self.clean_temporaries()
            self.store = AuditStore.open(config.workspace / "audit.sqlite",
                                         record_originals=config.record_originals)
            if self.local_output and not config.force:
                self._refuse_foreign_output()
            if config.mappings_dir is not None:
                self.journal = PairJournal(config.workspace / JOURNAL_FILE)
                self._load_journal()
            options = {"options": sorted(o.value for o in config.policy.options), "workers": config.workers,
                       "mappings": config.mappings_dir is not None, "settings": self.settings, **self.run_options}
            self.store.start_run(self.run_id, tool_version=__version__,
                                 table_edition=config.policy.table.edition, profile=config.policy.name,
                                 options=options, key_fingerprint=config.key.fingerprint(),
                                 input_ref=input_ref(config.key, config.input, config.input)
                                 if isinstance(config.input, Path) else
                                 derive(config.key, "input-path", str(config.input)).hex()[:32])
            self._started = True
            self.review = ReviewKeeper(config.workspace, config.output, self.run_id)
        except BaseException:
            self.close()
            raise
        return self

    @contextmanager
    def running(self) -> Iterator[RunBook]:
        """Close the book however the run ends: "finished", "interrupted" (Ctrl-C, SIGTERM) or "failed".

        An interrupted run re-raises :class:`KeyboardInterrupt` carrying the
        summary of what was done (``exc.summary``) after its records and
        mapping files are written.
        """
        try:
            yield self
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self.close("interrupted")
            interrupt = KeyboardInterrupt()
            interrupt.summary = self.summary  # type: ignore[attr-defined]
            raise interrupt from None
        except BaseException:
            self.close("failed")
            raise
        self.close("finished")

    def _refuse_foreign_output(self) -> None:
        """OUTPUT may hold only what runs of this workspace wrote (and medveil's temporaries)."""
        known = self.audit.output_paths()
        foreign: list[str] = []
        output = self.config.output
        for directory, dirs, files in os.walk(output):
            dirs.sort()
            for name in sorted(files) + [d for d in dirs if (Path(directory) / d).is_symlink()]:
                if name.startswith(TMP_PREFIX):
                    continue
                relpath = (Path(directory) / name).relative_to(output).as_posix()
                if relpath not in known and not _written_by_medveil(Path(directory) / name):
                    foreign.append(relpath)
                    if len(foreign) > 5:
                        break
            if len(foreign) > 5:
                break
        if foreign:
            shown = ", ".join(escaped(p) for p in foreign[:5])
            more = " and more" if len(foreign) > 5 else ""
            raise MedveilError(
                f"the output directory {output} holds files no medveil run of this workspace wrote "
                f"({shown}{more}); choose an empty output directory, move those files away, pass the "
                "workspace of the run that wrote them (--workspace), or pass --force to write beside them")

    def _load_journal(self) -> None:
        """Earlier runs' pairs, so a pseudonym collision with them is found file by file."""
        assert self.journal is not None  # called right after open() made it
        for uids, patients in self.journal.entries():
            try:
                self.uids.update(uids)
                self.patids.update(patients)
            except MappingCollisionError:
                raise MedveilError("the workspace's pair journal holds colliding pairs; it was written "
                                   "with another key or edited") from None

    def clean_temporaries(self) -> int:
        """Remove temporaries of runs that died: no live run can own one, since this run holds the locks."""
        count = 0
        places = [self.tmp] + ([Path(self.config.output)] if self.local_output else [])
        for place in places:
            if not place.is_dir():
                continue
            for tmp in place.iterdir() if place == self.tmp else place.glob(f"{TMP_PREFIX}*"):
                try:
                    if tmp.is_file() or tmp.is_symlink():
                        tmp.unlink()
                        count += 1
                except OSError:
                    pass
        return count

    def temporary_dir(self) -> Path:
        """Where workers write outputs before they are moved into place.

        The workspace's own folder when it is on OUTPUT's file system (a
        killed run then leaves nothing in the release tree), else OUTPUT.
        """
        try:
            if os.stat(self.tmp).st_dev == os.stat(self.config.output).st_dev:
                return self.tmp
        except OSError:
            pass
        return Path(self.config.output)

    def close(self, outcome: str | None = None) -> None:
        """Rebuild the mapping files, stamp the run's end (when *outcome* is given) and let go."""
        try:
            if outcome is not None and self._started:
                self.write_mappings()
                summary = self.summary
                try:
                    self.audit.finish_run(self.run_id, files_total=summary.files_total,
                                          files_written=summary.written + summary.unchanged,
                                          files_quarantined=summary.quarantined, files_skipped=summary.skipped,
                                          outcome=outcome)
                except (AuditStoreError, sqlite3.Error, OSError) as exc:
                    raise WorkspaceError(
                        f"the audit store in {self.config.workspace} cannot record the end of the run "
                        f"({type(exc).__name__}: is its disk full?); {summary.written} files were written and "
                        f"recorded, {summary.quarantined} quarantined. Free some space and run the same command "
                        "again: it resumes") from None
        finally:
            if self.journal is not None:
                try:
                    self.journal.close()
                except JournalError:
                    pass
                self.journal = None
            if self.store is not None:
                self.store.close()
                self.store = None
            if getattr(self, "review", None) is not None:  # opened with the run (medveil.review.keep)
                self.review.close()
            self.clean_temporaries()
            self.lock.release()

    def write_mappings(self) -> None:
        """Rebuild ``uid_mapping.csv`` and ``patid_mapping.csv`` from the journal (merged with the files)."""
        if self.config.mappings_dir is None:
            return
        if self.journal is not None:
            self.journal.sync()
        directory = self.config.mappings_dir
        try:
            with locked_directory(directory, "mappings directory"):
                write_mappings(directory, self.uids.items(), self.patids.items(), self.summary.notices)
        except OSError as exc:
            raise WorkspaceError(f"the mapping files in {directory} cannot be written ({_fs_reason(exc)}); "
                                 "the pair journal in the workspace still holds every pair, and the next "
                                 "run writes them") from None

    # -- per input ------------------------------------------------------------------

    def display(self, path: Path | str) -> str:
        return display_path(self.config.input, path)

    def resumable(self, ref: str, real: Path) -> StoredResult | None:
        """The earlier record when a run already released this exact input the way this run would."""
        if not self.config.resume:
            return None
        last = self.audit.last_result(ref)
        if last is None or not last.status.released or not last.output_relpath:
            return None
        why = None
        if last.settings != self.settings:
            why = "settings changed since the earlier run (profile, options, pixel settings, key or version)"
        elif self.config.mappings_dir is not None and not last.journaled:
            why = "the earlier run kept no mapping pairs for it"
        else:
            target = Path(self.config.output) / last.output_relpath
            try:
                if not target.is_file() or sha256_file(target) != last.output_sha256:
                    why = "its output is missing or changed"
                elif sha256_file(real) != last.input_sha256:
                    return None  # a different input: processed as new
            except OSError:
                why = "its output cannot be read"
        if why is not None:
            self.summary.reprocessed[why] += 1
            return None
        return last

    def record(self, ref: str, path: Path | str, status: Status, reason: str | None = None, **extra: Any) -> None:
        status = Status(status)
        extra.setdefault("input_sha256", None)
        try:
            self.audit.record_file(self.run_id, input_ref=ref, status=status, reason=reason,
                                   original_path=escaped(path) if self.config.record_originals else None,
                                   **extra)
        except (AuditStoreError, OSError) as exc:
            raise WorkspaceError(f"the audit store in {self.config.workspace} cannot be written "
                                 f"({type(exc).__name__}); files released before this are recorded") from None
        summary = self.summary
        if status is Status.QUARANTINED:
            summary.quarantined += 1
            summary.reasons[reason or "unknown"] += 1
            summary.quarantined_inputs.append((self.display(path), reason or "unknown"))
        elif status is Status.SKIPPED:
            summary.skipped += 1
            summary.reasons[reason or "skipped"] += 1
            summary.skipped_inputs.append((self.display(path), reason or "skipped"))
        elif status is Status.WRITTEN:
            summary.written += 1
        elif status is Status.UNCHANGED:
            summary.unchanged += 1
        self.progress(status)

    def skip(self, ref: str, path: Path | str, reason: str) -> None:
        self.record(ref, path, Status.SKIPPED, reason)

    def refuse(self, ref: str, path: Path | str, reason: str, *, input_sha256: str | None = None,
               copy_from: Path | None = None, copier: Callable[[Path], tuple[bool, str | None]] | None = None) -> None:
        """Quarantine an input: a private copy (when it can and may be made), its reason, its record."""
        note = self.quarantine_copy(ref, path, reason, copy_from=copy_from, copier=copier,
                                    input_sha256=input_sha256)
        self.record(ref, path, Status.QUARANTINED, reason + note, input_sha256=input_sha256)

    def quarantine_copy(self, ref: str, path: Path | str, reason: str, *, copy_from: Path | None = None,
                        copier: Callable[[Path], tuple[bool, str | None]] | None = None,
                        input_sha256: str | None = None) -> str:
        """Copy the input into the quarantine (0600) and write its reason file; returns a note for the reason.

        Only regular files up to the size cap are copied; a device or FIFO
        is never opened.  The reason file names the input (its path within
        INPUT, or the original path when original paths are recorded):
        the quarantine is private, and a curator needs to know which file
        to look at.
        """
        note = ""
        try:
            private_dir(self.quarantine, "quarantine", None)
        except MedveilError as exc:
            raise WorkspaceError(str(exc)) from None
        target = self.quarantine / f"{ref}.dcm"
        copied, digest = False, input_sha256
        if copier is not None:
            copied, digest = copier(target)
        elif copy_from is not None:
            copied, digest, why = _copy_regular(copy_from, target, self.config.quarantine_limit)
            if why:
                note = f" ({why})"
        if not copied and not note:
            note = " (the file could not be copied to quarantine)"
        shown = escaped(path) if self.config.record_originals else f"{self.display(path)} (within INPUT)"
        lines = [f"reason: {reason}{note}",
                 f"input: {shown}",
                 f"input sha256: {digest or 'unknown'}",
                 f"copy: {target.name} in this private workspace" if copied else "copy: none"]
        try:
            fd = open_private(self.quarantine / f"{ref}.reason.txt")
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write("\n".join(lines) + "\n")
        except OSError as exc:
            raise WorkspaceError(f"the quarantine in {self.quarantine} cannot be written "
                                 f"({_fs_reason(exc)})") from None
        return note

    def claim(self, relpath: str, output_sha256: str, uid_pairs: dict[str, str],
              patient_pairs: dict[str, str]) -> str | None:
        """Check a file against the run's earlier files (in input order); None or why it is refused.

        On success its pairs are in the in-memory tables and appended to the
        journal (not yet synced: :meth:`sync` before the file is released).
        """
        claimed = self.claimed.get(instance_of(relpath))
        if claimed is not None and claimed != output_sha256:
            return "another input of this run has the same SOP Instance UID"
        # All or nothing across both tables, so a refused file leaves no pairs behind:
        # the (small) patient table is tried on a copy, the UID table updates atomically.
        try:
            patids = self.patids.copy()
            patids.update(patient_pairs)
            self.uids.update(uid_pairs)
        except MappingCollisionError:
            return "pseudonym collision with another input; use more digits"
        self.patids = patids
        if self.journal is not None:
            try:
                self.journal.append(uid_pairs, patient_pairs)
            except JournalError as exc:
                raise WorkspaceError(str(exc)) from None
        self.claimed[instance_of(relpath)] = output_sha256
        return None

    def note_release(self, relpath: str, path: Path | str, status: Status) -> None:
        """Remember which input released an instance first; a later identical one is its duplicate."""
        shown = self.display(path)
        first = self.first_input.setdefault(instance_of(relpath), shown)
        if status is Status.UNCHANGED and first != shown:
            self.summary.duplicates.append((shown, first))

    def sync(self) -> None:
        """Make the journaled pairs durable: call before releasing the files they belong to."""
        if self.journal is not None:
            try:
                self.journal.sync()
            except JournalError as exc:
                raise WorkspaceError(str(exc)) from None

    def released(self, ref: str, path: Path | str, status: Status, done: FileRecord) -> None:
        """Store what a released file's processing found: counts, events, fingerprints, its row."""
        summary = self.summary
        summary.actions.update(done.counts)
        for stale in (f"{ref}.dcm", f"{ref}.reason.txt"):
            (self.quarantine / stale).unlink(missing_ok=True)  # quarantined by an earlier run
        masked = False
        try:
            with self.audit.batch():
                if done.counts:
                    self.audit.add_action_counts(self.run_id, dict(done.counts))
                for category, detail in done.events:
                    summary.events[category] += 1
                    if category == "repair":
                        summary.repairs[repaired_keyword(detail)] += 1
                    masked = masked or category == "pixel-box"
                    self.audit.add_event(self.run_id, ref, category, detail)
                if done.fingerprints:
                    self.audit.add_fingerprints(self.config.key.fingerprint(), done.fingerprints)
                self.record(ref, path, status, None, input_sha256=done.input_sha256,
                            output_relpath=done.relpath, output_sha256=done.output_sha256,
                            settings=self.settings, journaled=self.journal is not None)
        except AuditStoreError as exc:
            raise WorkspaceError(f"the audit store in {self.config.workspace} cannot be written "
                                 f"({exc})") from None
        self.review.keep(ref, done)
        if masked:
            summary.masked_inputs.append(self.display(path))
        if done.relpath:
            self.note_release(done.relpath, path, status)

    def sequential_patient_id(self, source: Path | BinaryIO) -> str | None:
        """Number the file's patient in input order, when the policy asks for sequential IDs.

        *source* is a local path or an open binary file (the Dask runner's remote inputs).
        Only the patient attributes are read here; the store keeps a keyed hash of
        the patient, never the original, with its number.
        """
        policy = self.config.policy
        if not policy.sequential_patient_ids:
            return None
        try:
            with silenced():
                header = pydicom.dcmread(source, force=True, stop_before_pixels=True,
                                         specific_tags=["PatientID", "PatientName", "PatientBirthDate",
                                                        "StudyInstanceUID"])
        except Exception:
            return None  # the worker will fail to read it too, and quarantine it
        ref = derive(self.config.key, "sequence", patient_key(header)).hex()
        return policy.patient_id_format.number(self.audit.sequence_number("patient-id", ref))


def _written_by_medveil(path: Path) -> bool:
    """True for a file medveil released (a run of another workspace, or one killed before recording it).

    Read from its file meta group, which names medveil as the implementation
    that wrote it; only the first kilobytes are read, and only of files the
    workspace does not know.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 4096)
    except OSError:
        return False
    finally:
        os.close(fd)
    if head[128:132] != b"DICM":
        return False
    handle = io.BytesIO(head)
    handle.seek(132)
    meta = read_meta_group(handle) or {}
    return meta.get(0x00020012, b"").rstrip(b"\x00 ").decode("ascii", "replace") == IMPLEMENTATION_CLASS_UID


def _copy_regular(source: Path, target: Path, limit: int) -> tuple[bool, str | None, str | None]:
    """Copy a regular file up to *limit* bytes as a 0600 file: (copied, sha256, why not copied)."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return False, None, f"not copied: it cannot be opened ({type(exc).__name__})"
    digest = hashlib.sha256()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False, None, "not copied: not a regular file"
        if info.st_size > limit:
            for chunk in iter(lambda: os.read(fd, 1 << 20), b""):
                digest.update(chunk)
            return False, digest.hexdigest(), (f"not copied: {info.st_size >> 20} MiB is more than the "
                                               f"quarantine's limit of {limit >> 20} MiB")
        try:
            out = open_private(target)
        except OSError as exc:
            raise WorkspaceError(f"the quarantine cannot be written ({_fs_reason(exc)})") from None
        written = 0
        try:
            while written <= limit:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
                written += len(chunk)
        except OSError as exc:
            os.close(out)
            target.unlink(missing_ok=True)
            raise WorkspaceError(f"the quarantine cannot be written ({_fs_reason(exc)})") from None
        os.close(out)
        if written > limit:
            target.unlink(missing_ok=True)
            return False, None, "not copied: the file grew past the quarantine's limit while it was copied"
        os.chmod(target, FILE_MODE)
        return True, digest.hexdigest(), None
    finally:
        os.close(fd)


def repaired_keyword(detail: str) -> str:
    """The keyword a "repair" event names (the last step of a sequence path)."""
    try:
        path = str(json.loads(detail).get("attribute", ""))
    except (ValueError, AttributeError):
        return "?"
    return path.rsplit(".", 1)[-1] or "?"
