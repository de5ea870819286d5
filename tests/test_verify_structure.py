"""``medveil verify`` without a key: the structure shows whether a file was de-identified at all."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

import medveil
from medveil.cli import app
from medveil.pseudonym import Key
from medveil.runner.base import run
from medveil.runner.book import RunConfig
from medveil.verify.structure import declared_options, structural_findings

CT = Path(get_testdata_file("CT_small.dcm"))


def test_an_untouched_original_fails_the_structure_check():
    where = {f.location for f in structural_findings(pydicom.dcmread(CT))}
    assert {"PatientIdentityRemoved", "DeidentificationMethod", "InstitutionName"} <= where


def test_released_files_pass_under_each_profile(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ct.dcm").write_bytes(CT.read_bytes())
    for name in ("basic", "tcia"):
        policy = medveil.get_profile(name)
        if name == "tcia":
            from dataclasses import replace

            policy = replace(policy, options=policy.options - {medveil.Option.CLEAN_PIXEL_DATA})
        out = tmp_path / f"out-{name}"
        run(RunConfig(input=tmp_path / "in", output=out, policy=policy, key=Key(b"v" * 32),
                      workspace=tmp_path / f"ws-{name}"))
        (path,) = out.rglob("*.dcm")
        ds = pydicom.dcmread(path)
        assert structural_findings(ds) == []
        assert declared_options(ds) == policy.options


def test_keyless_verify_fails_an_original_and_says_what_it_cannot_check(tmp_path):
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(CT.read_bytes())
    result = CliRunner().invoke(app, ["verify", str(folder), "--no-ocr"], env={"MEDVEIL_KEY_FILE": ""})
    assert result.exit_code == 1
    assert "cannot be matched" in result.output and "not de-identified" in result.output


def test_verify_passes_over_nothing_in_the_release_tree(tmp_path):
    """Mapping files, hidden files, a DICOMDIR and links in a release used to be skipped: "no PHI found"."""
    inp, out = tmp_path / "in", tmp_path / "release"
    inp.mkdir()
    (inp / "ct.dcm").write_bytes(CT.read_bytes())
    run(RunConfig(input=inp, output=out, policy=medveil.get_profile("basic"), key=Key(b"v" * 32),
                  workspace=tmp_path / "ws", mappings_dir=tmp_path / "maps"))
    clean = CliRunner().invoke(app, ["verify", str(out), "--no-ocr"], env={"MEDVEIL_KEY_FILE": ""})
    assert clean.exit_code == 0, clean.output
    for name in ("uid_mapping.csv", "patid_mapping.csv"):
        (out / name).write_bytes((tmp_path / "maps" / name).read_bytes())
    (out / ".original.dcm").write_bytes(CT.read_bytes())
    (out / "DICOMDIR").write_bytes(CT.read_bytes())
    (out / "elsewhere.dcm").symlink_to(inp / "ct.dcm")
    (out / "folder").symlink_to(inp)
    result = CliRunner().invoke(app, ["verify", str(out), "--no-ocr", "--json"], env={"MEDVEIL_KEY_FILE": ""})
    assert result.exit_code == 1
    import json

    flagged = json.loads(result.stdout)["files"]
    assert {"uid_mapping.csv", "patid_mapping.csv", ".original.dcm", "DICOMDIR", "elsewhere.dcm",
            "folder"} == set(flagged)
    assert "mapping file" in flagged["uid_mapping.csv"][0] and "symbolic link" in flagged["folder"][0]
