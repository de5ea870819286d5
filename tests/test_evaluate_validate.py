"""The validator end to end: output trees, mappings given or inferred, missing and broken files."""

from __future__ import annotations

import json
import shutil
import stat

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import PHI, SERIES_UID, STUDY_UID, image_dataset
from medveil.cli import app
from medveil.evaluate.answer_key import AnswerRow, Check, write_answer_key
from medveil.evaluate.flatten import pixel_digest
from medveil.evaluate.validator import validate_outputs

OLD = ["1.2.826.0.1.3680043.8.498.2001", "1.2.826.0.1.3680043.8.498.2002"]
NEW = {OLD[0]: "2.25.1001", OLD[1]: "2.25.1002", STUDY_UID: "2.25.2000", SERIES_UID: "2.25.3000"}


def checks_for(ds) -> tuple[Check, ...]:
    return (
        Check("text_removed", "<(0010,0010)>", "(0010,0010)", "PatientName", PHI["PatientName"],
              PHI["PatientName"], category=["HIPAA", "name"]),
        Check("patid_consistent", "<(0010,0020)>", value=PHI["PatientID"], category=["HIPAA", "id"]),
        Check("date_shifted", "<(0008,0020)>", value="20200310", category=["HIPAA", "date"]),
        Check("uid_changed", "<(0020,000D)>", value=STUDY_UID, category=["DICOM", "uid"]),
        Check("uid_consistent", "<(0020,000D)>", value=STUDY_UID, category=["DICOM", "uid"]),
        Check("text_notnull", "<(0008,0060)>", value="CT", category=["DICOM", "type1"]),
        Check("text_retained", "<(0008,1030)>", value="CT CHEST W/O CONTRAST",
              action_text="CT CHEST W/O CONTRAST", category=["TCIA", "descriptor"]),
        Check("tag_retained", '<(0009,"ACME_PRIVATE 1.0",11)>', value="1.5", category=["TCIA", "private"]),
        Check("pixels_retained", "<(7FE0,0010)>", action_text=pixel_digest(ds), category=["DICOM", "pixels"]),
    )


@pytest.fixture
def corpus(tmp_path):
    """Original input files, their answer key, and a correct de-identified output."""
    original, output, maps = tmp_path / "input", tmp_path / "output", tmp_path / "maps"
    for folder in (original, output, maps):
        folder.mkdir()
    rows = []
    for number, uid in enumerate(OLD):
        ds = image_dataset(SOPInstanceUID=uid)
        ds.save_as(original / f"{number}.dcm", enforce_file_format=True)
        rows.append(AnswerRow(number, uid, SERIES_UID, STUDY_UID, PHI["PatientID"], ds.SOPClassUID, "CT",
                              digest=pixel_digest(ds), checks=checks_for(ds)))
        clean = image_dataset(SOPInstanceUID=NEW[uid])
        clean.PatientName = "ANON^0001"
        clean.PatientID = "P0001"
        clean.StudyDate = "20190101"
        clean.StudyInstanceUID = NEW[STUDY_UID]
        clean.SeriesInstanceUID = NEW[SERIES_UID]
        clean.save_as(output / "nested" / f"out{number}.dcm" if False else output / f"out{number}.dcm",
                      enforce_file_format=True)
    key = tmp_path / "answer_key.db"
    write_answer_key(key, rows)
    (maps / "uid_mapping.csv").write_text(
        "id_old,id_new\n" + "".join(f"{old},{new}\n" for old, new in NEW.items()))
    (maps / "patid_mapping.csv").write_text(f"id_old,id_new\n{PHI['PatientID']},P0001\n")
    return original, output, maps, key


def test_a_correct_output_scores_100(corpus):
    original, output, maps, key = corpus
    result = validate_outputs(output, key, mappings_dir=maps)
    assert result.matched_rows == 2 and result.missing_rows == 0
    assert result.instance.overall.failed == 0 and result.instance.overall.errored == 0
    assert result.instance.overall.score == 1.0
    assert result.series.overall.total == 9  # one per action and attribute in the one series


