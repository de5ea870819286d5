#!/usr/bin/env python3
"""Hostile input, crashes and concurrent runs: the robustness benchmark (issue 13).

What it does, all deterministic by ``--seed``:

1. Mutants.  ``--mutants`` (default 10,000) hostile files are made from the
   bundled corpora with planted marker identifiers (benchmarks/robustness_mutants.py
   says how), written in batches of one mutation class, and each batch is
   de-identified by the ``medveil deidentify`` command line in a child process
   (profiles alternate between ``basic`` and ``tcia`` without Clean Pixel Data,
   both with ``--burned-in pass`` so that files are released and can be
   checked).  Every released file is searched for markers and planted UIDs in
   its raw bytes, its inflated dataset (deflated outputs) and its decoded
   values, and re-read with pydicom.  The terminal output, the quarantine
   reasons and the audit store are searched too.  Per batch: the exit status,
   the time of each file, and the peak resident set of the biggest process
   (``wait4``: the run and its workers).
2. kill -9.  A run over ``--kill-files`` files is killed (its whole process
   group, like a power cut) when it has released a given share of them, at
   ``--kill-points`` points, and run again; the release must be byte-identical
   to an uninterrupted run and ``uid_mapping.csv``/``patid_mapping.csv`` must
   cover every released file.  Two scenarios alternate: a fresh OUTPUT, and a
   second delivery into an OUTPUT an earlier complete run filled (its mapping
   files exist, so resume trusts its records).  One more run loses a worker
   process (SIGKILL, as the OOM killer would): the batch must go on.
3. Concurrency.  ``--concurrency-trials`` times, a second run starts on the
   same OUTPUT while the first is running: it must be refused with a clear
   error naming the first, and nothing of the first run may be lost.
4. Non-regular files.  INPUT holds a symlink to /dev/zero and /dev/urandom, a
   FIFO, a symlink to a file outside INPUT and one to the key file: none may be
   opened, copied or followed (the run has a 256 MB file-size limit so that a
   runaway copy cannot fill the disk).

It prints one Markdown table (goal 0 on every row) and a per-class table, and
writes everything to ``--json``/``--markdown``.  Child processes run with a
file-size limit (``--fsize-limit-mb``) and an address-space limit
(``--as-limit-mb``) so that a defect cannot fill the disk or exhaust the
memory of a shared machine; a file that hits them is quarantined (counted) or
aborts its batch (counted), it does not take the machine down.

Usage: python benchmarks/robustness.py [--mutants 10000] [--seed 1] [--workers 2]
       [--json FILE] [--markdown FILE] [--only mutants,kill,concurrency,nonregular]
(``make bench-robustness ROBUSTNESS_ARGS="..."``).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import itertools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import robustness_mutants as rm  # noqa: E402

TMP_PREFIX = ".medveil-tmp-"
PROFILE_ARGS = {
    "basic": ["-p", "basic", "--burned-in", "pass"],
    "tcia": ["-p", "tcia", "--without", "clean_pixel_data", "--burned-in", "pass"],
}
DEFAULT_BOMBS_MB = (64, 256, 1024)
DEFAULT_LONG_MB = (1, 4, 16)


# -- child processes -----------------------------------------------------------------------------


@dataclass
class Limits:
    fsize_mb: float | None = 4096
    as_mb: int | None = 2048
    timeout_s: float = 1800.0


@dataclass
class Finished:
    rc: int | None
    signal: int | None
    timed_out: bool
    wall_s: float
    maxrss_mb: float
    stdout: str
    stderr: str
    pid: int

    @property
    def aborted(self) -> bool:
        return self.timed_out or self.signal is not None or self.rc not in (0, 1)


def medveil_command() -> list[str]:
    return [sys.executable, "-m", "medveil"]


def _preexec(limits: Limits, umask: int | None):
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
        if limits.fsize_mb:
            size = int(limits.fsize_mb * (1 << 20))
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        if limits.as_mb:
            size = limits.as_mb << 20
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if umask is not None:
            os.umask(umask)
    return setup


def spawn(command: list[str], logs: Path, *, limits: Limits | None = None, umask: int | None = None,
          env: dict | None = None) -> subprocess.Popen:
    """Start *command* in its own process group, its output going to files under *logs*."""
    limits = limits or Limits()
    logs.mkdir(parents=True, exist_ok=True)
    stdout = open(logs / "stdout.txt", "wb")
    stderr = open(logs / "stderr.txt", "wb")
    try:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_preexec(limits, umask),
                                env={**os.environ, "COLUMNS": "200", **(env or {})})
    finally:
        stdout.close()
        stderr.close()
    proc.logs = logs  # type: ignore[attr-defined]
    proc.started = time.perf_counter()  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout_s: float) -> Finished:
    """Wait for *proc* (killing its group after *timeout_s*); peak RSS from wait4 (workers included)."""
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        kill_group(proc.pid)

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    kill_group(proc.pid)  # leftover workers of a killed run
    logs: Path = proc.logs  # type: ignore[attr-defined]
    return Finished(rc=proc.returncode if proc.returncode >= 0 else None,
                    signal=-proc.returncode if proc.returncode < 0 else None,
                    timed_out=timed_out.is_set(), wall_s=time.perf_counter() - proc.started,  # type: ignore[attr-defined]
                    maxrss_mb=usage.ru_maxrss / 1024,
                    stdout=(logs / "stdout.txt").read_text("utf-8", "replace"),
                    stderr=(logs / "stderr.txt").read_text("utf-8", "replace"), pid=proc.pid)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_medveil(args: list[str], logs: Path, *, limits: Limits | None = None, umask: int | None = None,
                timed: Path | None = None) -> Finished:
    """``medveil ARGS`` in a child process; with *timed*, per-file times go to that JSON file."""
    limits = limits or Limits()
    if timed is not None:
        command = [sys.executable, str(Path(__file__).resolve()), "--_timed", str(timed), "--", *args]
    else:
        command = [*medveil_command(), *args]
    return finish(spawn(command, logs, limits=limits, umask=umask), limits.timeout_s)


def _timed_cli(times_path: str, argv: list[str]) -> None:
    """Run the medveil CLI in this process, recording how long each file took.

    ``progress`` is called once per finished input, so the gaps between calls
    are per-file times (exact enough with one worker: files come back in
    order, one at a time).  Where the local executor's workers call
    ``medveil.runner.local.process`` (before issue 19, ``medveil.runner.pool.process``;
    before issue 13, ``medveil.runner.batch.process``) in forked processes, a wrapper also
    appends each file's name and time to ``TIMES.files``.  Nothing of medveil
    is changed on disk.
    """
    import medveil
    import medveil.cli as cli

    deltas: list[float] = []
    state = {"last": time.perf_counter()}
    files_log = times_path + ".files"
    original = medveil.deidentify_path

    def deidentify_path(*args, progress=None, on_total=None, **kwargs):
        def total(count):
            state["last"] = time.perf_counter()
            if on_total:
                on_total(count)

        def advance(count):
            now = time.perf_counter()
            deltas.append(now - state["last"])
            state["last"] = now
            if progress:
                progress(count)

        return original(*args, progress=advance, on_total=total, **kwargs)

    medveil.deidentify_path = deidentify_path
    if hasattr(cli, "deidentify_path"):
        cli.deidentify_path = deidentify_path
    for module_name in ("medveil.runner.local", "medveil.runner.pool", "medveil.runner.batch"):
        try:
            module = __import__(module_name, fromlist=["process"])
        except Exception:
            continue
        inner = getattr(module, "process", None)
        if not callable(inner):
            continue

        def process(job, *args, _inner=inner, **kwargs):
            start = time.perf_counter()
            try:
                return _inner(job, *args, **kwargs)
            finally:
                with open(files_log, "a", encoding="utf-8") as log:
                    log.write(f"{Path(job.path).name}\t{time.perf_counter() - start:.6f}\n")

        module.process = process
        break

    def dump() -> None:
        named = []
        if os.path.exists(files_log):
            for line in Path(files_log).read_text("utf-8").splitlines():
                name, _, seconds = line.rpartition("\t")
                named.append((name, float(seconds)))
        Path(times_path).write_text(json.dumps({"deltas": deltas, "files": named}))

    atexit.register(dump)
    sys.argv = ["medveil", *argv]
    cli.main()


# -- scanning ------------------------------------------------------------------------------------


def release_files(output: Path) -> tuple[list[Path], list[Path]]:
    """(released DICOM files, medveil temporaries) under OUTPUT."""
    released, temporaries = [], []
    if not output.is_dir():
        return released, temporaries
    for path in sorted(output.rglob("*")):
        if path.name.startswith(TMP_PREFIX):
            temporaries.append(path)
        elif path.is_file():
            released.append(path)
    return released, temporaries


def tree_digest(output: Path) -> dict[str, str]:
    released, _ = release_files(output)
    return {str(p.relative_to(output)): hashlib.sha256(p.read_bytes()).hexdigest() for p in released}


def scan_text(text: str | bytes) -> rm.Found:
    found = rm.Found()
    rm.scan_bytes(text.encode("utf-8", "replace") if isinstance(text, str) else text, found, "text")
    return found


def workspace_of(output: Path) -> Path:
    output = output.resolve()
    return output.parent / f"{output.name}.medveil-workspace"


#: Workspace files that hold original data by design (docs/security.md): the pair journal (the
#: mapping files' source) and the review store's "before" pictures; quarantine copies are skipped too.
ORIGINALS_BY_DESIGN = ("pairs.journal",)


def private_traces(workspace: Path) -> rm.Found:
    """Markers in the workspace outside what holds originals by design: reasons, the audit store, temporaries."""
    found = rm.Found()
    if not workspace.is_dir():
        return found
    for path in workspace.rglob("*"):
        if not path.is_file() or path.name in ORIGINALS_BY_DESIGN or "review" in path.relative_to(workspace).parts:
            continue
        if path.parent.name == "quarantine" and not path.name.endswith(".txt"):
            continue  # a quarantined input: not de-identified, by design
        rm.scan_bytes(path.read_bytes(), found, path.name)
    return found


# -- mutants ----------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    batch: int
    cls: str
    profile: str
    files: int
    rc: int | None
    signal: int | None
    timed_out: bool
    aborted: bool
    wall_s: float
    maxrss_mb: float
    released: int
    quarantined: int | None
    skipped: int | None
    reasons: dict
    times: list[float]
    slowest: list[tuple[str, float]]
    leaked_markers: list[int] = field(default_factory=list)  # mutant numbers
    leaked_uids: list[int] = field(default_factory=list)
    leak_places: dict = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    temporaries: int = 0
    traces: list[str] = field(default_factory=list)  # where markers showed outside the release
    subtypes: dict = field(default_factory=dict)
    #: Sized classes only: file name -> (subtype, seconds, MB).
    sized: dict = field(default_factory=dict)


def run_mutant_batch(number: int, mutants: list[rm.Mutant], profile: str, work: Path, key_file: Path,
                     jobs: int, limits: Limits, extra: list[str], keep: bool) -> BatchResult:
    root = work / f"batch-{number:04d}"
    shutil.rmtree(root, ignore_errors=True)
    source = root / "in"
    source.mkdir(parents=True)
    for mutant in mutants:
        (source / f"{mutant.index:06d}.dcm").write_bytes(mutant.data)
    output, mappings = root / "out", root / "maps"
    sized = mutants[0].cls in rm.SIZED_CLASSES  # few files: each one's outcome is looked up by name
    args = ["deidentify", str(source), str(output), "--key-file", str(key_file), "--mappings", str(mappings),
            "-j", str(jobs), "--json", *PROFILE_ARGS[profile], *extra, *(["--record-originals"] if sized else [])]
    times_path = root / "times.json"
    done = run_medveil(args, root / "logs", limits=limits, timed=times_path)
    summary = {}
    try:
        summary = json.loads(done.stdout)
    except ValueError:
        pass
    times = {"deltas": [], "files": []}
    if times_path.is_file():
        times = json.loads(times_path.read_text())
    named = [(name, float(t)) for name, t in times.get("files", [])]
    per_file = [t for _, t in named] if len(named) >= len(times.get("deltas", [])) * 0.5 and named else \
        [float(t) for t in times.get("deltas", [])]
    released, temporaries = release_files(output)
    by_index = {m.index: m for m in mutants}
    result = BatchResult(
        batch=number, cls=mutants[0].cls, profile=profile, files=len(mutants), rc=done.rc, signal=done.signal,
        timed_out=done.timed_out, aborted=done.aborted, wall_s=round(done.wall_s, 3),
        maxrss_mb=round(done.maxrss_mb, 1), released=len(released), quarantined=summary.get("quarantined"),
        skipped=summary.get("skipped"), reasons=summary.get("reasons", {}), times=per_file,
        slowest=sorted(named, key=lambda x: -x[1])[:3], temporaries=len(temporaries),
        subtypes=dict(Counter(m.subtype for m in mutants)))
    if sized:
        outcomes = {Path(r["original_path"]).name: (r["status"], r["reason"])
                    for r in audit_rows(workspace_of(output)) if r["original_path"]}
        for name, seconds in named:
            mutant = by_index.get(int(Path(name).stem)) if Path(name).stem.isdigit() else None
            if mutant is not None:
                status, reason = outcomes.get(name, ("?", None))
                result.sized[name] = (mutant.subtype, round(seconds, 3), round(len(mutant.data) / 2**20, 2),
                                      status if status != "quarantined" else f"quarantined: {reason}")
    places: Counter = Counter()
    for path in released:
        found = rm.scan_released(path)
        if not found.rereads:
            result.unreadable.append(f"{path.name}: {found.reread_error}")
        owners = found.mutants() or {-1}
        for owner in owners:
            if found.markers:
                result.leaked_markers.append(owner)
            if found.uids:
                result.leaked_uids.append(owner)
        if found.leaked:
            subtype = by_index[next(iter(owners))].subtype if next(iter(owners)) in by_index else "?"
            for where in found.where:
                places[f"{where} ({subtype})"] += 1
    result.leak_places = dict(places.most_common(20))
    for name, text in (("terminal", done.stdout + done.stderr),):
        if scan_text(text).leaked:
            result.traces.append(name)
    workspace_found = private_traces(workspace_of(output))
    if workspace_found.leaked:
        result.traces.extend(sorted(workspace_found.where))
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workspace_of(output), ignore_errors=True)
    return result


def plan_batches(plan, batch_size: int, profiles: list[str]) -> list[tuple[int, str, list, str]]:
    """Batches of one class each (so memory and time are attributable); profiles alternate."""
    by_class: dict[str, list] = defaultdict(list)
    for entry in plan:
        by_class[entry[1]].append(entry)
    batches = []
    for cls in sorted(by_class):
        entries = by_class[cls]
        if cls == "long-value":  # every kind and size under every profile: these are measurements
            for profile in profiles:
                batches.append((len(batches), cls, entries, profile))
            continue
        if cls == "deflate-bomb":
            size = 1
        else:  # every class meets every profile
            size = max(1, min(batch_size, -(-len(entries) // len(profiles))))
        for number, start in enumerate(range(0, len(entries), size)):
            batches.append((len(batches), cls, entries[start:start + size], profiles[number % len(profiles)]))
    return batches


def run_mutants(args, work: Path, key_file: Path, limits: Limits) -> dict:
    started = time.perf_counter()
    bases = rm.load_bases(max_bytes=args.max_base_kb * 1024)
    plan = rm.schedule(args.mutants, args.seed, bombs=args.bomb_mb,
                       long_values=[(mb, kind) for mb in args.long_mb for kind in rm.LONG_KINDS])
    batches = plan_batches(plan, args.batch_size, args.profiles)
    print(f"mutants: {len(plan)} from {len(bases)} sources in {len(batches)} batches "
          f"({args.workers} at a time, -j {args.jobs})", file=sys.stderr, flush=True)
    results: list[BatchResult] = []

    def one(batch):
        number, cls, entries, profile = batch
        mutants = [rm.make_mutant(bases, index, c, args.seed, mb) for index, c, mb in entries]
        result = run_mutant_batch(number, mutants, profile, work, key_file, args.jobs, limits,
                                  args.medveil_args, args.keep)
        print(f"  batch {number:3d} {cls:16s} {profile:5s} {len(mutants):4d} files: rc={result.rc} "
              f"released={result.released} leaks={len(set(result.leaked_markers))}+{len(set(result.leaked_uids))} "
              f"rss={result.maxrss_mb:.0f}MB {result.wall_s:.1f}s", file=sys.stderr, flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results = list(pool.map(one, batches))
    return {"sources": len(bases), "mutants": len(plan), "batches": [r.__dict__ for r in results],
            "seconds": round(time.perf_counter() - started, 1)}


# -- kill -9 --------------------------------------------------------------------------------------


def write_corpus(directory: Path, count: int, seed: int, *, start: int = 500_000,
                 bases: list[rm.Base] | None = None) -> list[Path]:
    """*count* clean planted files (control mutants, each its own patient), numbered from *start*."""
    bases = bases or rm.load_bases()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset in range(count):
        index = start + offset
        mutant = rm.make_mutant(bases, index, "control", seed)
        path = directory / f"{index:06d}.dcm"
        path.write_bytes(mutant.data)
        paths.append(path)
    return paths


def mapping_gaps(output: Path, mappings: Path) -> dict:
    """Released files whose pseudonymous UIDs or Patient ID the mapping files do not cover."""
    import pydicom

    from medveil.store.mappings import read_pairs

    def new_values(name: str) -> set[str]:
        path = mappings / name
        try:
            return {new for _, new in read_pairs(path)} if path.is_file() else set()
        except Exception:
            return set()

    uids, patids = new_values("uid_mapping.csv"), new_values("patid_mapping.csv")
    released, _ = release_files(output)
    missing = 0
    for path in released:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        wanted = [str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
        if any(w and w not in uids for w in wanted) or (str(ds.get("PatientID", "")) not in patids):
            missing += 1
    return {"released": len(released), "missing_from_mappings": missing, "uid_rows": len(uids),
            "patid_rows": len(patids)}


def deidentify_args(source: Path, output: Path, key_file: Path, mappings: Path, jobs: int,
                    profile: str = "basic", extra: list[str] = ()) -> list[str]:
    return ["deidentify", str(source), str(output), "--key-file", str(key_file), "--mappings", str(mappings),
            "-j", str(jobs), "--json", *PROFILE_ARGS[profile], *extra]


def run_until(args: list[str], logs: Path, output: Path, released_at_least: int, *,
              limits: Limits | None = None, on_reach=None, then_wait_s: float | None = None
              ) -> tuple[Finished, int | None]:
    """Run medveil until OUTPUT holds *released_at_least* files, then call *on_reach(proc)*.

    After *on_reach* the run gets *then_wait_s* seconds (default: the limit) to
    end before its process group is killed (``timed_out``).  Returns the
    finished run and how many files were released when *on_reach* ran (None
    when the run ended first).
    """
    limits = limits or Limits()
    proc = spawn([*medveil_command(), *args], logs, limits=limits)
    reached = None
    deadline = time.perf_counter() + limits.timeout_s
    while proc.poll() is None and time.perf_counter() < deadline:
        count = _count_released(output)
        if count >= released_at_least:
            reached = count
            on_reach(proc)
            break
        time.sleep(0.005)
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout_s if then_wait_s is None else then_wait_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc.pid)
        proc.wait()
    kill_group(proc.pid)
    logs_dir: Path = proc.logs  # type: ignore[attr-defined]
    finished = Finished(rc=proc.returncode if proc.returncode >= 0 else None,
                        signal=-proc.returncode if proc.returncode < 0 else None, timed_out=timed_out,
                        wall_s=time.perf_counter() - proc.started, maxrss_mb=0.0,  # type: ignore[attr-defined]
                        stdout=(logs_dir / "stdout.txt").read_text("utf-8", "replace"),
                        stderr=(logs_dir / "stderr.txt").read_text("utf-8", "replace"), pid=proc.pid)
    return finished, reached


def _count_released(output: Path) -> int:
    count = 0
    try:
        for _, _, files in os.walk(output):
            count += sum(1 for name in files if name.endswith(".dcm") and not name.startswith(TMP_PREFIX))
    except OSError:
        pass
    return count


def kill_trial(work: Path, source: Path, key_file: Path, reference: dict[str, str], fraction: float, *,
               scenario: str = "fresh", first_part: Path | None = None, jobs: int = 2,
               limits: Limits | None = None, profile: str = "basic") -> dict:
    """kill -9 one run at *fraction* of the released files, run again, compare with *reference*."""
    output, mappings = work / "out", work / "maps"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if scenario == "second-delivery":
        first = run_medveil(deidentify_args(first_part, output, key_file, mappings, jobs, profile),
                            work / "logs-first", limits=limits)
        if first.aborted:
            return {"scenario": scenario, "fraction": fraction, "error": f"first delivery rc={first.rc}"}
    already = _count_released(output)
    target = already + max(1, int(round(fraction * (len(reference) - already))))
    killed, reached = run_until(deidentify_args(source, output, key_file, mappings, jobs, profile),
                                work / "logs-killed", output, target, limits=limits,
                                on_reach=lambda proc: kill_group(proc.pid))
    _, left_after_kill = release_files(output)
    rerun = run_medveil(deidentify_args(source, output, key_file, mappings, jobs, profile), work / "logs-rerun",
                        limits=limits)
    after = tree_digest(output)
    _, temporaries = release_files(output)
    differing = sorted(set(reference) ^ set(after)) + sorted(k for k in reference if k in after
                                                               and after[k] != reference[k])
    gaps = mapping_gaps(output, mappings)
    return {"scenario": scenario, "fraction": fraction, "killed_at_released": reached, "target": target,
            "killed_rc": killed.rc, "killed_signal": killed.signal, "rerun_rc": rerun.rc,
            "rerun_aborted": rerun.aborted, "differing": len(differing),
            "temporaries_after_kill": len(left_after_kill), "temporaries_after_rerun": len(temporaries),
            **gaps}


def worker_death_trial(work: Path, source: Path, key_file: Path, total: int, *, limits: Limits | None = None) -> dict:
    """SIGKILL one worker process of a two-worker run (as the OOM killer would): the batch must go on."""
    import psutil

    output, mappings = work / "out", work / "maps"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    victims: list[int] = []

    def kill_worker(proc) -> None:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            return
        workers = [c for c in children if "python" in (c.name() or "").lower()]
        if workers:
            victims.append(workers[-1].pid)
            try:
                workers[-1].kill()
            except psutil.Error:
                pass

    finished, reached = run_until(deidentify_args(source, output, key_file, mappings, 2), work / "logs", output,
                                  1, limits=limits, on_reach=kill_worker)
    summary = {}
    try:
        summary = json.loads(finished.stdout)
    except ValueError:
        pass
    accounted = sum(summary.get(k, 0) for k in ("written", "unchanged", "quarantined", "skipped"))
    return {"killed_worker": bool(victims), "rc": finished.rc, "aborted": finished.rc not in (0, 1),
            "accounted": accounted, "total": total, "released": _count_released(output),
            "reasons": summary.get("reasons", {}), "internal_error": "internal error" in finished.stderr}


def run_kill(args, work: Path, key_file: Path, limits: Limits) -> dict:
    bases = rm.load_bases(max_bytes=args.max_base_kb * 1024)
    source = work / "kill-input"
    paths = write_corpus(source, args.kill_files, args.seed, bases=bases)
    first_part = work / "kill-first-part"
    first_part.mkdir(parents=True, exist_ok=True)
    for path in paths[: max(1, len(paths) // 4)]:
        shutil.copyfile(path, first_part / path.name)
    reference_dir = work / "kill-reference"
    shutil.rmtree(reference_dir, ignore_errors=True)
    done = run_medveil(deidentify_args(source, reference_dir / "out", key_file, reference_dir / "maps",
                                       args.jobs_faults), reference_dir / "logs", limits=limits)
    reference = tree_digest(reference_dir / "out")
    reference_gaps = mapping_gaps(reference_dir / "out", reference_dir / "maps")
    trials = []
    for point in range(args.kill_points):
        fraction = (point + 1) / (args.kill_points + 1)
        for scenario in ("fresh", "second-delivery"):
            trial = kill_trial(work / f"kill-{point}-{scenario}", source, key_file, reference, fraction,
                               scenario=scenario, first_part=first_part, jobs=args.jobs_faults, limits=limits)
            print(f"  kill {scenario:15s} at {fraction:.2f}: released at kill={trial.get('killed_at_released')} "
                  f"differing={trial.get('differing')} missing from mappings={trial.get('missing_from_mappings')} "
                  f"temporaries after kill={trial.get('temporaries_after_kill')}", file=sys.stderr, flush=True)
            trials.append(trial)
            if not args.keep:
                shutil.rmtree(work / f"kill-{point}-{scenario}", ignore_errors=True)
                shutil.rmtree(workspace_of(work / f"kill-{point}-{scenario}" / "out"), ignore_errors=True)
    death = worker_death_trial(work / "worker-death", source, key_file, len(paths), limits=limits)
    print(f"  worker killed: rc={death['rc']} accounted={death['accounted']}/{death['total']}",
          file=sys.stderr, flush=True)
    return {"files": len(paths), "reference_rc": done.rc, "reference_released": len(reference),
            "reference_mappings": reference_gaps, "trials": trials, "worker_death": death}


# -- concurrency --------------------------------------------------------------------------------


def concurrency_trial(work: Path, source: Path, single: Path, key_file: Path, reference: dict[str, str],
                      *, second: str = "same", delay_files: int = 1, limits: Limits | None = None,
                      jobs: int = 2, pause_first: bool = True) -> dict:
    """Start a second run on the OUTPUT of a running one; it must be refused, nothing lost.

    With *pause_first* the first run is stopped (SIGSTOP, its whole process
    group) once it has released *delay_files* files, for as long as the
    second runs, then continued: the two surely overlap, whatever the speed of
    the machine.  Without it they simply run side by side, and the trial
    counts as overlapping only if the first was still running when the second
    ended.
    """
    limits = limits or Limits()
    output, mappings = work / "out", work / "maps"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    first = spawn([*medveil_command(), *deidentify_args(source, output, key_file, mappings, jobs)],
                  work / "logs-first", limits=limits)
    deadline = time.perf_counter() + limits.timeout_s
    while first.poll() is None and _count_released(output) < delay_files and time.perf_counter() < deadline:
        time.sleep(0.005)
    paused = pause_first and first.poll() is None
    if paused:
        kill_group(first.pid, signal.SIGSTOP)
    second_input = source if second == "same" else single
    try:
        second_done = run_medveil(deidentify_args(second_input, output, key_file, mappings, jobs),
                                  work / "logs-second", limits=limits)
    finally:
        if paused:
            kill_group(first.pid, signal.SIGCONT)
    try:
        first.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(first.pid)
        first.wait()
    kill_group(first.pid)
    first_stdout = (work / "logs-first" / "stdout.txt").read_text("utf-8", "replace")
    first_stderr = (work / "logs-first" / "stderr.txt").read_text("utf-8", "replace")
    after = tree_digest(output)
    lost = sorted(k for k in reference if after.get(k) != reference[k])
    message = second_done.stderr + second_done.stdout
    refused = second_done.rc == 2 and bool(re.search(r"another .*run|already .*running|in use", message, re.I))
    named = refused and str(first.pid) in message
    # Side by side, the trial counts only if the runs really overlapped: the second was refused, or
    # the audit store shows two runs whose [started, finished] intervals intersect.
    overlapped = paused or refused or _runs_overlap(workspace_of(output))
    summary = {}
    try:
        summary = json.loads(first_stdout)
    except ValueError:
        pass
    gaps = mapping_gaps(output, mappings)
    unwritten = sum(n for reason, n in summary.get("reasons", {}).items() if "could not be written" in reason)
    return {"second": second, "paused": paused, "overlapped": overlapped, "first_rc": first.returncode,
            "second_rc": second_done.rc, "refused": refused, "named": named,
            "second_message": message.strip()[-300:], "missing": len(lost), "unwritten": unwritten,
            "lost": max(len(lost), unwritten),
            "first_quarantined": summary.get("quarantined"),
            "first_reasons": summary.get("reasons", {}), "first_internal_error": "internal error" in first_stderr,
            "missing_from_mappings": gaps["missing_from_mappings"]}


def _runs_overlap(workspace: Path) -> bool:
    store = workspace / "audit.sqlite"
    if not store.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            runs = db.execute("SELECT started_at, finished_at FROM runs ORDER BY started_at").fetchall()
    except sqlite3.Error:
        return False
    return any(later[0] < (earlier[1] or "~") for earlier, later in itertools.pairwise(runs))


def run_concurrency(args, work: Path, key_file: Path, limits: Limits) -> dict:
    import random

    bases = rm.load_bases(max_bytes=args.max_base_kb * 1024)
    source = work / "concurrency-input"
    write_corpus(source, args.concurrency_files, args.seed, start=600_000, bases=bases)
    single = work / "concurrency-single"
    write_corpus(single, 1, args.seed, start=700_000, bases=bases)
    reference_dir = work / "concurrency-reference"
    shutil.rmtree(reference_dir, ignore_errors=True)
    run_medveil(deidentify_args(source, reference_dir / "out", key_file, reference_dir / "maps", args.jobs_faults),
                reference_dir / "logs", limits=limits)
    reference = tree_digest(reference_dir / "out")
    rng = random.Random(f"concurrency:{args.seed}")
    trials = []
    for number in range(args.concurrency_trials):
        trial_dir = work / f"concurrency-{number}"
        trial = concurrency_trial(trial_dir, source, single, key_file, reference,
                                  second="same" if number % 4 < 2 else "single", pause_first=number % 2 == 0,
                                  delay_files=rng.randint(1, max(1, len(reference) // 3)), limits=limits,
                                  jobs=args.jobs_faults)
        print(f"  concurrency {number:2d} ({trial['second']}, {'paused' if trial['paused'] else 'side by side'}): "
              f"overlapped={trial['overlapped']} refused={trial['refused']} named={trial['named']} "
              f"lost={trial['lost']} rc={trial['first_rc']}/{trial['second_rc']}",
              file=sys.stderr, flush=True)
        trials.append(trial)
        if not args.keep:
            shutil.rmtree(trial_dir, ignore_errors=True)
            shutil.rmtree(workspace_of(trial_dir / "out"), ignore_errors=True)
    return {"files": len(reference), "trials": trials}


# -- non-regular files ----------------------------------------------------------------------------


NONREGULAR_CASES = ("dev-zero", "dev-urandom", "fifo", "outside-link", "key-link")


def nonregular_case(work: Path, key_file: Path, *, limits: Limits | None = None, extra: list[str] = ()) -> dict:
    """INPUT with a normal file and /dev/zero, /dev/urandom, a FIFO, links outside and to the key."""
    limits = limits or Limits(fsize_mb=256, timeout_s=300)
    shutil.rmtree(work, ignore_errors=True)
    source, outside = work / "in", work / "outside"
    write_corpus(source, 1, 13, start=800_000, bases=rm.load_bases(names=["MR_small.dcm"]))
    write_corpus(outside, 1, 13, start=800_001, bases=rm.load_bases(names=["CT_small.dcm"]))
    (source / "dev-zero.dcm").symlink_to("/dev/zero")
    (source / "dev-urandom.dcm").symlink_to("/dev/urandom")
    os.mkfifo(source / "fifo.dcm")
    (source / "outside-link.dcm").symlink_to(outside / "800001.dcm")
    (source / "key-link.dcm").symlink_to(key_file.resolve())
    output, mappings = work / "out", work / "maps"
    done = run_medveil(["deidentify", str(source), str(output), "--key-file", str(key_file), "--mappings",
                        str(mappings), "--json", "--record-originals", *PROFILE_ARGS["basic"], *extra],
                       work / "logs", limits=limits)
    workspace = workspace_of(output)
    rows = audit_rows(workspace)
    secret = key_file.read_text().split()[-1].encode()
    key_copies = [str(p.relative_to(work)) for p in work.rglob("*")
                  if p.is_file() and not p.is_symlink() and p.resolve() != key_file.resolve()
                  and secret in p.read_bytes()]
    quarantine = workspace / "quarantine"
    cases = {}
    for case in NONREGULAR_CASES:
        row = next((r for r in rows if r["original_path"] and Path(r["original_path"]).name == f"{case}.dcm"), None)
        copied = 0
        if row is not None and quarantine.is_dir():
            for path in quarantine.glob(f"{row['input_ref']}*"):
                if not path.name.endswith(".txt"):
                    copied += path.stat().st_size
        cases[case] = {"status": row and row["status"], "reason": row and row["reason"], "copied_bytes": copied}
    return {"rc": done.rc, "timed_out": done.timed_out, "wall_s": round(done.wall_s, 2), "cases": cases,
            "key_copies": key_copies, "stderr_tail": done.stderr[-400:]}


def audit_rows(workspace: Path) -> list[dict]:
    store = workspace / "audit.sqlite"
    if not store.is_file():
        return []
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT input_ref, status, reason, original_path FROM files ORDER BY seq")]


# -- report ----------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarise(results: dict, args) -> tuple[list[tuple[str, str, int | None]], list[list[str]]]:
    rows: list[tuple[str, str, int | None]] = []  # (check, result text, defect count)
    per_class: list[list[str]] = []
    mutants = results.get("mutants")
    if mutants:
        batches = mutants["batches"]
        aborted = [b for b in batches if b["aborted"]]
        times = [t for b in batches for t in b["times"]]
        slow = [t for t in times if t > args.slow_file_s]
        peak = max((b["maxrss_mb"] for b in batches), default=0)
        over = [b for b in batches if b["maxrss_mb"] > args.rss_limit_mb]
        released = sum(b["released"] for b in batches)
        marker_leaks = {m for b in batches for m in b["leaked_markers"]}
        uid_leaks = {m for b in batches for m in b["leaked_uids"]}
        unreadable = sum(len(b["unreadable"]) for b in batches)
        traces = sum(1 for b in batches if b["traces"])
        temporaries = sum(b["temporaries"] for b in batches)
        n = mutants["mutants"]
        rows += [
            (f"batch aborts (crash, exit ≠ 0/1, timeout; {len(batches)} batches, {n:,} mutants)",
             f"{len(aborted)}", len(aborted)),
            ("released files with a planted marker (raw bytes, inflated or decoded values)",
             f"{len(marker_leaks)} of {released:,} released", len(marker_leaks)),
            ("released files with an original UID", f"{len(uid_leaks)}", len(uid_leaks)),
            ("released files pydicom cannot re-read", f"{unreadable}", unreadable),
            ("batches with a marker in terminal output, quarantine reasons or audit store",
             f"{traces}", traces),
            ("medveil temporaries left in OUTPUT after a run", f"{temporaries}", temporaries),
            (f"files slower than {args.slow_file_s:g} s", f"{len(slow)} (max {max(times, default=0):.2f} s, "
             f"p99 {percentile(times, 0.99):.3f} s)", len(slow)),
            (f"batches with a process over {args.rss_limit_mb:,} MB RSS", f"{len(over)} (peak {peak:,.0f} MB)",
             len(over)),
        ]
        long_files = [(subtype, seconds) for b in batches if b["cls"] == "long-value"
                      for subtype, seconds, *_ in b["sized"].values()]
        if long_files:
            def megabytes(subtype: str) -> int:
                return int(subtype.rsplit("-", 1)[1].rstrip("MB"))

            costly = [(s, t) for s, t in long_files if t / megabytes(s) > args.long_s_per_mb]
            worst = max(long_files, key=lambda st: st[1] / megabytes(st[0]))
            rows.append((f"long or zero-padded values ({len(long_files)} files, {len(rm.LONG_KINDS)} kinds): "
                         f"files slower than {args.long_s_per_mb:g} s per MB",
                         f"{len(costly)} (worst {worst[1] / megabytes(worst[0]):.2f} s/MB, {worst[0]})", len(costly)))
        classes = sorted({b["cls"] for b in batches})
        for cls in classes:
            group = [b for b in batches if b["cls"] == cls]
            gtimes = [t for b in group for t in b["times"]]
            per_class.append([
                cls, f"{sum(b['files'] for b in group):,}", f"{sum(b['released'] for b in group):,}",
                f"{sum(b['quarantined'] or 0 for b in group):,}",
                f"{len({m for b in group for m in b['leaked_markers']})}",
                f"{len({m for b in group for m in b['leaked_uids']})}",
                f"{sum(len(b['unreadable']) for b in group)}", f"{sum(1 for b in group if b['aborted'])}",
                f"{max(gtimes, default=0):.2f}", f"{max(b['maxrss_mb'] for b in group):,.0f}"])
    kill = results.get("kill")
    if kill:
        trials = [t for t in kill["trials"] if "error" not in t]
        differing = sum(1 for t in trials if t["differing"] or t["rerun_aborted"])
        missing = sum(t["missing_from_mappings"] for t in trials)
        temps = sum(1 for t in trials if t["temporaries_after_kill"])
        missed = sum(1 for t in trials if t["killed_at_released"] is None)
        rows += [
            (f"kill -9 at {args.kill_points} points × 2 scenarios ({kill['files']} files): reruns whose release "
             "differs from an uninterrupted run", f"{differing} of {len(trials)}"
             + (f" ({missed} ended before the kill)" if missed else ""), differing),
            ("kill -9: released files missing from uid_mapping.csv/patid_mapping.csv after the rerun",
             f"{missing} (in {sum(1 for t in trials if t['missing_from_mappings'])} of {len(trials)} reruns)",
             missing),
            ("kill -9: medveil temporaries visible in OUTPUT until the next run",
             f"{temps} of {len(trials)} kills", temps),
        ]
        death = kill["worker_death"]
        lost = death["total"] - death["accounted"]
        bad = int(death["aborted"]) + (1 if lost else 0)
        rows.append(("a worker killed mid-run (SIGKILL): batch aborts / inputs unaccounted",
                     f"{int(death['aborted'])} / {max(lost, 0)}", bad))
    concurrency = results.get("concurrency")
    if concurrency:
        trials = concurrency["trials"]
        overlapping = [t for t in trials if t["overlapped"]]
        not_refused = sum(1 for t in overlapping if not t["refused"])
        unnamed = sum(1 for t in overlapping if t["refused"] and not t.get("named", True))
        lost_trials = [t for t in trials if t["lost"]]
        rows += [
            (f"two runs on one OUTPUT: second run not refused, or refused without naming the first "
             f"({len(overlapping)} overlapping trials)",
             f"{not_refused} / {unnamed} of {len(overlapping)}", not_refused + unnamed),
            ("two runs on one OUTPUT: files of the first run lost (missing, or quarantined as not written)",
             f"{sum(t['lost'] for t in trials)} (in {len(lost_trials)} of {len(trials)} trials)",
             sum(t["lost"] for t in trials)),
        ]
    nonregular = results.get("nonregular")
    if nonregular:
        cases = nonregular["cases"]
        devices = [c for c in ("dev-zero", "dev-urandom", "fifo")
                   if cases[c]["status"] != "skipped" or cases[c]["copied_bytes"]]
        copied = sum(cases[c]["copied_bytes"] for c in ("dev-zero", "dev-urandom", "fifo"))
        links = [c for c in ("outside-link", "key-link")
                 if cases[c]["status"] != "skipped" or cases[c]["copied_bytes"]]
        rows += [
            ("non-regular inputs (/dev/zero, /dev/urandom, FIFO) opened or copied instead of skipped",
             f"{len(devices)} of 3" + (f" ({copied / 2**20:,.0f} MB copied, capped by the benchmark)"
                                       if copied else ""), len(devices)),
            ("symlinks out of INPUT followed (a file outside, the key file) / key copies",
             f"{len(links)} of 2 / {len(nonregular['key_copies'])}", len(links) + len(nonregular["key_copies"])),
        ]
    return rows, per_class


def markdown(rows, per_class, results, args) -> str:
    lines = ["| check | result | goal |", "|---|---|---|"]
    lines += [f"| {check} | {text} | 0 |" for check, text, _ in rows]
    out = "\n".join(lines)
    sized = [(b["profile"], *entry) for b in (results.get("mutants") or {}).get("batches", [])
             if b["cls"] in rm.SIZED_CLASSES for entry in b["sized"].values()]
    if sized:
        table = ["| file | profile | input MB | seconds | s per MB of value | outcome |", "|---|---|---|---|---|---|"]
        for profile, subtype, seconds, size, outcome in sorted(sized, key=lambda e: (e[1], e[0])):
            value_mb = int(subtype.rsplit("-", 1)[1].rstrip("MB"))
            table.append(f"| {subtype} | {profile} | {size:g} | {seconds:.2f} | {seconds / value_mb:.3f} | {outcome} |")
        out += "\n\nSized mutants (deflate bombs: MB inflated; long values: MB of the value):\n\n" + "\n".join(table)
    if per_class:
        head = ["class", "mutants", "released", "quarantined", "marker leaks", "UID leaks", "unreadable",
                "aborted batches", "max s/file", "peak RSS MB"]
        table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        table += ["| " + " | ".join(row) + " |" for row in per_class]
        out += "\n\nPer mutation class:\n\n" + "\n".join(table)
    return out


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="batches run at the same time")
    parser.add_argument("--jobs", type=int, default=1, help="medveil -j for each batch (1: exact per-file times)")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--profiles", default="basic,tcia", type=lambda s: [p for p in s.split(",") if p])
    parser.add_argument("--bomb-mb", default=",".join(map(str, DEFAULT_BOMBS_MB)),
                        type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--long-mb", default=",".join(map(str, DEFAULT_LONG_MB)),
                        type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--long-s-per-mb", type=float, default=0.1,
                        help="long values: the most seconds per MB that counts as linear and cheap")
    parser.add_argument("--max-base-kb", type=int, default=1024, help="largest corpus file used as a source")
    parser.add_argument("--kill-files", type=int, default=300)
    parser.add_argument("--kill-points", type=int, default=5)
    parser.add_argument("--jobs-faults", type=int, default=2,
                        help="medveil -j for the kill and concurrency runs")
    parser.add_argument("--concurrency-trials", type=int, default=15)
    parser.add_argument("--concurrency-files", type=int, default=150)
    parser.add_argument("--slow-file-s", type=float, default=10.0)
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--fsize-limit-mb", type=int, default=4096)
    parser.add_argument("--as-limit-mb", type=int, default=2048)
    parser.add_argument("--batch-timeout-s", type=float, default=1800)
    parser.add_argument("--medveil-args", default="", type=shlex.split,
                        help="extra arguments for every deidentify run, e.g. \"--memory-budget 512M\"")
    parser.add_argument("--only", default="mutants,kill,concurrency,nonregular",
                        type=lambda s: {p for p in s.split(",") if p})
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep inputs and outputs of every batch")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_timed"]:
        _timed_cli(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    args = parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom quotes values in its warnings while outputs are scanned
    work = args.work or Path(tempfile.mkdtemp(prefix="medveil-robustness-"))
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "robustness.key"
    if not key_file.exists():
        subprocess.run([*medveil_command(), "keygen", str(key_file)], check=True, capture_output=True)
    limits = Limits(fsize_mb=args.fsize_limit_mb or None, as_mb=args.as_limit_mb or None,
                    timeout_s=args.batch_timeout_s)
    from medveil._version import __version__

    results: dict = {"seed": args.seed, "medveil": __version__, "machine": platform.platform(),
                     "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "args": {k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
                              for k, v in vars(args).items()}}
    started = time.perf_counter()
    if "mutants" in args.only:
        results["mutants"] = run_mutants(args, work / "mutants", key_file, limits)
    if "kill" in args.only:
        results["kill"] = run_kill(args, work / "kill", key_file, limits)
    if "concurrency" in args.only:
        results["concurrency"] = run_concurrency(args, work / "concurrency", key_file, limits)
    if "nonregular" in args.only:
        results["nonregular"] = nonregular_case(work / "nonregular", key_file)
    results["seconds"] = round(time.perf_counter() - started, 1)
    rows, per_class = summarise(results, args)
    results["table"] = [{"check": c, "result": r, "defects": d} for c, r, d in rows]
    text = markdown(rows, per_class, results, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if not args.work and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
