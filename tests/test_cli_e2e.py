"""End to end through the ``medveil`` command on real DICOM corpora.

Every file of pydicom's bundled test data and of the pydicom-data and
deid-data packages is copied under a directory named like a real export
(patient name and MRN in the path) and de-identified by the command line,
with the Basic Profile and with the TCIA profile.  Files presumed to carry
burned-in text are passed (``--burned-in pass``) so that every header goes
through the engine; the TCIA runs drop Clean Pixel Data (``--without``),
since these tests are about headers and OCR over the whole corpus, four
times, would take many minutes (pixel cleaning is tested end to end in
test_pixels_e2e.py and test_pixels_syntaxes.py).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from corpora import all_corpora
from medveil.engine.dummy import GENERATED_VALUES
from medveil.engine.uids import is_class_keyword, is_well_known
from medveil.pseudonym import load_key
from medveil.quiet import silenced
from medveil.runner.book import input_ref

pytestmark = pytest.mark.slow  # the CLI over every installed corpus, under both profiles, plus dciodvfy

EXPORT_DIR = "DOE^JANE_MRN0777"
IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs", "PatientAddress",
               "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
               "OperatorsName", "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "AccessionNumber")


def medveil(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "medveil", *args], capture_output=True, text=True)
    if check and result.returncode not in (0, 1):
        raise AssertionError(f"medveil failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "in"
    for name, path in all_corpora().items():
        shutil.copytree(path, root / EXPORT_DIR / name, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


@pytest.fixture(scope="module")
def key_file(corpus) -> Path:
    path = corpus.parent / "medveil.key"
    medveil("keygen", str(path), check=True)
    return path


def _run(corpus: Path, key_file: Path, profile: str, name: str, *extra: str) -> dict:
    out = corpus.parent / name
    maps = corpus.parent / f"{name}-maps"
    pixels = ("--without", "clean_pixel_data") if profile == "tcia" else ()
    result = medveil("deidentify", str(corpus), str(out), "--profile", profile, "--key-file", str(key_file),
                     "--burned-in", "pass", "--mappings", str(maps), "--json", *pixels, *extra, check=True)
    summary = json.loads(result.stdout)
    return {"out": out, "maps": maps, "summary": summary, "stdout": result.stdout, "stderr": result.stderr,
            "workspace": Path(summary["workspace"])}


@pytest.fixture(scope="module", params=["basic", "tcia"])
def run(request, corpus, key_file) -> dict:
    info = _run(corpus, key_file, request.param, f"out-{request.param}")
    info["profile"] = request.param
    return info


def _pairs(corpus: Path, key_file: Path, run: dict) -> list[tuple[Path, Path]]:
    """(input, output) for every written file, through the audit store's keyed references."""
    key = load_key(key_file)
    db = sqlite3.connect(run["workspace"] / "audit.sqlite")
    rows = dict(db.execute("SELECT input_ref, output_relpath FROM files WHERE run_id = ? AND status "
                           "IN ('written', 'unchanged')", (run["summary"]["run_id"],)))
    db.close()
    pairs = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        rel = rows.pop(input_ref(key, corpus, path), None)
        if rel is not None:
            pairs.append((path, run["out"] / rel))
    assert not rows
    return pairs


def _read(path: Path) -> pydicom.Dataset:
    with silenced():
        return pydicom.dcmread(path, force=True)


def _pixels(ds: pydicom.Dataset) -> bytes | None:
    return bytes(ds.get_item(0x7FE00010).value) if 0x7FE00010 in ds else None


def test_most_of_the_corpus_is_written(run):
    summary = run["summary"]
    assert summary["files_total"] > 200
    assert summary["written"] > 150
    assert (summary["written"] + summary["unchanged"] + summary["quarantined"] + summary["skipped"]
            == summary["files_total"])


def test_outputs_reread_with_pixels_and_syntax_unchanged(run, corpus, key_file):
    pairs = _pairs(corpus, key_file, run)
    assert len(pairs) == run["summary"]["written"] + run["summary"]["unchanged"]
    for source, output in pairs:
        before, after = _read(source), pydicom.dcmread(output)
        assert _pixels(after) == _pixels(before), source.name
        original_syntax = getattr(before, "file_meta", {}).get("TransferSyntaxUID")
        if original_syntax is not None:
            assert after.file_meta.TransferSyntaxUID == original_syntax, source.name
        assert after.PatientIdentityRemoved == "YES"
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID


