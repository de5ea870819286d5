"""The batch runner end to end: ``medveil.runner.base.run`` and ``medveil.deidentify_path``.

Inputs live under a directory named like a real export (patient name and MRN
in the path); every test checks what reaches the output tree, the mapping
files, the quarantine and the audit store.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import random
import re
import shutil
import sqlite3
from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset

import medveil
from conftest import FOR_UID, PHI, SERIES_UID, SOP_UID, STUDY_UID, image_dataset
from medveil.errors import MedveilError
from medveil.pseudonym import Key
from medveil.quiet import silenced
from medveil.runner.base import run
from medveil.runner.book import RunConfig, input_ref
from medveil.store.audit import AuditStore

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
KEY = Key(b"k" * 32)
OTHER_KEY = Key(b"z" * 32)
EXPORT = "SMITHERS^WAYLON_MRN-0099123"
#: Strings that must never show up where the release, its names or the audit store can be seen.
PHI_STRINGS = ("SMITHERS", "WAYLON", "0099123", PHI["PatientID"], "HIBBERT", "Springfield",
               PHI["AccessionNumber"], PHI["OtherPatientIDs"])
BASIC = medveil.get_profile("basic")
TCIA = medveil.get_profile("tcia")
PASS_BURNED_IN = dataclasses.replace(BASIC, burned_in="pass")


# -- helpers ------------------------------------------------------------------------------------


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def copy_bundled(name: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEST_FILES / name, path)
    return path


def read(path_or_bytes) -> Dataset:
    with silenced():
        if isinstance(path_or_bytes, bytes):
            return pydicom.dcmread(BytesIO(path_or_bytes), force=True)
        return pydicom.dcmread(path_or_bytes, force=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config(tmp_path: Path, inp: Path, name: str = "out", **kwargs) -> RunConfig:
    kwargs.setdefault("policy", BASIC)
    kwargs.setdefault("key", KEY)
    return RunConfig(input=inp, output=tmp_path / name, workspace=tmp_path / f"{name}-ws", **kwargs)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under *root*, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def records(cfg: RunConfig, *paths: Path) -> dict[str, object]:
    """The audit store's latest result for each input, by file name."""
    with AuditStore.open(cfg.workspace / "audit.sqlite") as store:
        return {p.name: store.last_result(input_ref(cfg.key, cfg.input, p)) for p in paths}


def mapping(path: Path) -> dict[str, str]:
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["id_old", "id_new"]
    pairs = dict(rows[1:])
    assert len(pairs) == len(rows) - 1, "an id_old is listed twice"
    return pairs


def outputs(cfg: RunConfig) -> list[Path]:
    return sorted(p for p in cfg.output.rglob("*") if p.is_file())


def workspace_bytes(cfg: RunConfig) -> bytes:
    """The audit database with its journal files (not the quarantine, which holds originals)."""
    return b"".join(p.read_bytes() for p in sorted(cfg.workspace.glob("audit.sqlite*")))


@pytest.fixture
def inp(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / EXPORT).mkdir(parents=True)
    return root


@pytest.fixture
def mixed(inp: Path) -> Path:
    """A small study tree: the PHI image, a second patient's image and some bundled files."""
    export = inp / EXPORT
    save(image_dataset(), export / "CT_SMITHERS" / "IM0001.dcm")
    save(image_dataset(PatientID="MRN-0000777", PatientName="DOE^JANE",
                       StudyInstanceUID=STUDY_UID + ".7", SeriesInstanceUID=SERIES_UID + ".7",
                       SOPInstanceUID=SOP_UID + ".7", FrameOfReferenceUID=FOR_UID + ".7"),
         export / "CT_DOE" / "IM0001.dcm")
    copy_bundled("CT_small.dcm", export / "CT_small.dcm")
    copy_bundled("MR_small.dcm", export / "MR_small.dcm")
    copy_bundled("rtplan.dcm", export / "rtplan.dcm")
    return inp


def inputs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- 1. output layout and what names can reveal -------------------------------------------------


