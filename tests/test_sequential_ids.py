"""Sequential Patient IDs: numbered in input order, stable within one workspace."""

from __future__ import annotations

from dataclasses import replace

import pydicom

from conftest import phi_dataset
from medveil import deidentify_path, get_profile
from medveil.pseudonym import IdFormat, Key


def _write(root, name, patient_id, sop):
    ds = phi_dataset()
    ds.PatientID = patient_id
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _patient_ids(out):
    return sorted({pydicom.dcmread(p).PatientID for p in out.rglob("*.dcm")})


def test_patients_are_numbered_in_input_order_and_keep_their_number(tmp_path):
    src = tmp_path / "in"
    _write(src, "a/1.dcm", "PAT-B", "1.2.3.1")
    _write(src, "b/1.dcm", "PAT-A", "1.2.3.2")
    _write(src, "b/2.dcm", "PAT-B", "1.2.3.3")
    policy = replace(get_profile("basic"), sequential_patient_ids=True,
                     patient_id_format=IdFormat(prefix="MV", digits=4))
    key = Key(b"k" * 32)
    workspace = tmp_path / "ws"
    summary = deidentify_path(src, tmp_path / "out", policy=policy, key=key, workspace=workspace)
    assert summary.written == 3
    assert _patient_ids(tmp_path / "out") == ["MV0001", "MV0002"]
    first = {p.name: pydicom.dcmread(p).PatientID for p in (tmp_path / "out").rglob("*.dcm")}
    assert sorted(first.values()).count("MV0001") == 2  # PAT-B came first, in both of its files
    # A later run with a new patient, same workspace: old numbers stay, the new one is next.
    _write(src, "c/1.dcm", "PAT-C", "1.2.3.4")
    deidentify_path(src, tmp_path / "out2", policy=policy, key=key, workspace=workspace)
    assert _patient_ids(tmp_path / "out2") == ["MV0001", "MV0002", "MV0003"]
    assert b"PAT-" not in (workspace / "audit.sqlite").read_bytes()


def test_an_open_file_is_numbered_as_its_path(tmp_path):
    """The Dask runner numbers remote inputs from an open file: the same number as from the path."""
    from medveil.runner.book import RunBook, RunConfig

    _write(tmp_path / "in", "1.dcm", "PAT-A", "1.2.3.1")
    _write(tmp_path / "in", "2.dcm", "PAT-B", "1.2.3.2")
    policy = replace(get_profile("basic"), sequential_patient_ids=True,
                     patient_id_format=IdFormat(prefix="MV", digits=4))
    config = RunConfig(input=tmp_path / "in", output=tmp_path / "out", policy=policy, key=Key(b"k" * 32),
                       workspace=tmp_path / "ws")
    book = RunBook(config).open()
    try:
        assert book.sequential_patient_id(tmp_path / "in" / "1.dcm") == "MV0001"
        with open(tmp_path / "in" / "2.dcm", "rb") as handle:
            assert book.sequential_patient_id(handle) == "MV0002"
        with open(tmp_path / "in" / "1.dcm", "rb") as handle:
            assert book.sequential_patient_id(handle) == "MV0001"
    finally:
        book.close("finished")
