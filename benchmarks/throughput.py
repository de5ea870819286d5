#!/usr/bin/env python3
"""Header de-identification throughput against baselines measured in the same run.

Workload: every file of pydicom's bundled test data and of the pydicom-data
package that medveil writes (files it quarantines are left out of every
contender, so all process the same set), copied ``--copies`` times with fresh
UIDs so that the run is long enough to time.

Contenders, each timed ``--repeats`` times (medians reported):
  copy         shutil.copyfile of each file (the I/O floor)
  pydicom      pydicom.dcmread + Dataset.save_as (the parse/serialise floor)
  dicognito    dicognito's Anonymizer on each dataset + save_as
  medveil      medveil's batch runner, one worker (discovery, audit store,
               verification, mapping files included), profile ``tcia``
  medveil-j2   the same with two worker processes

Ratios are to pydicom (the issue's goal: medveil within 3x of it) and to
dicognito (goal: faster).  Usage: python benchmarks/throughput.py [--copies N]
[--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.uid import generate_uid

from medveil import deidentify_path, get_profile
from medveil.policy import Option
from medveil.pseudonym import throwaway_key
from medveil.quiet import silenced

#: tcia without Clean Pixel Data: the header-only path (pixel_bench.py measures the OCR step).
HEADER_ONLY = get_profile("tcia")
HEADER_ONLY = dataclasses.replace(HEADER_ONLY, options=HEADER_ONLY.options - {Option.CLEAN_PIXEL_DATA})


def corpus_files() -> list[Path]:
    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for root in roots for p in root.rglob("*.dcm"))


def build_workload(work: Path, copies: int) -> tuple[Path, int, int]:
    """Files every contender can process, copied with fresh UIDs; returns (dir, files, bytes)."""
    inputs = work / "in"
    count = size = 0
    for source in _accepted_inputs(_stage(corpus_files(), work / "staged")):
        if not _every_contender_reads(source):
            continue
        for copy in range(copies):
            ds = pydicom.dcmread(source)
            ds.SOPInstanceUID = generate_uid()
            if copy:
                ds.SeriesInstanceUID = generate_uid()
            target = inputs / f"{copy:03d}" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target)
            count += 1
            size += target.stat().st_size
    if not count:
        raise SystemExit("no usable input file; nothing to measure")
    return inputs, count, size


def _every_contender_reads(path: Path) -> bool:
    """Plain pydicom (and dicognito, if present) must handle the file too, or it is left out."""
    import copy
    import io

    try:
        ds = pydicom.dcmread(path)
        ds.save_as(io.BytesIO())
        try:
            from dicognito.anonymizer import Anonymizer
        except ImportError:
            return True
        other = copy.deepcopy(ds)
        Anonymizer().anonymize(other)
        other.save_as(io.BytesIO())
    except Exception:
        return False
    return True


def _stage(files: list[Path], target: Path) -> Path:
    target.mkdir(parents=True)
    for index, path in enumerate(files):
        shutil.copyfile(path, target / f"{index:04d}_{path.name}")
    return target


def _accepted_inputs(staged: Path) -> list[Path]:
    """The inputs medveil writes: the others are quarantined and left out for everyone."""
    from medveil.runner.book import input_ref
    from medveil.store.audit import AuditStore

    key = throwaway_key()
    workspace = staged.parent / "probe-ws"
    deidentify_path(staged, staged.parent / "probe-out", policy=HEADER_ONLY, key=key,
                    workspace=workspace)
    with AuditStore.open(workspace / "audit.sqlite") as store:
        return [path for path in sorted(staged.iterdir())
                if (record := store.last_result(input_ref(key, staged, path))) is not None
                and record.status == "written"]


def time_copy(inputs: Path, out: Path) -> None:
    for path in inputs.rglob("*.dcm"):
        target = out / path.relative_to(inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def time_pydicom(inputs: Path, out: Path) -> None:
    # With medveil's quiet settings (no value validation, no warnings): the fastest floor.
    with silenced():
        for path in inputs.rglob("*.dcm"):
            target = out / path.relative_to(inputs)
            target.parent.mkdir(parents=True, exist_ok=True)
            pydicom.dcmread(path).save_as(target)


def time_dicognito(inputs: Path, out: Path) -> None:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    for path in inputs.rglob("*.dcm"):
        target = out / path.relative_to(inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(target)


def time_medveil(inputs: Path, out: Path, workers: int) -> None:
    deidentify_path(inputs, out, policy=HEADER_ONLY, key=throwaway_key(),
                    workspace=out.parent / (out.name + "-ws"), mappings_dir=out.parent / (out.name + "-maps"),
                    workers=workers)


def markdown_table(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as a Markdown table, columns in the first row's order."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row.get(h, "")) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    contenders = {
        "copy": time_copy,
        "pydicom": time_pydicom,
        "medveil": lambda i, o: time_medveil(i, o, 1),
        "medveil-j2": lambda i, o: time_medveil(i, o, 2),
    }
    try:
        import dicognito  # noqa: F401

        contenders["dicognito"] = time_dicognito
    except ImportError:
        print("dicognito not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs, count, size = build_workload(work, args.copies)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for repeat in range(args.repeats):
            for name, fn in contenders.items():  # interleaved, so drift hits all alike
                out = work / f"out-{name}-{repeat}"
                start = time.perf_counter()
                fn(inputs, out)
                times[name].append(time.perf_counter() - start)
                shutil.rmtree(out, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = []
    for name, seconds in medians.items():
        row = {"contender": name, "median_s": round(seconds, 3), "files_per_s": round(count / seconds, 1),
               "mb_per_s": round(size / seconds / 1e6, 1),
               "time_vs_pydicom": round(seconds / medians["pydicom"], 2)}
        if "dicognito" in medians:
            row["time_vs_dicognito"] = round(seconds / medians["dicognito"], 2)
        rows.append(row)
    print(f"workload: {count} files, {size / 1e6:.1f} MB; {args.repeats} repeats; medians")
    print(markdown_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"files": count, "bytes": size, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