def test_output_layout_uses_pseudonyms_only(tmp_path, mixed):
    cfg = config(tmp_path, mixed, mappings_dir=tmp_path / "maps")
    summary = run(cfg)
    assert summary.files_total == 5 and summary.written == 5 and summary.quarantined == 0
    files = outputs(cfg)
    assert len(files) == 5
    originals = {read(p).SOPInstanceUID: read(p) for p in inputs(mixed)}
    uid_map = mapping(cfg.mappings_dir / "uid_mapping.csv")
    reverse = {new: old for old, new in uid_map.items()}
    for path in files:
        parts = path.relative_to(cfg.output).parts
        assert len(parts) == 4 and parts[3].endswith(".dcm")
        ds = read(path)
        assert parts == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID,
                         f"{ds.SOPInstanceUID}.dcm")
        original = originals[reverse[ds.SOPInstanceUID]]
        assert ds.PatientID != original.PatientID
        assert ds.StudyInstanceUID != original.StudyInstanceUID
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
        assert ds.SOPInstanceUID != original.SOPInstanceUID
    for root in (cfg.output, cfg.workspace, cfg.mappings_dir):
        for path in root.rglob("*"):
            name = str(path.relative_to(tmp_path))
            for phi in PHI_STRINGS + ("CT_SMITHERS", "DOE^JANE", "0000777"):
                assert phi.upper() not in name.upper(), name


@pytest.mark.parametrize("study, series, sop", [("..", "..", "1.2.3"), (".", "..", ".."),
                                                 ("1.2", "1.3", ".medveil-tmp-1")])
def test_kept_uids_that_look_like_paths_cannot_lead_outside_output(tmp_path, inp, study, series, sop):
    """With Retain UIDs a hostile file's UIDs become folder names: '..' or '.' must not climb out of
    OUTPUT or stand for the folder itself, and a leading dot must not hide the file or make it look
    like one of medveil's temporary files."""
    ds = image_dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    with silenced():
        save(ds, inp / EXPORT / "hostile.dcm")
    policy = dataclasses.replace(BASIC, options=BASIC.options | {medveil.Option.RETAIN_UIDS})
    cfg = config(tmp_path, inp, policy=policy)
    summary = run(cfg)
    assert summary.written == 1
    assert not [p for p in tmp_path.iterdir() if p.is_file()]  # nothing beside OUTPUT
    (written,) = outputs(cfg)
    parts = written.relative_to(cfg.output).parts
    assert len(parts) == 4 and not any(part.startswith(".") for part in parts), parts


