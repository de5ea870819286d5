"""Burned-in text through the whole pipeline, with real OCR: gone from the output, nothing else moved.

Images with known text (drawn by ``medveil.synth.burn``) and the real vendor
ultrasound screens of ``deid-data`` go through ``medveil deidentify``; the
output is read by OCR again, its pixels outside the masked boxes are
compared with the input's, and ``medveil verify`` judges the release.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from medveil import deidentify_path, get_profile
from medveil.cli import app
from medveil.pixels.detect import detect_text
from medveil.pixels.frames import iter_frames
from medveil.pixels.ocr import OcrUnavailable, get_engine
from medveil.pseudonym import generate_key_file, load_key
from medveil.synth.burn import burn
from medveil.synth.corpus import deid_data_files, pydicom_files
from medveil.verify.fingerprints import normalise

try:
    get_engine("rapidocr")
except OcrUnavailable:  # pragma: no cover - the [ocr] extra is part of make setup
    pytest.skip("RapidOCR is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow  # OCR over whole images through the CLI, vendor screens included

NAME = ("QUIMBY", "JOSEPH")
MRN = "4471902"
DOB = "19520317"
TCIA = get_profile("tcia")


def burned_file(folder: Path, source: str = "CT_small.dcm", name: str = "burned.dcm") -> Path:
    """A pydicom test image with the patient's name, ID and birth date burned into it."""
    ds = pydicom.dcmread(pydicom_files() / source)
    ds.PatientName = f"{NAME[0]}^{NAME[1]}"
    ds.PatientID = MRN
    ds.PatientBirthDate = DOB
    burn(ds, [("", f"{NAME[0]}, {NAME[1]}"), ("ID: ", MRN), ("DOB: ", "03/17/1952")])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def read_back(ds) -> str:
    return normalise(" ".join(box.text for box in detect_text(ds, engines=["rapidocr"])))


def outputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm"))


