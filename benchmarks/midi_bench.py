#!/usr/bin/env python3
"""MIDI-B style scores for medveil and its peers on one synthetic set, side by side.

Steps, each timed:
  1. ``medveil synth`` writes a fresh synthetic corpus with an answer key into
     WORKDIR/synth (input/, answer_key.db, manifest.json).
  2. medveil de-identifies it (profile ``tcia``, whose Clean Pixel Data option
     OCRs every image and masks burned-in PHI; a fresh key made with ``medveil
     keygen``), writing its own mapping files; ``medveil validate`` scores the
     output.
  3. Each peer (dicognito, pydicom/deid, Kitware's dicom-anonymizer) runs with
     its default behaviour, in its own pinned virtual environment, into
     WORKDIR/<peer>/out mirroring the input's relative paths; the validator
     infers its mappings with ``--original`` since no peer writes any.
  4. One table: tool, version, instance/series/weighted score, instance
     score per action, files written/total, wall time.  Also written to
     WORKDIR/midi_table.md and, with every summary, WORKDIR/midi_results.json.

Every tool is validated by the same command over the same key, so the numbers
differ only by what the tools did.  A peer that cannot be installed, times
out or crashes is a "failed: reason" row, not the end of the benchmark: a
comparison with one peer missing still says something.  Validator reports
(discrepancy CSVs) stay under WORKDIR: they hold the values found, which for
synthetic data are invented, but the habit of keeping them private is the
point.

Usage: python benchmarks/midi_bench.py [--seed N] [--patients K] [--max-files M]
[--workdir DIR] [--peers a,b] [--skip-peers] [--timeout S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from peers import PEER_NAMES, PeerError, get_peer, run_peer, short_reason
from peers.venvs import DEFAULT_ROOT, ensure_venv

MEDVEIL = [sys.executable, "-m", "medveil"]


@dataclass
class Row:
    """One tool's line of the table; ``failure`` set means the scores are absent."""

    tool: str
    version: str = "?"
    instance: float | None = None
    series: float | None = None
    weighted: float | None = None
    actions: dict[str, float | None] = field(default_factory=dict)
    written: int | None = None
    total: int | None = None
    seconds: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    failure: str | None = None
    summary: dict | None = None
    #: Files the tool did not release (medveil: quarantined; a peer: inputs without an output).
    quarantined: int | None = None
    #: medveil only: attributes repaired instead of quarantining their file, by keyword.
    repairs: dict[str, int] = field(default_factory=dict)


def row_from_summary(row: Row, summary: dict) -> Row:
    """Fill a row's scores from ``medveil validate --json`` output.

    Per-action scores are the instance level's: the series level is in the
    JSON file for whoever needs it, and ten more columns would drown the table.
    """
    instance = summary.get("instance") or {}
    series = summary.get("series") or {}
    row.instance = instance.get("score")
    row.series = series.get("score")
    row.weighted = instance.get("weighted", summary.get("weighted"))
    actions = instance.get("actions") or summary.get("actions") or {}
    row.actions = {name: tally.get("score") for name, tally in actions.items()}
    row.summary = summary
    return row


