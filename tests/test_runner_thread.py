"""The thread executor: a runner in one small file, with the same outputs as the local one."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

import medveil
from medveil.cli import app
from medveil.pseudonym import Key
from medveil.runner.base import run
from medveil.runner.book import RunConfig
from medveil.runner.local import LocalExecutor
from medveil.runner.thread import ThreadExecutor

KEY = Key(bytes(range(1, 33)))
POLICY = dataclasses.replace(medveil.get_profile("basic"), burned_in="pass")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def inp(tmp_path: Path) -> Path:
    """Some of pydicom's files (one of them twice, one that is quarantined) and a text file."""
    root = tmp_path / "in"
    root.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb.dcm", "JPEG2000.dcm",
                 "no_meta.dcm", "emri_small.dcm"):
        shutil.copyfile(get_testdata_file(name), root / name)
    shutil.copyfile(get_testdata_file("CT_small.dcm"), root / "CT_small_again.dcm")
    (root / "broken.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:1200])
    (root / "notes.txt").write_text("not DICOM\n")
    return root


def config(tmp_path: Path, inp: Path, name: str, **kwargs) -> RunConfig:
    kwargs.setdefault("policy", POLICY)
    return RunConfig(input=inp, output=tmp_path / name, workspace=tmp_path / f"{name}-ws", key=KEY,
                     mappings_dir=tmp_path / f"{name}-maps", **kwargs)


def counts(summary) -> tuple:
    return (summary.files_total, summary.written, summary.unchanged, summary.quarantined, summary.skipped,
            dict(summary.reasons), dict(summary.actions), summary.duplicates)


def test_threads_release_what_processes_release(tmp_path, inp):
    local = run(config(tmp_path, inp, "local"), LocalExecutor(2))
    threads = run(config(tmp_path, inp, "thread"), ThreadExecutor(3))
    assert counts(threads) == counts(local)
    assert local.written > 3 and local.quarantined >= 1 and local.skipped >= 1 and local.unchanged == 1
    assert tree(tmp_path / "thread") == tree(tmp_path / "local")
    assert tree(tmp_path / "thread-maps") == tree(tmp_path / "local-maps")
    assert not list((tmp_path / "thread-ws" / "tmp").iterdir())  # no temporary left behind


def test_threads_resume_and_number_patients_like_processes(tmp_path, inp):
    sequential = dataclasses.replace(POLICY, sequential_patient_ids=True)
    local = run(config(tmp_path, inp, "local", policy=sequential), LocalExecutor(1))
    threads = run(config(tmp_path, inp, "thread", policy=sequential), ThreadExecutor(2))
    assert tree(tmp_path / "thread") == tree(tmp_path / "local")
    again = run(config(tmp_path, inp, "thread", policy=sequential), ThreadExecutor(2))
    assert again.written == 0 and again.unchanged == threads.written + threads.unchanged == local.written + 1 > 1


def test_cli_runner_thread(tmp_path, inp):
    key_file = tmp_path / "k.key"
    runner = CliRunner()
    assert runner.invoke(app, ["keygen", str(key_file)]).exit_code == 0
    by_thread = runner.invoke(app, ["deidentify", str(inp), str(tmp_path / "a"), "-k", str(key_file),
                                    "--burned-in", "pass", "--runner", "thread", "-j", "2"])
    by_engine = runner.invoke(app, ["deidentify", str(inp), str(tmp_path / "b"), "-k", str(key_file),
                                    "--burned-in", "pass", "--engine", "local"])
    assert by_thread.exit_code == by_engine.exit_code == 1  # broken.dcm is quarantined
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_the_thread_runner_is_small_and_uses_public_names_only():
    """A new runner is one file of fewer than 80 lines that imports no private name."""
    source = (Path(medveil.__file__).parent / "runner" / "thread.py").read_text()
    assert len(source.splitlines()) < 80
    imports = [line for line in source.splitlines() if line.startswith(("from medveil", "import medveil"))]
    assert imports and not any("import _" in line or ", _" in line for line in imports)