def events(workspace: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(workspace / "audit.sqlite") as db:
        return list(db.execute("SELECT category, detail FROM events"))


def test_burned_in_name_id_and_birth_date_are_masked(tmp_path):
    source = burned_file(tmp_path / "in")
    before = pydicom.dcmread(source)
    assert NAME[0].lower() in read_back(before)  # the drawn text is legible to begin with
    key = generate_key_file(tmp_path / "k.key")
    summary = deidentify_path(tmp_path / "in", tmp_path / "out", policy=TCIA, key=key)
    assert summary.written == 1, summary.reasons
    (out,) = outputs(tmp_path / "out")
    after = pydicom.dcmread(out)

    read = read_back(after)
    for value in (NAME[0], NAME[1], MRN, "1952"):
        assert value.lower() not in read
    assert after.BurnedInAnnotation == "NO"
    codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
    assert "113101" in codes  # Clean Pixel Data
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID

    # Outside the masked boxes every decoded sample is the input's.
    boxes = [json.loads(detail) for category, detail in events(summary.workspace) if category == "pixel-box"]
    assert boxes and all(set(b) >= {"box", "frame", "source", "reason"} for b in boxes)
    old, new = next(iter_frames(before)), next(iter_frames(after))
    outside = np.ones(old.shape, dtype=bool)
    pad = TCIA.pixels.padding
    for record in boxes:
        x1, y1, x2, y2 = record["box"]
        outside[max(0, y1 - pad):y2 + pad, max(0, x1 - pad):x2 + pad] = False
    assert not outside.all() and np.array_equal(old[outside], new[outside])

    # The audit store holds geometry, never what was read.
    blob = (summary.workspace / "audit.sqlite").read_bytes()
    for value in (NAME[0], NAME[1], MRN):
        assert value.encode() not in blob and value.lower().encode() not in blob


def test_an_image_without_text_keeps_its_pixel_bytes(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_files() / "MR_small.dcm", folder / "mr.dcm")
    before = pydicom.dcmread(folder / "mr.dcm")
    summary = deidentify_path(folder, tmp_path / "out", policy=TCIA, key=generate_key_file(tmp_path / "k.key"))
    assert summary.written == 1, summary.reasons
    (out,) = outputs(tmp_path / "out")
    after = pydicom.dcmread(out)
    assert after.PixelData == before.PixelData
    assert after.BurnedInAnnotation == "NO"


def test_verify_passes_the_release_and_fails_the_raw_input(tmp_path):
    source = burned_file(tmp_path / "in")
    key_path = tmp_path / "k.key"
    generate_key_file(key_path)
    runner = CliRunner()
    result = runner.invoke(app, ["deidentify", str(tmp_path / "in"), str(tmp_path / "out"), "--profile", "tcia",
                                 "--key-file", str(key_path), "--verify"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["verify", str(tmp_path / "out"), "--key-file", str(key_path)])
    assert result.exit_code == 0, result.output
    assert "no PHI found" in result.output and "fingerprints" in result.output

    # The raw input, put where the release should be, fails: by the identifiers the run saw.
    leak = tmp_path / "leak"
    leak.mkdir()
    shutil.copy(source, leak / "x.dcm")
    result = runner.invoke(app, ["verify", str(leak), "--key-file", str(key_path), "--workspace",
                                 str(tmp_path / "out.medveil-workspace"), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    findings = " ".join(report["files"]["x.dcm"])
    assert "PatientName (identifier)" in findings and "pixels frame 0" in findings
    for value in (NAME[0], MRN):
        assert value not in result.output and value.lower() not in result.output


def test_deidentify_verify_quarantines_what_cleaning_was_not_asked_to_clean(tmp_path):
    burned_file(tmp_path / "in")
    runner = CliRunner()
    result = runner.invoke(app, ["deidentify", str(tmp_path / "in"), str(tmp_path / "out"), "--profile", "basic",
                                 "--throwaway-key", "--verify", "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["quarantined"] == 1 and summary["written"] == 0
    (reason,) = summary["reasons"]
    assert reason.startswith("verification found possible PHI after cleaning in: pixels frame 0")
    assert NAME[0] not in result.output


def test_pixel_options_need_clean_pixel_data(tmp_path):
    burned_file(tmp_path / "in")
    result = CliRunner().invoke(app, ["deidentify", str(tmp_path / "in"), str(tmp_path / "out"),
                                      "--throwaway-key", "--pixel-policy", "all-text"])
    assert result.exit_code == 2 and "clean_pixel_data" in result.output


deid_ultrasounds = deid_data_files()


@pytest.mark.skipif(deid_ultrasounds is None, reason="deid-data is not installed")
@pytest.mark.parametrize("name", ["ultrasounds/GREYSCALE_IMAGE.dcm", "ultrasounds/RGB_IMAGE.dcm"])
def test_vendor_ultrasound_screens_lose_every_identifier(tmp_path, name):
    source = deid_ultrasounds / name
    original = pydicom.dcmread(source)
    identifiers = set()
    for keyword in ("PatientName", "PatientID", "InstitutionName", "ReferringPhysicianName"):
        for part in re.split(r"[\^\s,]+", str(original.get(keyword, "") or "")):
            if len(part) >= 4:
                identifiers.add(part.lower())
    if original.get("PatientBirthDate"):
        identifiers.add(str(original.PatientBirthDate))
    before_text = read_back(original)
    present = {value for value in identifiers if value in before_text.replace(" ", "") or value in before_text}
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(source, folder / "us.dcm")
    summary = deidentify_path(folder, tmp_path / "out", policy=TCIA, key=load_key_or_new(tmp_path))
    assert summary.written == 1, summary.reasons
    (out,) = outputs(tmp_path / "out")
    after_text = read_back(pydicom.dcmread(out))
    assert not {value for value in identifiers if value in after_text.replace(" ", "") or value in after_text}
    # The screens really carried some of them, or this test would prove nothing.
    assert present


def load_key_or_new(tmp_path: Path):
    path = tmp_path / "k.key"
    return load_key(path) if path.exists() else generate_key_file(path)
