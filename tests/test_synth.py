"""``medveil synth``: a synthetic MIDI-B-style set from a handful of pydicom's test files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from corpora import pydicom_files
from medveil.cli import app
from medveil.dicomio.integrity import check_complete
from medveil.evaluate.answer_key import ACTIONS, read_answer_key
from medveil.evaluate.checks import KEEP_ACTIONS, Target, run_check
from medveil.evaluate.flatten import flatten, pixel_digest, walk
from medveil.evaluate.paths import parse_path
from medveil.policy import get_profile
from medveil.synth import SynthError, synthesize
from medveil.synth.corpus import SHARED_ENV, default_corpora, installed_corpora

#: Files chosen for variety: CT and MR with private tags, an implicit-VR twin (a duplicate
#: SOP Instance UID), images big enough for burned-in text (MONOCHROME2 and an RGB
#: ultrasound), RT objects, an SR, compressed and big-endian files, a truncated file.
SOURCES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "examples_overlay.dcm",
           "examples_rgb_color.dcm", "liver_1frame.dcm", "rtplan.dcm", "rtstruct.dcm", "test-SR.dcm",
           "SC_rgb_jpeg.dcm", "ExplVR_BigEnd.dcm", "MR_truncated.dcm", "waveform_ecg.dcm", "README.txt")
SEED = 11


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name in SOURCES:
        shutil.copy(pydicom_files() / name, root / name)
    shutil.copy(pydicom_files() / "dicomdirtests" / "DICOMDIR", root / "DICOMDIR")
    return root


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("set") / "out"
    synthesize([corpus], out, SEED, patients=7)
    return out


def _inputs(out: Path) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p) for p in sorted((out / "input").rglob("*.dcm")))}


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text("utf-8"))


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_set(corpus, built, tmp_path):
    again = tmp_path / "again"
    synthesize([corpus], again, SEED, patients=7)
    assert _all_bytes(again) == _all_bytes(built)
    other = tmp_path / "other"
    synthesize([corpus], other, SEED + 1, patients=7)
    assert _all_bytes(other)["manifest.json"] != _all_bytes(built)["manifest.json"]


def test_answer_key_has_every_action_and_valid_categories(built):
    rows = read_answer_key(built / "answer_key.db")
    actions = {check.action for row in rows for check in row.checks}
    assert actions == set(ACTIONS)
    for row in rows:
        for check in row.checks:
            assert check.category[0] in ("HIPAA", "DICOM", "TCIA")
            parse_path(check.tag_ds)  # every path parses
            assert check.scope == "Instance"


def test_rows_describe_the_input_files(built):
    files = _inputs(built)
    rows = read_answer_key(built / "answer_key.db")
    assert len(rows) == len(files) == _manifest(built)["counts"]["files"]
    for row in rows:
        ds = files[row.sop_instance_uid]
        assert row.series_instance_uid == ds.SeriesInstanceUID
        assert row.study_instance_uid == ds.StudyInstanceUID
        assert row.patient_id == ds.PatientID
        assert row.sop_class_uid == ds.SOPClassUID
        assert row.digest == (pixel_digest(ds) or "")
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_inputs_are_complete_dicom(built):
    for path in sorted((built / "input").rglob("*.dcm")):
        data = path.read_bytes()
        check_complete(data, pydicom.dcmread(path))


def test_a_no_op_copy_fails_every_removal_and_passes_every_keep_check(built):
    """The planted PHI is really in the input: an unchanged copy fails each removal check."""
    files = _inputs(built)
    identity = type("Identity", (dict,), {"get": lambda self, key, default=None: key})()
    for row in read_answer_key(built / "answer_key.db"):
        ds = files[row.sop_instance_uid]
        target = Target(values=flatten(ds), digest=pixel_digest(ds), uid_map=identity, patid_map=identity)
        for check in row.checks:
            if check.action == "pixels_hidden":
                continue  # needs OCR; see test_burned_in_boxes_are_inside_and_changed
            outcome = run_check(check, target)
            expected = "passed" if check.action in KEEP_ACTIONS else "failed"
            assert outcome.status == expected, (check.action, check.tag_ds)


@pytest.mark.filterwarnings("ignore")
def test_uids_are_fresh_and_references_resolve(corpus, built):
    originals = set()
    for path in corpus.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if keyword in ds:
                originals.add(str(ds.data_element(keyword).value))
    files = _inputs(built)
    studies = {ds.StudyInstanceUID for ds in files.values()}
    for ds in files.values():
        for _, element in walk(ds, ()):
            if element.VR == "UI" and element.tag.group != 0x0002:
                assert str(element.value) not in originals, element.keyword
    reports = [ds for ds in files.values() if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.11"]
    assert reports
    for report in reports:
        for item in report.get("CurrentRequestedProcedureEvidenceSequence", []):
            assert item.StudyInstanceUID == report.StudyInstanceUID
            for series in item.ReferencedSeriesSequence:
                for reference in series.ReferencedSOPSequence:
                    target = files[reference.ReferencedSOPInstanceUID]
                    assert target.SeriesInstanceUID == series.SeriesInstanceUID
                    assert target.SOPClassUID == reference.ReferencedSOPClassUID
        for item in report.get("ReferencedStudySequence", []):
            assert item.ReferencedSOPInstanceUID in studies


def test_each_patient_is_consistent_across_files(built):
    by_patient: dict[str, set] = {}
    for ds in _inputs(built).values():
        by_patient.setdefault(ds.PatientID, set()).add((str(ds.PatientName), ds.PatientBirthDate, ds.PatientSex))
    assert len(by_patient) == 7
    assert all(len(identities) == 1 for identities in by_patient.values())


def test_folder_names_carry_the_synthetic_phi(built):
    manifest = _manifest(built)
    for entry in manifest["files"]:
        parts = entry["path"].split("/")
        assert parts[0] == "input" and len(parts) == 5
        ds = pydicom.dcmread(built / entry["path"])
        family = str(ds.PatientName).split("=")[0].split("^")[0].upper()
        assert parts[1].startswith(family) and parts[1].endswith(ds.PatientID)
        assert parts[2] == f"{ds.StudyDate}_{ds.AccessionNumber}"
        assert parts[3].startswith(f"{ds.SeriesNumber}_")


def test_burned_in_boxes_are_inside_and_changed(corpus, built):
    manifest = _manifest(built)
    files = _inputs(built)
    rows = {row.sop_instance_uid: row for row in read_answer_key(built / "answer_key.db")}
    burned = [entry for entry in manifest["files"] if entry["burned_in_boxes"]]
    assert burned
    for entry in burned:
        ds = files[entry["sop_instance_uid"]]
        source = pydicom.dcmread(corpus / entry["origin"].split(":", 1)[1])
        new, old = _frame0(ds), _frame0(source)
        boxes = [json.loads(c.action_text) for c in rows[entry["sop_instance_uid"]].checks
                 if c.action == "pixels_hidden"]
        assert len(boxes) == entry["burned_in_boxes"] == 3
        for box in boxes:
            (x1, y1), (x2, y2) = box["top_left"], box["bottom_right"]
            assert 0 <= x1 < x2 < ds.Columns and 0 <= y1 < y2 < ds.Rows
            assert box["text"] and not np.array_equal(new[y1:y2 + 1, x1:x2 + 1], old[y1:y2 + 1, x1:x2 + 1])
        assert "pixels_retained" not in {c.action for c in rows[entry["sop_instance_uid"]].checks}


def _frame0(ds) -> np.ndarray:
    pixels = ds.pixel_array
    return pixels[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels


def test_every_kind_of_phi_is_planted(built):
    rows = read_answer_key(built / "answer_key.db")
    seen = {(c.action, c.tag_name) for row in rows for c in row.checks}
    paths = {c.tag_ds for row in rows for c in row.checks}
    for name in ("PatientName", "PatientBirthDate", "AccessionNumber", "StudyID", "InstitutionName",
                 "ReferringPhysicianName", "SeriesDescription", "StudyDescription", "TextValue"):
        assert ("text_removed", name) in seen, name
    assert ("patid_consistent", "PatientID") in seen
    assert ("text_retained", "SeriesDescription") in seen
    assert ("text_notnull", "PatientSex") in seen and ("text_notnull", "Modality") in seen
    assert ("uid_changed", "SOPInstanceUID") in seen and ("uid_consistent", "StudyInstanceUID") in seen
    assert any(c.category == ["HIPAA", "date", "hidden"] for row in rows for c in row.checks)
    assert any('"' in path and c_action == "tag_retained" for path, c_action in
               ((c.tag_ds, c.action) for row in rows for c in row.checks))  # KB private, kept
    assert any(c.category[0] == "HIPAA" and '"' in c.tag_ds for row in rows for c in row.checks)  # private PHI
    assert any(path.count("[<") >= 1 and "(0010,1002)" in path for path in paths)  # nested other IDs
    assert any(c.action == "text_removed" and c.tag_name == "PersonName" for row in rows for c in row.checks)


def test_keep_checks_are_the_majority(built):
    actions = [c.action for row in read_answer_key(built / "answer_key.db") for c in row.checks]
    keep = sum(a in KEEP_ACTIONS for a in actions)
    assert keep > len(actions) / 2


def test_checks_follow_the_tcia_profile(built):
    """Top-level keep checks sit on attributes the profile keeps, removals on ones it changes."""
    policy = get_profile("tcia")
    files = _inputs(built)
    for row in read_answer_key(built / "answer_key.db"):
        sop_class = str(files[row.sop_instance_uid].SOPClassUID)
        for check in row.checks:
            steps = parse_path(check.tag_ds)
            if len(steps) != 1 or steps[0].private or check.tag_ds == "<(7FE0,0010)>":
                continue
            decision = policy.decide((steps[0].group << 16) | steps[0].element, sop_class)
            action = decision.action if decision is not None else None
            if check.action in ("tag_retained", "text_notnull"):
                # U*: a reference sequence kept with its UIDs remapped (a tcia convention)
                assert action in (None, "K", "U*"), check.tag_name
            elif check.action in ("date_shifted", "text_removed") and action in (None, "K"):
                # a date or one of the file's identifiers in an attribute the table keeps
                # (Software Versions, Patient's Alternative Calendar): shifted or repaired
                assert check.category and check.category[0] == "HIPAA", check.tag_name
            elif check.action in ("text_removed", "date_shifted", "uid_changed"):
                assert action in ("X", "Z", "D", "C", "U"), check.tag_name
            elif check.action == "text_retained":
                # cleaned descriptions, and earlier de-identification records the table leaves alone
                assert action == "C" or (action is None and check.tag_name.startswith("Deidentification")), \
                    check.tag_name


def test_manifest_lists_sources_and_skipped_files(corpus, built):
    manifest = _manifest(built)
    reasons = {item["origin"].split(":", 1)[1]: item["reason"] for item in manifest["skipped"]}
    assert reasons["README.txt"] == "not a DICOM Part 10 file"
    assert reasons["DICOMDIR"].startswith("DICOMDIR")
    # the same instance in the same encoding is left out; in another encoding it is a variant
    assert reasons.get("MR_small_implicit.dcm", "").startswith("duplicate SOP Instance UID") or \
        "MR_small_implicit.dcm" in {entry["origin"].split(":", 1)[1] for entry in manifest["files"]}
    assert "truncated" in reasons["MR_truncated.dcm"]
    assert manifest["seed"] == SEED
    assert sum(manifest["checks_by_action"].values()) == manifest["counts"]["checks"]
    origins = {entry["origin"] for entry in manifest["files"]}
    assert f"{corpus.name}:CT_small.dcm" in origins and "generated:basic-text-sr" in origins


def test_refuses_a_non_empty_output(corpus, tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(SynthError):
        synthesize([corpus], tmp_path, 1)


def test_cli_builds_and_refuses_to_overwrite(corpus, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["synth", str(out), "--corpus", str(corpus), "--seed", "3", "--patients", "2",
                                 "--max-files", "6"])
    assert result.exit_code == 0, result.output
    assert "patients" in result.output and "text_removed" in result.output
    assert (out / "answer_key.db").is_file() and (out / "manifest.json").is_file()
    assert _manifest(out)["counts"]["patients"] == 2
    again = runner.invoke(app, ["synth", str(out), "--corpus", str(corpus), "--seed", "3"])
    assert again.exit_code == 2
    assert "not empty" in again.output


def test_default_corpora_include_shared_ones_when_present(tmp_path, monkeypatch):
    (tmp_path / "corpora" / "extra").mkdir(parents=True)
    monkeypatch.setenv(SHARED_ENV, str(tmp_path))
    corpora = default_corpora()
    assert corpora["shared/extra"] == tmp_path / "corpora" / "extra"
    assert set(installed_corpora()) <= set(corpora)
    monkeypatch.setenv(SHARED_ENV, str(tmp_path / "absent"))
    assert not any(name.startswith("shared/") for name in default_corpora())


def test_burned_in_text_is_legible_to_ocr(built):
    """A pixels_hidden check only tests something if OCR reads the text before cleaning."""
    from medveil.pixels.ocr import OcrUnavailable, get_engine, prepare_for_ocr

    try:
        engine = get_engine("auto")
    except OcrUnavailable:
        pytest.skip("no OCR engine installed (pip install 'medveil[ocr]')")
    files = _inputs(built)
    read = 0
    for row in read_answer_key(built / "answer_key.db"):
        frame = None
        for check in (c for c in row.checks if c.action == "pixels_hidden"):
            frame = _frame0(files[row.sop_instance_uid]) if frame is None else frame
            box = json.loads(check.action_text)
            (x1, y1), (x2, y2) = box["top_left"], box["bottom_right"]
            words = " ".join(word.text for word in engine.read(prepare_for_ocr(frame[y1:y2, x1:x2])))
            assert words.replace(" ", "") == box["text"].replace(" ", "")
            read += 1
    assert read


def test_a_corpus_without_usable_files_is_refused(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("not DICOM")
    shutil.copy(pydicom_files() / "MR_truncated.dcm", corpus / "cut.dcm")
    with pytest.raises(SynthError, match="no usable DICOM"):
        synthesize([corpus], tmp_path / "out", 1)
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "out2"), "--corpus", str(corpus), "--seed", "1"])
    assert result.exit_code == 2


def test_one_patient_from_one_file(corpus, tmp_path):
    summary = synthesize([corpus], tmp_path / "one", 2, patients=1, max_files=1)
    assert (summary.patients, summary.files) == (1, 2)  # the source and the generated report
    rows = read_answer_key(summary.answer_key)
    assert len({row.patient_id for row in rows}) == 1


def test_progress_counts_every_planned_source(corpus, tmp_path):
    totals: list[int] = []
    outcomes: list[str] = []
    summary = synthesize([corpus], tmp_path / "p", 3, patients=2, max_files=6, progress=outcomes.append,
                         on_total=totals.append)
    assert len(totals) == 1 and totals[0] == len(outcomes) > 0
    assert set(outcomes) <= {"written", "left out"}
    assert outcomes.count("written") == summary.files - summary.reports  # generated reports are not sources