def action_columns(rows: list[Row]) -> list[str]:
    """Every action any tool was scored on, in the validator's own order where it has one."""
    try:
        from medveil.evaluate.answer_key import ACTIONS
    except ImportError:
        ACTIONS = ()
    seen = {name for row in rows for name in row.actions}
    return [a for a in ACTIONS if a in seen] + sorted(seen - set(ACTIONS))


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_table(rows: list[Row]) -> str:
    """A Markdown table: scores in percent, a failed tool's reason across its score cells."""
    actions = action_columns(rows)
    header = ["tool", "version", "instance %", "series %", "weighted %", *actions, "files", "not released",
              "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        written = "-" if row.written is None else row.written
        files = "-" if row.total is None else f"{written}/{row.total}"
        seconds = "-" if row.seconds is None else f"{row.seconds:.1f}"
        if row.failure:
            scores = [f"failed: {row.failure}"] + [""] * (2 + len(actions))
        else:
            scores = [percent(row.instance), percent(row.series), percent(row.weighted),
                      *(percent(row.actions.get(a)) for a in actions)]
        held = "-" if row.quarantined is None else str(row.quarantined)
        cells = [row.tool, row.version, *scores, files, held, seconds]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def parse_json_stdout(stdout: str) -> dict:
    """The JSON object a ``--json`` command printed (from its first line that opens one)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("{"):
            return json.loads("\n".join(lines[index:]))
    raise ValueError("no JSON object on stdout")


def count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def run(cmd: list[str], timeout: float, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    """Run a medveil command; a bad exit or a timeout is a PeerError with a short reason."""
    what = cmd[len(MEDVEIL)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PeerError(f"{what}: timeout after {timeout:.0f} s") from None
    if proc.returncode not in ok:
        raise PeerError(f"{what} exit {proc.returncode}: {short_reason(proc.stderr or proc.stdout)}")
    return proc


def validate(output: Path, key: Path, mappings: Path, report: Path, timeout: float,
             original: Path | None = None) -> dict:
    cmd = [*MEDVEIL, "validate", str(output), "--answer-key", str(key), "--mappings", str(mappings),
           "--report", str(report), "--json"]
    if original is not None:
        cmd += ["--original", str(original)]
    return parse_json_stdout(run(cmd, timeout).stdout)


def medveil_version() -> str:
    from importlib.metadata import version

    return version("medveil")


def bench_medveil(synth: Path, work: Path, timeout: float, workers: int,
                  timings: dict[str, float]) -> Row:
    row = Row("medveil", medveil_version(), total=count_files(synth / "input"))
    out, mappings = work / "out", work.parent / "medveil-mappings"
    key = work.parent / "bench.key"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(mappings, ignore_errors=True)
    key.unlink(missing_ok=True)  # keygen never overwrites, and a fresh key per run is the point
    work.mkdir(parents=True)
    try:
        run([*MEDVEIL, "keygen", str(key)], 60)
        start = time.perf_counter()
        done = run([*MEDVEIL, "deidentify", str(synth / "input"), str(out), "--profile", "tcia",
                    "--key-file", str(key), "--mappings", str(mappings),
                    "--workspace", str(work / "workspace"), "--workers", str(workers), "--json"],
                   timeout, ok=(0, 1))  # 1: some files quarantined, still a result to score
        row.seconds = time.perf_counter() - start
        row.written = count_files(out)
        run_summary = parse_json_stdout(done.stdout)
        row.quarantined = int(run_summary.get("quarantined", 0))
        row.repairs = dict(sorted((run_summary.get("repairs") or {}).items()))
        start = time.perf_counter()
        row_from_summary(row, validate(out, synth / "answer_key.db", mappings,
                                       work / "discrepancies.csv", timeout))
        timings["medveil validate"] = time.perf_counter() - start
    except (PeerError, ValueError) as exc:
        row.failure = str(exc)
    return row


def bench_peer(name: str, synth: Path, workdir: Path, venvs: Path, timeout: float,
               timings: dict[str, float]) -> Row:
    row = Row(name, total=count_files(synth / "input"))
    work = workdir / name
    shutil.rmtree(work, ignore_errors=True)
    (work / "mappings").mkdir(parents=True)  # empty: the validator infers pairs from --original
    try:
        peer = get_peer(name)
        start = time.perf_counter()
        venv = ensure_venv(peer, venvs)
        timings[f"{name} venv"] = time.perf_counter() - start
        row.version = venv.version
        result = run_peer(peer, venv.python, synth / "input", work / "out", timeout, work)
        row.seconds, row.errors = result.seconds, result.errors
        row.written = count_files(work / "out")
        row.quarantined = max(0, (row.total or 0) - row.written)
        if result.failure:
            raise PeerError(result.failure)
        start = time.perf_counter()
        row_from_summary(row, validate(work / "out", synth / "answer_key.db", work / "mappings",
                                       work / "discrepancies.csv", timeout, original=synth / "input"))
        timings[f"{name} validate"] = time.perf_counter() - start
    except (PeerError, ValueError) as exc:
        row.failure = str(exc)
    return row


def synthesize(args: argparse.Namespace, synth: Path) -> None:
    shutil.rmtree(synth, ignore_errors=True)
    cmd = [*MEDVEIL, "synth", str(synth), "--seed", str(args.seed)]
    if args.patients is not None:
        cmd += ["--patients", str(args.patients)]
    if args.max_files is not None:
        cmd += ["--max-files", str(args.max_files)]
    run(cmd, args.timeout)


def write_results(workdir: Path, args: argparse.Namespace, rows: list[Row], timings: dict[str, float],
                  peers: list[str]) -> str:
    date = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    versions = {row.tool: row.version for row in rows}
    table = format_table(rows)
    head = (f"MIDI-B style scores on medveil synth (seed {args.seed}, {rows[0].total} files), {date}.\n"
            f"Scores are percentages of required actions done right; per-action columns are "
            f"instance level.\n")
    notes = "\n".join(f"- {name}: {get_peer(name).default}" for name in peers)
    repairs = "; ".join(f"{row.tool}: " + (", ".join(f"{k} {v}" for k, v in row.repairs.items()) or "none")
                        for row in rows if row.tool == "medveil")
    if repairs:
        table += f"\n\nRepairs by attribute (instead of quarantining the file): {repairs}"
    (workdir / "midi_table.md").write_text(head + "\n" + table + "\n" + (f"\nPeer defaults:\n{notes}\n"
                                                                        if notes else ""))
    (workdir / "midi_results.json").write_text(json.dumps({
        "date": date, "seed": args.seed, "patients": args.patients, "max_files": args.max_files,
        "versions": versions, "python": sys.version.split()[0], "timings_s": timings,
        "rows": [asdict(row) for row in rows],
    }, indent=2, default=str) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--patients", type=int)
    parser.add_argument("--max-files", type=int)
    parser.add_argument("--workdir", type=Path, default=Path(".bench/midi"))
    parser.add_argument("--venvs", type=Path, default=DEFAULT_ROOT, help="where peer venvs live")
    parser.add_argument("--peers", default=",".join(PEER_NAMES), help="comma list of peers")
    parser.add_argument("--skip-peers", action="store_true", help="medveil only")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per tool and step")
    parser.add_argument("--workers", type=int, default=1, help="medveil worker processes")
    args = parser.parse_args(argv)
    peers = [] if args.skip_peers else [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEER_NAMES))
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEER_NAMES)}")
    workdir = args.workdir.resolve()
    venvs = args.venvs.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    synth = workdir / "synth"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    try:
        synthesize(args, synth)
    except PeerError as exc:
        print(f"synth failed: {exc}", file=sys.stderr)
        return 2
    timings["synth"] = time.perf_counter() - start
    print(f"synth: {count_files(synth / 'input')} files in {timings['synth']:.1f} s", file=sys.stderr)

    rows = []
    start = time.perf_counter()
    rows.append(bench_medveil(synth, workdir / "medveil", args.timeout, args.workers, timings))
    timings["medveil total"] = time.perf_counter() - start
    print(f"medveil: {timings['medveil total']:.1f} s", file=sys.stderr)
    for name in peers:
        start = time.perf_counter()
        rows.append(bench_peer(name, synth, workdir, venvs, args.timeout, timings))
        timings[f"{name} total"] = time.perf_counter() - start
        print(f"{name}: {timings[f'{name} total']:.1f} s", file=sys.stderr)

    print(write_results(workdir, args, rows, timings, peers))
    print(f"\nwritten: {workdir / 'midi_table.md'}, {workdir / 'midi_results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
