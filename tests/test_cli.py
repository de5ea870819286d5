"""The command line's small commands and its guarantees about what it prints."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from conftest import PHI, phi_dataset
from medveil.cli import app

runner = CliRunner()


@pytest.fixture
def export(tmp_path):
    """An input tree named like a real export, with one good file and one text file."""
    root = tmp_path / "in" / f"{PHI['PatientName']}_{PHI['PatientID']}"
    root.mkdir(parents=True)
    phi_dataset().save_as(root / "img.dcm", enforce_file_format=True)
    (root / "notes.txt").write_text(f"report for {PHI['PatientName']}\n")
    return tmp_path / "in"


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    assert runner.invoke(app, ["keygen", str(path)]).exit_code == 0
    return path


def test_version_names_the_standard_edition():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "2025b" in result.output and "medveil" in result.output


def test_profiles_lists_profiles_and_options():
    result = runner.invoke(app, ["profiles"])
    assert result.exit_code == 0
    for word in ("basic", "tcia", "retain_long_modified_dates", "clean_descriptors"):
        assert word in result.output


def test_keygen_refuses_to_overwrite(key_file):
    result = runner.invoke(app, ["keygen", str(key_file)])
    assert result.exit_code == 2 and "refusing" in result.output


def test_no_key_is_refused_with_a_way_forward(export, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDVEIL_KEY_FILE", raising=False)
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "keygen" in result.output and "--throwaway-key" in result.output
    assert not (tmp_path / "out").exists()


def test_key_from_environment(export, tmp_path, key_file, monkeypatch):
    monkeypatch.setenv("MEDVEIL_KEY_FILE", str(key_file))
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0  # the text file is skipped (not DICOM): no change to the exit status
    summary = json.loads(result.stdout)
    assert summary["written"] == 1 and summary["quarantined"] == 0 and summary["skipped"] == 1


def test_throwaway_key_runs_and_warns(export, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDVEIL_KEY_FILE", raising=False)
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "--throwaway-key"])
    assert result.exit_code == 0
    assert "throw-away" in result.output


def test_terminal_output_carries_no_phi(export, tmp_path, key_file):
    """No value read from a file reaches the terminal; paths within INPUT are the user's own and are
    shown (the summary names skipped and quarantined inputs), so the folder name is set aside."""
    folder = f"{PHI['PatientName']}_{PHI['PatientID']}"
    for args in (["--profile", "tcia"], ["--dry-run"], ["--json"]):
        result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file), *args])
        assert result.exit_code in (0, 1), result.output
        shown = result.output.replace(folder, "<folder>")
        for value in PHI.values():
            assert value not in shown
        assert PHI["PatientName"].split("^")[0] not in shown
        if args[0] != "--dry-run":
            assert "<folder>/notes.txt" in shown  # the skipped input is named by its path within INPUT


def test_dry_run_writes_nothing_and_shows_new_values(export, tmp_path, key_file):
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file),
                                 "--dry-run"])
    assert result.exit_code == 0
    assert "PatientID" in result.output and "replaced" in result.output
    assert not (tmp_path / "out").exists()


def test_recipe_and_options_reach_the_output(export, tmp_path, key_file):
    import pydicom

    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"actions": {"PatientSex": "K", "Modality": "X"},
                                      "patient_id": {"prefix": "MV", "digits": 6}}))
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file),
                                 "--recipe", str(recipe), "-o", "retain_long_full_dates"])
    assert result.exit_code == 0, result.output
    [output] = list((tmp_path / "out").rglob("*.dcm"))
    ds = pydicom.dcmread(output)
    assert ds.PatientSex == "M" and "Modality" not in ds
    assert ds.PatientID.startswith("MV") and len(ds.PatientID) == 8
    assert ds.StudyDate == "20200310"


def test_bad_recipe_is_a_clear_error(export, tmp_path, key_file):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("actions: {NoSuchAttribute: X}\n")
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file),
                                 "--recipe", str(recipe)])
    assert result.exit_code == 2 and "unknown attribute" in result.output


def test_mappings_inside_output_are_refused(export, tmp_path, key_file):
    out = tmp_path / "out"
    result = runner.invoke(app, ["deidentify", str(export), str(out), "-k", str(key_file),
                                 "--mappings", str(out / "maps")])
    assert result.exit_code == 2 and "must not be inside the output" in result.output


def test_unexpected_errors_do_not_quote_values(export, tmp_path, key_file, monkeypatch):
    import medveil

    def boom(*args, **kwargs):
        raise ValueError(f"secret {PHI['PatientName']}")

    monkeypatch.setattr(medveil, "deidentify_path", boom)
    monkeypatch.delenv("MEDVEIL_DEBUG", raising=False)
    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file)])
    assert result.exit_code == 3
    assert "internal error (ValueError)" in result.output and PHI["PatientName"] not in result.output


def test_sequential_ids_flag(export, tmp_path, key_file):
    import pydicom

    result = runner.invoke(app, ["deidentify", str(export), str(tmp_path / "out"), "-k", str(key_file),
                                 "--sequential-ids"])
    assert result.exit_code == 0
    [output] = list((tmp_path / "out").rglob("*.dcm"))
    assert pydicom.dcmread(output).PatientID == "000000000001"
