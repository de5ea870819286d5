"""What a newcomer sees in the first hour (issue 16): messages, warnings and summaries of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from medveil.cli import app

runner = CliRunner()
CT = Path(get_testdata_file("CT_small.dcm"))


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    assert runner.invoke(app, ["keygen", str(path)]).exit_code == 0
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "export"
    (root / "series").mkdir(parents=True)
    (root / "series" / "a.dcm").write_bytes(CT.read_bytes())
    (root / "series" / "b.dcm").write_bytes(CT.read_bytes())  # the same file twice
    (root / "README.md").write_text("# notes\n")
    return root


def test_the_summary_names_inputs_places_and_duplicates(folder, tmp_path, key_file):
    out = tmp_path / "out"
    result = runner.invoke(app, ["deidentify", str(folder), str(out), "-k", str(key_file),
                                 "--mappings", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output  # a stray README changes nothing
    text = result.output
    assert "README.md: not DICOM" in text
    assert "series/b.dcm: duplicate of series/a.dcm" in text
    for label, place in (("release", out), ("mappings", tmp_path / "maps"),
                         ("workspace", tmp_path / "out.medveil-workspace")):
        assert label in text and str(place) in text.replace("\n", "")


def test_flagged_scan_warns_how_many_images_were_not_scanned(folder, tmp_path, key_file):
    result = runner.invoke(app, ["deidentify", str(folder), str(tmp_path / "out"), "-k", str(key_file),
                                 "-p", "tcia", "--pixel-scan", "flagged", "--json"])
    summary = json.loads(result.stdout)
    assert summary["pixel_scan"].startswith("flagged") and summary["not_scanned"] == 2
    human = runner.invoke(app, ["deidentify", str(folder), str(tmp_path / "out2"), "-k", str(key_file),
                                "-p", "tcia", "--pixel-scan", "flagged"])
    assert "2 images were not scanned for burned-in text" in human.output


def test_no_ocr_engine_stops_a_profile_that_needs_one_before_anything_is_written(folder, tmp_path, key_file,
                                                                                  monkeypatch):
    import medveil.pixels.ocr as ocr

    def missing(name):
        raise ocr.OcrUnavailable("no OCR engine installed: pip install 'medveil[ocr]'")

    monkeypatch.setattr(ocr, "available_engines", missing)
    result = runner.invoke(app, ["deidentify", str(folder), str(tmp_path / "out"), "-k", str(key_file),
                                 "-p", "tcia"])
    assert result.exit_code == 2
    assert "pip install 'medveil[ocr]'" in result.output  # brackets shown, not eaten as markup
    assert not (tmp_path / "out").exists()


def test_mistakes_get_messages_that_help(folder, tmp_path, key_file):
    missing = tmp_path / "no-such-folder"
    result = runner.invoke(app, ["deidentify", str(missing), str(tmp_path / "out"), "-k", str(key_file)])
    assert result.exit_code == 2 and str(missing) in result.output.replace("\n", "")
    typo = runner.invoke(app, ["deidentify", str(folder), str(tmp_path / "out"), "-k", str(key_file), "-p", "tcai"])
    assert typo.exit_code == 2 and "did you mean 'tcia'" in typo.output


def test_dry_run_says_which_file_it_shows(folder, tmp_path, key_file):
    result = runner.invoke(app, ["deidentify", str(folder), str(tmp_path / "out"), "-k", str(key_file),
                                 "--dry-run"])
    assert result.exit_code == 0 and "dry run of series/a.dcm" in result.output


def test_profiles_explain_every_option():
    from medveil.policy import Option

    result = runner.invoke(app, ["profiles"])
    for option in Option:
        assert option.value in result.output
    assert "shift dates by a keyed per-patient offset" in result.output


def test_verify_shows_whole_paths(tmp_path):
    deep = tmp_path / "release" / ("a-rather-long-folder-name-" * 3) / "file.dcm"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(CT.read_bytes())
    result = runner.invoke(app, ["verify", str(tmp_path / "release"), "--no-ocr"], env={"MEDVEIL_KEY_FILE": ""})
    assert result.exit_code == 1
    shown = result.output.replace("\n", "").replace("│", "").replace(" ", "")
    assert str(deep.relative_to(tmp_path / "release")) in shown