def test_audit_store_holds_no_names_or_paths_unless_asked(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    run(cfg)
    blob = workspace_bytes(cfg)
    assert len(blob) > 4096
    for phi in PHI_STRINGS + (EXPORT, "CT_SMITHERS", "DOE^JANE", "MRN-0000777", str(mixed)):
        assert phi.encode() not in blob, phi
    db = sqlite3.connect(cfg.workspace / "audit.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM files WHERE original_path IS NOT NULL").fetchone() == (0,)
        for table in ("runs", "files", "action_counts", "events"):
            for row in db.execute(f"SELECT * FROM {table}"):
                text = " ".join(str(v) for v in row)
                for phi in PHI_STRINGS + (EXPORT,):
                    assert phi.upper() not in text.upper()
    finally:
        db.close()


def test_audit_store_records_original_paths_when_opted_in(tmp_path, mixed):
    cfg = config(tmp_path, mixed, record_originals=True)
    run(cfg)
    assert EXPORT.encode() in workspace_bytes(cfg)
    db = sqlite3.connect(cfg.workspace / "audit.sqlite")
    try:
        stored = sorted(r[0] for r in db.execute("SELECT original_path FROM files"))
        refs = {r[0]: r[1] for r in db.execute("SELECT input_ref, original_path FROM files")}
    finally:
        db.close()
    assert stored == sorted(str(p) for p in inputs(mixed))
    for path in inputs(mixed):
        assert refs[input_ref(KEY, mixed, path)] == str(path)
    # Only that column: the output tree and the names in the workspace stay clean.
    for path in list(cfg.output.rglob("*")) + list(cfg.workspace.rglob("*")):
        assert "SMITHERS" not in str(path.relative_to(tmp_path))


def test_deidentify_path_puts_the_workspace_beside_the_output(tmp_path, mixed):
    out = tmp_path / "release"
    summary = medveil.deidentify_path(mixed, out, policy="basic", key=KEY)
    assert summary.written == 5
    assert summary.workspace == tmp_path / "release.medveil-workspace"
    assert (summary.workspace / "audit.sqlite").is_file()
    assert not any(p.name.startswith("audit") for p in out.rglob("*"))
    assert len([p for p in out.rglob("*") if p.is_file()]) == 5


# -- 2. fail closed: quarantine ------------------------------------------------------------------


def _text(path: Path) -> None:
    path.write_text(f"Report for {PHI['PatientName']} ({PHI['PatientID']}): no findings\n")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _random_behind_dicm(path: Path) -> None:
    path.write_bytes(bytes(128) + b"DICM" + random.Random(7).randbytes(4096))


def _ct_cut_in_pixels(path: Path) -> None:
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    pixels = data.rindex(b"\xe0\x7f\x10\x00")
    path.write_bytes(data[: pixels + 12 + 10000])


def _ct_cut_in_header(path: Path) -> None:
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    # In the middle of the Patient Name value: not an element boundary.
    at = data.index(b"CompressedSamples^CT1") + 5
    path.write_bytes(data[:at])


def _mr_truncated(path: Path) -> None:
    shutil.copyfile(TEST_FILES / "MR_truncated.dcm", path)


def _rtplan_truncated(path: Path) -> None:
    shutil.copyfile(TEST_FILES / "rtplan_truncated.dcm", path)


def _no_sop_instance_uid(path: Path) -> None:
    ds = image_dataset(SOPInstanceUID=SOP_UID + ".20")
    del ds.SOPInstanceUID
    save(ds, path)


def _ultrasound(path: Path) -> None:
    save(image_dataset(SOPInstanceUID=SOP_UID + ".21", Modality="US"), path)


def _burned_in_yes(path: Path) -> None:
    save(image_dataset(SOPInstanceUID=SOP_UID + ".22", BurnedInAnnotation="YES"), path)


def _residual_name(path: Path) -> None:
    # Modality is kept by Table E.1-1 and, a Type 1 coded string, has no repair that keeps
    # the object valid: the residual check must refuse the file.
    save(image_dataset(SOPInstanceUID=SOP_UID + ".23", Modality=PHI["PatientID"]), path)


def _short_pixels(path: Path) -> None:
    ds = image_dataset(SOPInstanceUID=SOP_UID + ".24")
    ds.PixelData = bytes(16)
    save(ds, path)


#: Inputs that are clearly not DICOM: listed as skipped, never copied, no change to the exit status.
STRAY = {
    "text": (_text, "report.txt", r"not DICOM"),
    "empty": (_empty, "empty.dcm", r"empty"),
}

BAD = {
    "random-behind-DICM": (_random_behind_dicm, "noise.dcm", r"truncated|parsed|SOP"),
    "cut-in-pixel-data": (_ct_cut_in_pixels, "cut_pixels.dcm", r"truncated"),
    "cut-in-header": (_ct_cut_in_header, "cut_header.dcm", r"truncated|parsed|SOP"),
    "MR_truncated": (_mr_truncated, "MR_truncated.dcm", r"truncated|parsed|SOP"),
    "rtplan_truncated": (_rtplan_truncated, "rtplan_truncated.dcm", r"truncated|parsed|SOP"),
    "no-SOP-Instance-UID": (_no_sop_instance_uid, "nosop.dcm", r"SOP Class/Instance UID"),
    "modality-US": (_ultrasound, "us.dcm", r"burned-in"),
    "burned-in-YES": (_burned_in_yes, "bia.dcm", r"burned-in"),
    "residual-identifier": (_residual_name, "resid.dcm", r"original identifier still present.*Modality"),
    "short-pixel-data": (_short_pixels, "short.dcm", r"shorter"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_quarantined_and_the_rest_is_written(tmp_path, inp, kind):
    make, name, reason_pattern = BAD[kind]
    export = inp / EXPORT
    good_a = save(image_dataset(), export / "a_good.dcm")
    good_b = copy_bundled("CT_small.dcm", export / "z_good.dcm")
    bad = export / f"m_{name}"
    make(bad)
    cfg = config(tmp_path, inp)
    summary = run(cfg)
    assert summary.files_total == 3
    assert summary.quarantined == 1
    assert summary.written == 2
    assert len(outputs(cfg)) == 2
    rec = records(cfg, good_a, good_b, bad)
    assert rec["a_good.dcm"].status == "written" and rec["z_good.dcm"].status == "written"
    assert rec[bad.name].status == "quarantined"
    assert rec[bad.name].output_relpath is None
    ref = input_ref(KEY, inp, bad)
    copy = cfg.workspace / "quarantine" / f"{ref}.dcm"
    reason_file = cfg.workspace / "quarantine" / f"{ref}.reason.txt"
    assert copy.read_bytes() == bad.read_bytes()
    assert copy.stat().st_mode & 0o777 == 0o600
    reason = rec[bad.name].reason
    lines = reason_file.read_text(encoding="utf-8").splitlines()
    # The private reason file names the input (within INPUT) so a curator can find it.
    assert lines[0] == f"reason: {reason}"
    assert lines[1] == f"input: {EXPORT}/m_{name} (within INPUT)"
    assert lines[2] == f"input sha256: {sha256(bad)}"
    assert sum(summary.reasons.values()) == 1 and summary.reasons[reason] == 1
    assert summary.quarantined_inputs == [(f"{EXPORT}/m_{name}", reason)]
    assert re.search(reason_pattern, reason), reason
    for phi in PHI_STRINGS + (EXPORT, name, "CompressedSamples"):
        assert phi.upper() not in reason.upper()  # the audit store's reason names no path or value
    for path in sorted((cfg.workspace / "quarantine").iterdir()):
        assert path.name.startswith(ref)  # nothing else quarantined, names are opaque


@pytest.mark.parametrize("kind", list(STRAY))
def test_stray_files_are_skipped_not_quarantined(tmp_path, inp, kind):
    make, name, reason_pattern = STRAY[kind]
    export = inp / EXPORT
    save(image_dataset(), export / "a_good.dcm")
    stray = export / f"m_{name}"
    make(stray)
    cfg = config(tmp_path, inp)
    summary = run(cfg)
    assert (summary.written, summary.quarantined, summary.skipped) == (1, 0, 1)
    assert records(cfg, stray)[stray.name].status == "skipped"
    assert re.search(reason_pattern, summary.skipped_inputs[0][1])
    assert summary.skipped_inputs[0][0] == f"{EXPORT}/m_{name}"
    assert not (cfg.workspace / "quarantine").exists() or not list((cfg.workspace / "quarantine").iterdir())


@pytest.mark.parametrize("kind", ["modality-US", "burned-in-YES"])
def test_burned_in_objects_are_written_when_passed(tmp_path, inp, kind):
    make, name, _ = BAD[kind]
    export = inp / EXPORT
    save(image_dataset(), export / "a_good.dcm")
    make(export / name)
    cfg = config(tmp_path, inp, policy=PASS_BURNED_IN)
    summary = run(cfg)
    assert summary.written == 2 and summary.quarantined == 0
    assert summary.events["burned-in-passed"] == 1
    assert not (cfg.workspace / "quarantine").exists() or not any((cfg.workspace / "quarantine").iterdir())
    with AuditStore.open(cfg.workspace / "audit.sqlite") as store:
        assert store.run_summary(summary.run_id)["event_counts"]["burned-in-passed"] == 1


def test_a_file_quarantined_earlier_leaves_quarantine_once_it_is_written(tmp_path, inp):
    us = inp / EXPORT / "us.dcm"
    _ultrasound(us)
    cfg = config(tmp_path, inp)
    assert run(cfg).quarantined == 1
    ref = input_ref(KEY, inp, us)
    assert (cfg.workspace / "quarantine" / f"{ref}.dcm").exists()
    summary = run(dataclasses.replace(cfg, policy=PASS_BURNED_IN))
    assert summary.written == 1
    assert not (cfg.workspace / "quarantine" / f"{ref}.dcm").exists()
    assert not (cfg.workspace / "quarantine" / f"{ref}.reason.txt").exists()


def test_image_cut_exactly_before_pixel_data_is_quarantined(tmp_path, inp):
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    cut = inp / EXPORT / "cut.dcm"
    cut.write_bytes(data[: data.rindex(b"\xe0\x7f\x10\x00")])
    assert "Rows" in read(cut) and "PixelData" not in read(cut)
    cfg = config(tmp_path, inp)
    summary = run(cfg)
    assert summary.quarantined == 1 and summary.written == 0


# -- 3. duplicate SOP Instance UIDs --------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("first_thick", ["1.0", "2.0"])
def test_duplicate_sop_instance_uid_first_in_path_order_wins(tmp_path, inp, workers, first_thick):
    second_thick = "2.0" if first_thick == "1.0" else "1.0"
    export = inp / EXPORT
    # Created in the opposite order to their names, so only the sort decides.
    second = save(image_dataset(SliceThickness=second_thick), export / "b.dcm")
    first = save(image_dataset(SliceThickness=first_thick), export / "a.dcm")
    save(image_dataset(SOPInstanceUID=SOP_UID + ".9"), export / "c.dcm")
    cfg = config(tmp_path, inp, workers=workers, mappings_dir=tmp_path / "maps")
    summary = run(cfg)
    assert summary.written == 2 and summary.quarantined == 1
    rec = records(cfg, first, second)
    assert rec["a.dcm"].status == "written"
    assert rec["b.dcm"].status == "quarantined"
    assert "same SOP Instance UID" in rec["b.dcm"].reason
    written = cfg.output / rec["a.dcm"].output_relpath
    assert str(read(written).SliceThickness) == first_thick
    ref = input_ref(KEY, inp, second)
    assert (cfg.workspace / "quarantine" / f"{ref}.dcm").read_bytes() == second.read_bytes()
    assert "same SOP Instance UID" in (cfg.workspace / "quarantine" / f"{ref}.reason.txt").read_text()


def test_duplicate_sop_instance_uid_contributes_no_mapping_pairs(tmp_path, inp):
    export = inp / EXPORT
    save(image_dataset(), export / "a.dcm")
    # Same SOP Instance UID, its own Frame of Reference: refused, so its UID must not be mapped.
    save(image_dataset(FrameOfReferenceUID=FOR_UID + ".55", SliceThickness="3.0"), export / "b.dcm")
    cfg = config(tmp_path, inp, mappings_dir=tmp_path / "maps")
    summary = run(cfg)
    assert summary.quarantined == 1
    uid_map = mapping(cfg.mappings_dir / "uid_mapping.csv")
    assert FOR_UID in uid_map
    assert FOR_UID + ".55" not in uid_map


@pytest.mark.parametrize("workers", [1, 2])
def test_duplicate_sop_instance_uid_in_another_series_is_quarantined(tmp_path, inp, workers):
    export = inp / EXPORT
    save(image_dataset(), export / "a.dcm")
    second = save(image_dataset(SeriesInstanceUID=SERIES_UID + ".2"), export / "b.dcm")
    cfg = config(tmp_path, inp, workers=workers)
    summary = run(cfg)
    sops = [read(p).SOPInstanceUID for p in outputs(cfg)]
    assert len(sops) == len(set(sops)), "two released files share one SOP Instance UID"
    assert summary.quarantined == 1
    assert records(cfg, second)["b.dcm"].status == "quarantined"


# -- 4. determinism ------------------------------------------------------------------------------


def test_same_input_and_key_give_byte_identical_trees(tmp_path, mixed):
    one = config(tmp_path, mixed, "one", mappings_dir=tmp_path / "maps-one")
    two = config(tmp_path, mixed, "two", mappings_dir=tmp_path / "maps-two")
    par = config(tmp_path, mixed, "par", mappings_dir=tmp_path / "maps-par", workers=2)
    for cfg in (one, two, par):
        summary = run(cfg)
        assert summary.written == 5
    reference = tree(one.output)
    assert len(reference) == 5
    assert tree(two.output) == reference
    assert tree(par.output) == reference
    maps = tree(one.mappings_dir)
    assert sorted(maps) == ["patid_mapping.csv", "uid_mapping.csv"]
    assert tree(two.mappings_dir) == maps
    assert tree(par.mappings_dir) == maps


def test_a_different_key_gives_different_pseudonyms(tmp_path, mixed):
    one = config(tmp_path, mixed, "one", mappings_dir=tmp_path / "maps-one")
    other = config(tmp_path, mixed, "other", mappings_dir=tmp_path / "maps-other", key=OTHER_KEY)
    run(one)
    run(other)
    paths_one, paths_other = set(tree(one.output)), set(tree(other.output))
    assert len(paths_one) == len(paths_other) == 5
    assert not paths_one & paths_other
    uids_one = mapping(one.mappings_dir / "uid_mapping.csv")
    uids_other = mapping(other.mappings_dir / "uid_mapping.csv")
    assert uids_one.keys() == uids_other.keys()
    assert not set(uids_one.values()) & set(uids_other.values())
    pat_one = mapping(one.mappings_dir / "patid_mapping.csv")
    pat_other = mapping(other.mappings_dir / "patid_mapping.csv")
    assert pat_one.keys() == pat_other.keys()
    assert all(pat_one[k] != pat_other[k] for k in pat_one)


# -- 5. resume -----------------------------------------------------------------------------------


def test_second_run_reports_everything_unchanged(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    first = run(cfg)
    assert first.written == 5 and first.actions
    before = tree(cfg.output)
    mtimes = {p: p.stat().st_mtime_ns for p in outputs(cfg)}
    again = run(cfg)
    assert again.unchanged == 5 and again.written == 0 and again.quarantined == 0
    assert not again.actions  # nothing was processed again
    assert tree(cfg.output) == before
    assert {p: p.stat().st_mtime_ns for p in outputs(cfg)} == mtimes
    rec = records(cfg, *inputs(mixed))
    assert {r.status for r in rec.values()} == {"unchanged"}
    assert all(r.run_id == again.run_id for r in rec.values())


def test_without_resume_files_are_processed_again_and_stay_identical(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    first = run(cfg)
    before = tree(cfg.output)
    again = run(dataclasses.replace(cfg, resume=False))
    assert again.actions == first.actions  # every file went through the engine again
    assert again.written + again.unchanged == 5 and again.quarantined == 0
    assert tree(cfg.output) == before
    with AuditStore.open(cfg.workspace / "audit.sqlite") as store:
        assert store.run_summary(again.run_id)["action_counts"] == dict(first.actions)


def test_a_modified_input_is_processed_again(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    run(cfg)
    target = mixed / EXPORT / "CT_SMITHERS" / "IM0001.dcm"
    relpath = records(cfg, target)["IM0001.dcm"].output_relpath
    save(image_dataset(SliceThickness="7.5"), target)
    again = run(cfg)
    assert again.written == 1 and again.unchanged == 4
    assert records(cfg, target)["IM0001.dcm"].status == "written"
    assert str(read(cfg.output / relpath).SliceThickness) == "7.5"


def test_a_deleted_or_damaged_output_is_written_again(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    run(cfg)
    before = tree(cfg.output)
    files = outputs(cfg)
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes()[:-10])
    again = run(cfg)
    assert again.written == 2 and again.unchanged == 3
    assert tree(cfg.output) == before


def test_stale_temporary_files_are_removed_and_none_are_left(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    cfg.output.mkdir()
    stale = cfg.output / ".medveil-tmp-3-12345"
    stale.write_bytes(b"half a file")
    summary = run(cfg)
    assert summary.written == 5
    assert not stale.exists()
    assert not [p for p in cfg.output.rglob(".medveil-tmp-*")]
    par = config(tmp_path, mixed, "par", workers=2)
    run(par)
    assert not [p for p in par.output.rglob(".medveil-tmp-*")]


# -- 6. mapping files ----------------------------------------------------------------------------


def test_mapping_files_pair_every_output_identifier_with_its_original(tmp_path, mixed):
    export = mixed / EXPORT
    # A quarantined file with identifiers of its own: none of them may be listed.
    save(image_dataset(PatientID="MRN-QUAR-1", StudyInstanceUID=STUDY_UID + ".66",
                       SeriesInstanceUID=SERIES_UID + ".66", SOPInstanceUID=SOP_UID + ".66",
                       FrameOfReferenceUID=FOR_UID + ".66", Modality="MRN-QUAR-1"),
         export / "zz_resid.dcm")
    cfg = config(tmp_path, mixed, mappings_dir=tmp_path / "maps")
    summary = run(cfg)
    assert summary.written == 5 and summary.quarantined == 1
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        assert (cfg.mappings_dir / name).read_text(encoding="utf-8").startswith("id_old,id_new\n")
    uid_map = mapping(cfg.mappings_dir / "uid_mapping.csv")
    pat_map = mapping(cfg.mappings_dir / "patid_mapping.csv")
    checked = 0
    for source, rec in records(cfg, *inputs(mixed)).items():
        if rec.status != "written":
            continue
        path = next(p for p in inputs(mixed) if p.name == source and
                    input_ref(KEY, mixed, p) == rec.input_ref)
        before, after = read(path), read(cfg.output / rec.output_relpath)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            if keyword in before:
                assert uid_map[str(before[keyword].value)] == str(after[keyword].value), keyword
                checked += 1
        assert pat_map[str(before.PatientID)] == str(after.PatientID)
    assert checked >= 15
    assert set(pat_map) == {PHI["PatientID"], "MRN-0000777", "1CT1", "4MR1", "id00001"}
    for uid in (STUDY_UID + ".66", SERIES_UID + ".66", SOP_UID + ".66", FOR_UID + ".66"):
        assert uid not in uid_map
    assert "MRN-QUAR-1" not in pat_map
    # The output identifiers are exactly the pseudonyms listed.
    listed = set(uid_map.values())
    for path in outputs(cfg):
        ds = read(path)
        assert {ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID} <= listed


def test_rerunning_merges_mapping_files_without_duplicate_rows(tmp_path, mixed):
    cfg = config(tmp_path, mixed, mappings_dir=tmp_path / "maps")
    run(cfg)
    first = tree(cfg.mappings_dir)
    run(cfg)  # resumed: nothing processed, files kept
    assert tree(cfg.mappings_dir) == first
    run(dataclasses.replace(cfg, resume=False))  # every pair produced again
    assert tree(cfg.mappings_dir) == first
    # A new input adds its pairs and keeps the old ones.
    save(image_dataset(PatientID="MRN-NEW-2", StudyInstanceUID=STUDY_UID + ".88",
                       SeriesInstanceUID=SERIES_UID + ".88", SOPInstanceUID=SOP_UID + ".88",
                       FrameOfReferenceUID=FOR_UID + ".88"), mixed / EXPORT / "new.dcm")
    summary = run(cfg)
    assert summary.written == 1 and summary.unchanged == 5
    old_uids = mapping(tmp_path / "maps" / "uid_mapping.csv")
    old_first = dict(csv.reader(first["uid_mapping.csv"].decode().splitlines()[1:]))
    assert old_first.items() <= old_uids.items()
    assert SOP_UID + ".88" in old_uids and FOR_UID + ".88" in old_uids
    assert "MRN-NEW-2" in mapping(tmp_path / "maps" / "patid_mapping.csv")


def test_mappings_written_when_asked_for_after_a_run_without_them(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    run(cfg)
    with_maps = dataclasses.replace(cfg, mappings_dir=tmp_path / "maps")
    summary = run(with_maps)
    # No mapping files yet, so resuming cannot skip: the pairs must be produced.
    assert summary.unchanged == 5 and summary.actions
    assert len(mapping(tmp_path / "maps" / "patid_mapping.csv")) == 5


# -- 7. layout safety ----------------------------------------------------------------------------


def _layout(tmp_path: Path, inp: Path, case: str) -> tuple[RunConfig, str]:
    out = tmp_path / "out"
    base = dict(policy=BASIC, key=KEY)
    if case == "workspace-in-output":
        return RunConfig(input=inp, output=out, workspace=out / "ws", **base), "workspace"
    if case == "workspace-is-output":
        return RunConfig(input=inp, output=out, workspace=out, **base), "workspace"
    if case == "mappings-in-output":
        return RunConfig(input=inp, output=out, workspace=tmp_path / "ws",
                         mappings_dir=out / "private" / "maps", **base), "mappings directory"
    if case == "output-in-input":
        return RunConfig(input=inp, output=inp / EXPORT / "out", workspace=tmp_path / "ws", **base), \
            "output directory"
    if case == "output-is-input":
        return RunConfig(input=inp, output=inp, workspace=tmp_path / "ws", **base), "output directory"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["workspace-in-output", "workspace-is-output", "mappings-in-output",
                                  "output-in-input", "output-is-input"])
def test_unsafe_layouts_are_refused_before_anything_is_written(tmp_path, inp, case):
    save(image_dataset(), inp / EXPORT / "a.dcm")
    before = tree(tmp_path)
    cfg, what = _layout(tmp_path, inp, case)
    with pytest.raises(MedveilError, match=what) as info:
        run(cfg)
    assert "must not" in str(info.value)
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_unsafe_layout_is_refused_through_deidentify_path(tmp_path, inp):
    save(image_dataset(), inp / EXPORT / "a.dcm")
    with pytest.raises(MedveilError, match="must not"):
        medveil.deidentify_path(inp, tmp_path / "out", key=KEY, mappings_dir=tmp_path / "out" / "maps")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.medveil-workspace").exists()


def test_input_inside_output_is_refused(tmp_path):
    out = tmp_path / "out"
    inp = out / "incoming"
    save(image_dataset(), inp / EXPORT / "a.dcm")
    with pytest.raises(MedveilError, match="must not"):
        run(RunConfig(input=inp, output=out, workspace=tmp_path / "ws", policy=BASIC, key=KEY))


def test_workspace_inside_input_is_refused_or_never_read_as_input(tmp_path, inp):
    save(image_dataset(), inp / EXPORT / "a.dcm")
    _ultrasound(inp / EXPORT / "us.dcm")
    cfg = RunConfig(input=inp, output=tmp_path / "out", workspace=inp / "ws", policy=BASIC, key=KEY)
    try:
        first = run(cfg)
    except MedveilError:
        return  # refused: fine
    again = run(cfg)
    assert again.files_total == first.files_total == 2
    assert again.quarantined == first.quarantined == 1


# -- 8. pixel data and transfer syntax ------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                                  "JPEG2000.dcm", "MR_small_RLE.dcm", "SC_rgb_small_odd.dcm"])
@pytest.mark.parametrize("policy", [PASS_BURNED_IN, dataclasses.replace(TCIA, burned_in="pass")],
                         ids=["basic", "tcia"])
def test_pixel_data_bytes_and_transfer_syntax_are_unchanged(tmp_path, inp, name, policy):
    source = copy_bundled(name, inp / EXPORT / name)
    cfg = config(tmp_path, inp, policy=policy)
    summary = run(cfg)
    assert summary.written == 1, summary.reasons
    (path,) = outputs(cfg)
    before, after = read(source), pydicom.dcmread(path)
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    raw_before = bytes(before.get_item(0x7FE00010).value)
    raw_after = bytes(after.get_item(0x7FE00010).value)
    assert len(raw_before) > 20
    assert raw_after == raw_before
    assert raw_before in path.read_bytes()
    assert after.PatientIdentityRemoved == "YES"
    assert after.PatientName != before.PatientName


def test_pixel_data_of_the_phi_image_is_unchanged(tmp_path, inp):
    source = save(image_dataset(), inp / EXPORT / "a.dcm")
    cfg = config(tmp_path, inp)
    run(cfg)
    (path,) = outputs(cfg)
    assert read(path).PixelData == read(source).PixelData == bytes(range(32))


# -- 9. the audit store --------------------------------------------------------------------------


def test_audit_store_records_the_run_and_every_file(tmp_path, mixed):
    export = mixed / EXPORT
    _text(export / "notes.txt")
    _ultrasound(export / "us.dcm")
    cfg = config(tmp_path, mixed, policy=TCIA)
    summary = run(cfg)
    # The ultrasound is written: the tcia profile's Clean Pixel Data option scans it.
    assert summary.files_total == 7 and summary.written == 6 and summary.skipped == 1
    with AuditStore.open(cfg.workspace / "audit.sqlite") as store:
        (row,) = store.runs()
        assert row["run_id"] == summary.run_id
        assert row["key_fingerprint"] == KEY.fingerprint() != OTHER_KEY.fingerprint()
        assert row["profile"] == TCIA.name == "tcia"
        assert row["options"]["options"] == sorted(o.value for o in TCIA.options) != []
        assert row["options"]["workers"] == 1 and row["options"]["mappings"] is False
        assert row["table_edition"] == TCIA.table.edition
        assert row["tool_version"] == medveil.__version__
        assert row["finished_at"] is not None
        assert (row["files_total"], row["files_written"], row["files_quarantined"],
                row["files_skipped"]) == (7, 6, 0, 1)
        assert row["outcome"] == "finished"
        info = store.run_summary(summary.run_id)
        assert info["status_counts"] == {"skipped": 1, "written": 6}
        assert info["action_counts"] == dict(summary.actions)
        assert sum(info["action_counts"].values()) > 20
        for path in inputs(mixed):
            rec = store.last_result(input_ref(KEY, mixed, path))
            assert rec is not None and rec.run_id == summary.run_id
            assert rec.input_sha256 in (None, sha256(path))
            if path.name == "notes.txt":
                assert rec.status == "skipped" and rec.reason
                assert rec.output_relpath is None
            else:
                assert rec.status == "written" and rec.reason is None
                assert rec.input_sha256 == sha256(path)
                assert rec.output_sha256 == sha256(cfg.output / rec.output_relpath)
        assert store.last_result("0" * 32) is None
    blob = workspace_bytes(cfg)
    assert KEY.secret not in blob and KEY.secret.hex().encode() not in blob
    db = sqlite3.connect(cfg.workspace / "audit.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone() == (7,)
    finally:
        db.close()


def test_audit_store_keeps_every_run_and_the_latest_result(tmp_path, mixed):
    cfg = config(tmp_path, mixed)
    first = run(cfg)
    second = run(dataclasses.replace(cfg, workers=2))
    with AuditStore.open(cfg.workspace / "audit.sqlite") as store:
        runs = store.runs()
        assert [r["run_id"] for r in runs] == [first.run_id, second.run_id]
        assert runs[1]["options"]["workers"] == 2
        assert store.run_summary(first.run_id)["status_counts"] == {"written": 5}
        assert store.run_summary(second.run_id)["status_counts"] == {"unchanged": 5}
        for path in inputs(mixed):
            rec = store.last_result(input_ref(KEY, mixed, path))
            assert rec.run_id == second.run_id and rec.status == "unchanged"
            assert (cfg.output / rec.output_relpath).is_file()


def test_file_declaring_explicit_vr_but_written_implicit_is_released(tmp_path):
    """SC_rgb_jpeg.dcm says JPEG Baseline (explicit VR) and is encoded implicit VR."""
    inp = tmp_path / "in"
    copy_bundled("SC_rgb_jpeg.dcm", inp / "sc.dcm")
    cfg = config(tmp_path, inp, policy=PASS_BURNED_IN)
    summary = run(cfg)
    assert (summary.written, summary.quarantined) == (1, 0), dict(summary.reasons)
    [output] = outputs(cfg)
    ds = pydicom.dcmread(output)
    assert ds.file_meta.TransferSyntaxUID == pydicom.dcmread(inp / "sc.dcm").file_meta.TransferSyntaxUID
    assert ds.PixelData == pydicom.dcmread(inp / "sc.dcm").PixelData
