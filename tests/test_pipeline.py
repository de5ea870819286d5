"""Every entry point goes through the one per-file pipeline: the API, the dry run, the runners."""

from __future__ import annotations

from dataclasses import replace

import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

import medveil
from medveil.cli import app
from medveil.errors import QuarantineError
from medveil.pipeline import deidentify_bytes
from medveil.pseudonym import Key

runner = CliRunner()
KEY = Key(bytes(range(1, 33)))
SECONDARY_CAPTURE = get_testdata_file("SC_rgb.dcm")
CT = get_testdata_file("CT_small.dcm")


def test_api_applies_the_burned_in_gate():
    """A Secondary Capture is refused by the API as by a run, not released with its pixels untouched."""
    ds = pydicom.dcmread(SECONDARY_CAPTURE)
    with pytest.raises(QuarantineError, match="burned-in text"):
        medveil.deidentify_dataset(ds, "basic", KEY)
    _, record = deidentify_bytes(open(SECONDARY_CAPTURE, "rb").read(), medveil.get_profile("basic"), KEY)
    assert record.status == "quarantined" and "burned-in text" in record.reason


def test_api_passes_burned_in_objects_when_the_policy_says_so():
    ds = pydicom.dcmread(SECONDARY_CAPTURE)
    medveil.deidentify_dataset(ds, replace(medveil.get_profile("basic"), burned_in="pass"), KEY)
    assert ds.PatientIdentityRemoved == "YES"


def test_api_gives_the_header_a_file_gets():
    """The dataset the API returns holds what the released file holds."""
    data = open(CT, "rb").read()
    policy = medveil.get_profile("tcia")
    policy = replace(policy, options=policy.options - {medveil.Option.CLEAN_PIXEL_DATA})
    out, record = deidentify_bytes(data, policy, KEY)
    assert record.status == "written"
    released = pydicom.dcmread(pydicom.filebase.DicomBytesIO(out))
    ds = pydicom.dcmread(CT)
    medveil.deidentify_dataset(ds, policy, KEY)
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "SOPInstanceUID", "StudyDate",
                    "DeidentificationMethod"):
        assert ds.get(keyword) == released.get(keyword), keyword


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    assert runner.invoke(app, ["keygen", str(path)]).exit_code == 0
    return path


def test_dry_run_with_sequential_ids(tmp_path, key_file):
    """--sequential-ids --dry-run shows the numbered patient instead of failing."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ct.dcm").write_bytes(open(CT, "rb").read())
    result = runner.invoke(app, ["deidentify", str(tmp_path / "in"), str(tmp_path / "out"), "-k", str(key_file),
                                 "--sequential-ids", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "PatientID" in result.output and "000000000001" in result.output
    assert "quarantined" not in result.output
    assert not (tmp_path / "out").exists()


def test_dry_run_says_when_a_file_would_be_quarantined(tmp_path, key_file):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sc.dcm").write_bytes(open(SECONDARY_CAPTURE, "rb").read())
    result = runner.invoke(app, ["deidentify", str(tmp_path / "in"), str(tmp_path / "out"), "-k", str(key_file),
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would be quarantined" in result.output and "burned-in text" in result.output
    assert not (tmp_path / "out").exists()