def _original_values(ds: pydicom.Dataset) -> set[str]:
    """Identifying values of *ds*, except ones that also name its equipment.

    Test files often use the manufacturer as the institution ("TOSHIBA" /
    "TOSHIBA_MEC"); Manufacturer is kept by the standard and names no person.
    """
    equipment = " ".join(str(ds.get(k, "")) for k in ("Manufacturer", "ManufacturerModelName")).upper()
    values = set()
    for keyword in IDENTIFYING:
        if keyword in ds and ds[keyword].VR != "SQ":
            value = ds[keyword].value
            for item in (value if ds[keyword].VM > 1 else [value]):
                text = str(item).strip()
                if len(text) >= 5 and text.upper() not in GENERATED_VALUES and text.upper() not in equipment:
                    values.add(text)
    return values


def _original_uids(ds: pydicom.Dataset) -> set[str]:
    uids = set()
    for elem in ds.iterall():
        if elem.VR == "UI" and not is_class_keyword(elem.keyword):
            for value in (elem.value if elem.VM > 1 else [elem.value]):
                text = str(value or "").strip("\x00 ")
                if len(text) >= 10 and not is_well_known(text):
                    uids.add(text)
    return uids


def test_no_original_identifier_or_uid_anywhere_in_output_bytes(run, corpus, key_file):
    for source, output in _pairs(corpus, key_file, run):
        before = _read(source)
        data = output.read_bytes()
        pixels = _pixels(before)
        header = data.replace(pixels, b"") if pixels else data  # pixel bytes are as they were
        for value in _original_values(before):
            # As a whole word: a 5-digit ID may occur by chance inside a 39-digit 2.25 UID.
            word = re.compile(rb"(?<![0-9A-Za-z])" + re.escape(value.encode("utf-8", "ignore"))
                              + rb"(?![0-9A-Za-z])")
            assert not word.search(header), (source.name, "identifier")
        for uid in _original_uids(before):
            assert not re.search(rb"(?<![0-9.])" + re.escape(uid.encode()) + rb"(?![0-9])", header), \
                (source.name, "uid")


def test_no_phi_in_terminal_output(run):
    """No value read from a file; the summary names inputs by their path within INPUT, which is the
    user's own (here a folder named after the patient), so that folder name is set aside."""
    text = (run["stdout"] + run["stderr"]).replace("DOE^JANE_MRN0777/", "<folder>/")
    for fragment in ("DOE^JANE", "MRN0777", "Invalid value", "UserWarning"):
        assert fragment not in text


def test_mapping_files_cover_every_output(run, corpus, key_file):
    with open(run["maps"] / "uid_mapping.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id_old", "id_new"]
    new_uids = {new for _, new in rows[1:]}
    with open(run["maps"] / "patid_mapping.csv", newline="") as handle:
        patid = list(csv.reader(handle))
    assert patid[0] == ["id_old", "id_new"]
    new_pids = {new for _, new in patid[1:]}
    for source, output in _pairs(corpus, key_file, run):
        ds = pydicom.dcmread(output, stop_before_pixels=True)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert ds[keyword].value in new_uids, (source.name, keyword)
        if str(_read(source).get("PatientID", "")).strip():
            assert ds.PatientID in new_pids


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.dcm"))}


def test_rerun_resumes_and_is_byte_identical(corpus, key_file):
    first = _run(corpus, key_file, "tcia", "resume")
    tree = _tree(first["out"])
    second = _run(corpus, key_file, "tcia", "resume")
    assert second["summary"]["unchanged"] == first["summary"]["written"] + first["summary"]["unchanged"]
    assert second["summary"]["written"] == 0
    assert _tree(second["out"]) == tree
    fresh = _run(corpus, key_file, "tcia", "resume-fresh", "--no-resume")
    assert _tree(fresh["out"]) == tree


def test_two_workers_give_the_same_release(corpus, key_file):
    one = _run(corpus, key_file, "basic", "one-worker")
    two = _run(corpus, key_file, "basic", "two-workers", "--workers", "2")
    assert _tree(two["out"]) == _tree(one["out"])
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert (two["maps"] / name).read_bytes() == (one["maps"] / name).read_bytes()


def _dciodvfy_errors(path: Path) -> set[str]:
    tool = Path(sys.executable).parent / "dciodvfy"
    result = subprocess.run([str(tool), str(path)], capture_output=True, text=True, errors="replace")
    return {line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")}


def test_outputs_are_not_less_valid_than_inputs(run, corpus, key_file):
    if not (Path(sys.executable).parent / "dciodvfy").exists():
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    worse = []
    for source, output in _pairs(corpus, key_file, run):
        before, after = _dciodvfy_errors(source), _dciodvfy_errors(output)
        if len(after) > len(before):
            worse.append((source.name, sorted(after - before)[:3]))
    assert worse == []