def test_a_no_op_copy_fails_removal_checks_and_passes_keep_checks(corpus, tmp_path):
    original, _, _, key = corpus
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    result = validate_outputs(copy, key, mappings_dir=None, original_dir=original)
    assert result.mapping_source == "inferred" and result.matched_rows == 2
    actions = result.instance.actions
    for action in ("text_removed", "date_shifted", "uid_changed"):
        assert actions[action].failed == 2, action
    for action in ("text_notnull", "text_retained", "tag_retained", "pixels_retained",
                   "uid_consistent", "patid_consistent"):
        assert actions[action].passed == 2, action


def test_missing_and_unreadable_outputs(corpus):
    original, output, maps, key = corpus
    (output / "out1.dcm").unlink()
    (output / "notes.txt").write_text("not dicom")
    result = validate_outputs(output, key, mappings_dir=maps)
    assert result.missing_rows == 1 and result.matched_rows == 1
    assert result.unreadable_outputs == 1
    missing = [r for r in result.results if r.file is None]
    assert {r.outcome.status for r in missing if r.check.action == "text_removed"} == {"passed"}
    assert {r.outcome.status for r in missing if r.check.action == "tag_retained"} == {"failed"}


def test_an_unreadable_output_paired_by_path_makes_its_checks_errored(corpus, tmp_path):
    original, _, _, key = corpus
    copy = tmp_path / "broken"
    shutil.copytree(original, copy)
    (copy / "1.dcm").write_bytes(b"\x00" * 50)
    result = validate_outputs(copy, key, original_dir=original)
    assert result.unreadable_rows == 1
    errored = [r for r in result.results if r.outcome.status == "errored"]
    assert len(errored) == len(checks_for(image_dataset()))


def test_no_mappings_at_all_counts_every_row_missing(corpus):
    _, output, _, key = corpus
    result = validate_outputs(output, key)
    assert result.mapping_source == "none" and result.missing_rows == 2


