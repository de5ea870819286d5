#!/usr/bin/env python3
"""Record, or check, what medveil releases for a fixed set of inputs: the golden outputs.

A refactoring must not change a single released byte.  This script runs
``medveil deidentify`` with a fixed key over fixed inputs (pydicom's bundled
test files under two profiles, a generated synthetic-PHI set, the demo sample,
and ``../shared/corpora`` where present) and writes, per case, the SHA-256 of
every released file, of both mapping files, and the parts of the JSON summary
that describe outcomes (counts, reasons, repairs; not run IDs or paths).

Cases whose outputs depend on OCR (Clean Pixel Data) are only comparable on
a machine whose OCR stack computes the same numbers; the manifest records that
stack (library versions, CPU vector extensions) and ``check`` compares those
cases only where it matches, and says so where it does not.

Usage::

    python tools/golden.py write [--manifest tests/data/golden.json] [--cases NAME,...]
    python tools/golden.py check [--manifest tests/data/golden.json] [--cases NAME,...]

The manifest holds hashes and counts only: no values from the inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pydicom.data

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MANIFEST = ROOT / "tests" / "data" / "golden.json"
PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: A fixed key (not secret: it only makes the golden pseudonyms reproducible).
KEY = bytes(range(1, 33)).hex()
#: Summary fields that describe what happened (the rest names run IDs, paths or the machine's memory).
SUMMARY_FIELDS = ("actions", "duplicates", "events", "files_total", "quarantined", "reasons", "repairs",
                  "skipped", "unchanged", "written", "not_scanned")


@dataclass(frozen=True)
class Case:
    name: str
    #: Builds the input tree in the given folder; returns False where its source is missing.
    source: str
    args: tuple[str, ...]
    ocr: bool


CASES = (
    Case("pydicom-basic", "pydicom", ("--profile", "basic"), ocr=False),
    Case("pydicom-tcia", "pydicom", ("--profile", "tcia"), ocr=True),
    Case("pydicom-tcia-no-pixels", "pydicom", ("--profile", "tcia", "--without", "clean_pixel_data",
                                               "--burned-in", "pass"), ocr=False),
    Case("synth-basic", "synth", ("--profile", "basic", "--burned-in", "pass"), ocr=False),
    Case("synth-tcia-sequential", "synth", ("--profile", "tcia", "--without", "clean_pixel_data",
                                            "--burned-in", "pass", "--sequential-ids"), ocr=False),
    Case("demo", "demo", ("--profile", "tcia"), ocr=True),
    Case("shared-tcia", "shared", ("--profile", "tcia"), ocr=True),
    Case("shared-basic", "shared", ("--profile", "basic", "--burned-in", "pass"), ocr=False),
)


def ocr_stack() -> dict:
    """What OCR's numbers depend on: library versions and the CPU's vector extensions."""
    versions = {}
    for package in ("numpy", "onnxruntime", "opencv-python", "opencv-python-headless", "rapidocr-onnxruntime",
                    "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "Pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "fma", "sse4")))
                break
    except OSError:
        pass
    return {"machine": platform.machine(), "versions": versions, "cpu": flags}


def build_input(source: str, folder: Path, medveil: list[str]) -> bool:
    """Put the inputs of *source* in *folder*; False when they are not available here."""
    folder.mkdir(parents=True)
    if source == "pydicom":
        for path in sorted(PYDICOM_FILES.glob("*.dcm")):
            (folder / path.name).write_bytes(path.read_bytes())
        return True
    if source == "synth":
        out = folder.parent / "synth"
        subprocess.run([*medveil, "synth", str(out), "--seed", "2718", "--patients", "4"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = out / "input" if (out / "input").is_dir() else out
        for path in sorted(p for p in data.rglob("*") if p.is_file() and p.suffix.lower() == ".dcm"):
            target = folder / path.relative_to(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        return True
    if source == "demo":
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_sample.py"), str(folder)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    if source == "shared":
        corpora = SHARED / "corpora"
        if not corpora.is_dir():
            return False
        for path in sorted(p for p in corpora.rglob("*.dcm") if p.is_file()):
            target = folder / path.relative_to(corpora)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        return True
    raise ValueError(f"unknown source {source!r}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_case(case: Case, work: Path) -> dict | None:
    """The case's outcome: hashes of the release and mappings, and the summary's outcome fields."""
    medveil = [sys.executable, "-m", "medveil"]
    if not build_input(case.source, work / "input", medveil):
        return None
    key = work / "golden.key"
    key.write_text("medveil-key-v1\n" + KEY + "\n")
    os.chmod(key, 0o600)
    output, mappings = work / "output", work / "mappings"
    done = subprocess.run([*medveil, "deidentify", str(work / "input"), str(output), "--key-file", str(key),
                           "--mappings", str(mappings), "--json", "--no-resume", "--progress-every", "0",
                           *case.args], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{case.name}: medveil deidentify exited {done.returncode}: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    return {
        "exit": done.returncode,
        "summary": {field: summary.get(field) for field in SUMMARY_FIELDS},
        "released": {str(p.relative_to(output)): sha256(p) for p in sorted(output.rglob("*")) if p.is_file()},
        "mappings": {p.name: sha256(p) for p in sorted(mappings.glob("*.csv"))},
    }


def compute(names: list[str]) -> dict:
    results = {}
    for case in CASES:
        if case.name not in names:
            continue
        with tempfile.TemporaryDirectory(prefix=f"medveil-golden-{case.name}-") as tmp:
            result = run_case(case, Path(tmp))
        if result is not None:
            results[case.name] = result
        print(f"{case.name}: {'absent' if result is None else len(result['released'])} released",
              file=sys.stderr)
    return results


def compare(expected: dict, actual: dict) -> list[str]:
    """Differences between two outcomes of one case, as short lines (names and hashes only)."""
    problems = []
    if expected["exit"] != actual["exit"]:
        problems.append(f"exit {expected['exit']} -> {actual['exit']}")
    for field, value in expected["summary"].items():
        if actual["summary"].get(field) != value:
            problems.append(f"summary.{field}: {value!r} -> {actual['summary'].get(field)!r}")
    for kind in ("released", "mappings"):
        before, after = expected[kind], actual[kind]
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                state = "missing" if name not in after else "new" if name not in before else "differs"
                problems.append(f"{kind} {name}: {state}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("write", "check"))
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--cases", default=",".join(case.name for case in CASES))
    args = parser.parse_args(argv)
    names = [name for name in args.cases.split(",") if name]
    unknown = set(names) - {case.name for case in CASES}
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    if args.mode == "write":
        # Writing some cases keeps the others as recorded: one manifest, one OCR stack.
        kept: dict = {}
        if args.manifest.exists() and set(names) != {case.name for case in CASES}:
            recorded = json.loads(args.manifest.read_text())
            if recorded.get("ocr_stack") != ocr_stack():
                parser.error("the manifest was recorded on another OCR stack: write every case, not some")
            kept = {name: value for name, value in recorded["cases"].items() if name not in names}
        manifest = {"ocr_stack": ocr_stack(), "cases": {**kept, **compute(names)}}
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        args.manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.manifest}", file=sys.stderr)
        return 0
    manifest = json.loads(args.manifest.read_text())
    same_stack = manifest["ocr_stack"] == ocr_stack()
    ocr_cases = {case.name for case in CASES if case.ocr}
    checkable = [n for n in names if n in manifest["cases"] and (same_stack or n not in ocr_cases)]
    failed = False
    for name, actual in compute(checkable).items():
        problems = compare(manifest["cases"][name], actual)
        failed |= bool(problems)
        print(f"{name}: {'identical' if not problems else f'{len(problems)} differences'}")
        for line in problems[:40]:
            print(f"  {line}")
    if not same_stack:
        print("OCR cases not compared: this machine's OCR stack differs from the manifest's")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