def test_cli_json_report_and_no_phi_on_the_terminal(corpus, tmp_path):
    original, output, maps, key = corpus
    shutil.copy(original / "0.dcm", output / "out0.dcm")  # leaks the name in one file
    (maps / "uid_mapping.csv").write_text(
        "id_old,id_new\n" + "".join(f"{old},{OLD[0] if old == OLD[0] else new}\n" for old, new in NEW.items()))
    report = tmp_path / "private" / "discrepancies.csv"
    outcome = CliRunner().invoke(app, ["validate", str(output), "--answer-key", str(key), "--mappings",
                                       str(maps), "--report", str(report), "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert PHI["PatientName"] not in outcome.output
    summary = json.loads(outcome.stdout)
    assert summary["instance"]["failed"] > 0 and 0 < summary["score"] < 1
    assert summary["ocr"]["engine"] is None  # no pixels_hidden checks in this key
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    text = report.read_text()
    assert text.startswith("file,instance,series,tag,tag_name,action,status,expected,found,reason")
    assert PHI["PatientName"] in text  # the report is where found values go
    human = CliRunner().invoke(app, ["validate", str(output), "--answer-key", str(key), "--mappings",
                                     str(maps), "--series"])
    assert human.exit_code == 0 and "series-level score" in human.output


def test_cli_refuses_a_missing_key(tmp_path):
    outcome = CliRunner().invoke(app, ["validate", str(tmp_path), "--answer-key", str(tmp_path / "no.db")])
    assert outcome.exit_code == 2 and "answer key not found" in outcome.output


# -- pixels_hidden with real OCR ------------------------------------------------------------

def text_image(text: str | None, size=(96, 320)) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (size[1], size[0]), 20)
    if text:
        ImageDraw.Draw(image).text((12, 30), text, fill=235, font=ImageFont.load_default(size=26))
    return np.asarray(image)


def pixel_file(path, pixels: np.ndarray, uid: str) -> None:
    ds = image_dataset(SOPInstanceUID=uid)
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def test_pixels_hidden_with_ocr(tmp_path):
    pytest.importorskip("tesserocr")
    original, masked, leaked = (tmp_path / name for name in ("input", "masked", "leaked"))
    for folder in (original, masked, leaked):
        folder.mkdir()
    pixel_file(original / "a.dcm", text_image("SMITH JOHN 1948"), OLD[0])
    pixel_file(leaked / "a.dcm", text_image("SMITH JOHN 1948"), OLD[0])
    blank = text_image("SMITH JOHN 1948")
    blank = blank.copy()
    blank[20:70, 5:300] = 0
    pixel_file(masked / "a.dcm", blank, OLD[0])
    spec = json.dumps({"text": "SMITH JOHN 1948", "top_left": [5, 20], "bottom_right": [300, 70]})
    key = tmp_path / "key.db"
    write_answer_key(key, [AnswerRow(0, OLD[0], checks=(Check("pixels_hidden", "<(7FE0,0010)>",
                                                               action_text=spec, category=["HIPAA"]),))])
    good = validate_outputs(masked, key, original_dir=original)
    bad = validate_outputs(leaked, key, original_dir=original)
    assert "tesseract" in good.ocr_engine
    assert good.instance.overall.passed == 1
    assert bad.instance.overall.failed == 1


def test_pydicom_warnings_quoting_values_stay_silent(corpus, tmp_path, recwarn):
    _, output, maps, key = corpus
    ds = image_dataset(SOPInstanceUID=NEW[OLD[0]])
    ds.StudyInstanceUID = "SMITHERS-NOT-A-UID"
    ds.save_as(output / "out0.dcm", enforce_file_format=True)
    recwarn.clear()  # setting the bad value above warned; only the validator's own count
    outcome = CliRunner().invoke(app, ["validate", str(output), "--answer-key", str(key),
                                       "--mappings", str(maps)])
    assert outcome.exit_code == 0
    assert "SMITHERS" not in outcome.output
    assert not [w for w in recwarn if "SMITHERS" in str(w.message)]


@pytest.mark.slow  # whole corpora
def test_never_crashes_on_any_file_of_the_real_corpora(corpus):
    """Every file of pydicom's test data (truncated, big endian, deflated, odd VRs, not DICOM)
    as 'output', paired with itself as 'input': the run completes and counts what it met."""
    from corpora import pydicom_files

    _, _, _, key = corpus
    folder = pydicom_files()
    result = validate_outputs(folder, key, original_dir=folder)
    assert result.output_files > 100
    assert result.unreadable_outputs > 0  # the corpus holds non-DICOM and broken files
    assert result.missing_rows == result.rows  # none of them is in this key


def test_series_scoped_rows_run_on_every_instance_of_the_series(corpus, tmp_path):
    import sqlite3

    _, output, maps, _ = corpus
    key = tmp_path / "series_key.db"
    check = Check("text_removed", "<(0010,0010)>", value=PHI["PatientName"], action_text=PHI["PatientName"])
    with sqlite3.connect(key) as db:
        db.execute('CREATE TABLE answer_data ("index" INTEGER, scope TEXT, SeriesInstanceUID TEXT, '
                   'SOPInstanceUID TEXT, AnswerData TEXT)')
        db.execute("INSERT INTO answer_data VALUES (0, '<Series>', ?, '', ?)",
                   (f"<{SERIES_UID}>", json.dumps({"0": check.to_json()})))
    result = validate_outputs(output, key, mappings_dir=maps)
    assert result.missing_rows == 0
    assert [r.file for r in result.results] == ["out0.dcm", "out1.dcm"]
    assert result.instance.overall.passed == 2
