"""The MIDI benchmark's cheap parts: result parsing, table formatting, the driver loop.

Creating the peers' virtual environments needs the package index and
minutes, so it is left to ``make bench-midi``; here the driver loop runs
under this interpreter with a stand-in peer, which checks what matters for
scoring (outputs mirror the input's relative paths, a failing file is
counted and the batch goes on) without any peer installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import midi_bench  # noqa: E402
from peers import (  # noqa: E402
    PEER_NAMES,
    RESULT_MARKER,
    Peer,
    PeerError,
    build_driver,
    get_peer,
    parse_driver_output,
    run_peer,
    short_reason,
)
from peers.venvs import STAMP, ensure_venv, venv_python  # noqa: E402

SUMMARY = {
    "headline": "instance", "score": 0.9, "weighted": 0.95,
    "instance": {"score": 0.9, "passed": 9, "failed": 1, "errored": 0, "total": 10, "weighted": 0.95,
                 "actions": {"uid_changed": {"score": 1.0, "passed": 4, "failed": 0, "errored": 0},
                             "text_removed": {"score": 0.8333, "passed": 5, "failed": 1, "errored": 0},
                             "zz_new_action": {"score": None, "passed": 0, "failed": 0, "errored": 0}}},
    "series": {"score": 0.5, "passed": 1, "failed": 1, "errored": 0, "actions": {}},
    "missing_instances": 0,
}


def test_every_peer_has_a_driver_that_compiles():
    for name in PEER_NAMES:
        peer = get_peer(name)
        assert peer.name == name and "==" in peer.requirement
        source = build_driver(peer)
        compile(source, f"{name}-driver.py", "exec")
        assert "def setup" in source and "def process" in source


def test_unknown_peer_is_named():
    with pytest.raises(PeerError, match="known: dicognito"):
        get_peer("nope")


def test_parse_driver_output_takes_the_last_marked_line():
    stdout = "chatter\n" + RESULT_MARKER + '{"total": 1}\nmore {"x"}\n' + RESULT_MARKER + '{"total": 2}\n'
    assert parse_driver_output(stdout) == {"total": 2}
    with pytest.raises(PeerError):
        parse_driver_output("nothing here\n")


def test_short_reason():
    assert short_reason("Traceback\n  ...\nValueError: bad\n\n") == "ValueError: bad"
    assert short_reason("") == "no output"
    long = short_reason("x" * 200, limit=20)
    assert len(long) == 20 and long.endswith("…")


def test_driver_loop_mirrors_paths_and_counts_errors(tmp_path):
    source = tmp_path / "in"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "one.dcm").write_text("ok")
    (source / "two.dcm").write_text("ok")
    (source / "bad.dcm").write_text("bad")
    (source / "skip.txt").write_text("skip")
    stand_in = Peer("copy", "copy==1", "copy", default="copies", driver='''
import shutil

def setup():
    return "state"

def process(state, src, dst):
    assert state == "state"
    if src.read_text() == "bad":
        raise ValueError("bad file")
    if src.suffix == ".txt":
        raise Skipped("not DICOM")
    shutil.copyfile(src, dst)
''')
    result = run_peer(stand_in, Path(sys.executable), source, tmp_path / "out", 60, tmp_path / "work")
    assert result.failure is None
    assert (result.total, result.written) == (4, 2)
    assert result.errors == {"ValueError": 1, "skipped: not DICOM": 1}
    assert (tmp_path / "out" / "a" / "b" / "one.dcm").read_text() == "ok"
    assert (tmp_path / "out" / "two.dcm").is_file()
    assert "bad.dcm" in (tmp_path / "work" / "peer.log").read_text()


def test_driver_that_crashes_is_a_failure_not_an_exception(tmp_path):
    (tmp_path / "in").mkdir()
    broken = Peer("broken", "broken==1", "broken", default="-", driver="import no_such_module_here\n")
    result = run_peer(broken, Path(sys.executable), tmp_path / "in", tmp_path / "out", 60, tmp_path / "w")
    assert result.failure and "no_such_module_here" in result.failure


def test_existing_venv_with_matching_stamp_is_reused(tmp_path):
    peer = get_peer("dicognito")
    venv = tmp_path / peer.name
    venv_python(venv).parent.mkdir(parents=True)
    venv_python(venv).write_text("")
    (venv / STAMP).write_text(json.dumps({"requirement": peer.requirement, "version": "9.9",
                                          "pydicom": "3.0.0"}))
    ready = ensure_venv(peer, tmp_path)
    assert (ready.version, ready.pydicom) == ("9.9", "3.0.0")


def test_row_from_summary_reads_validate_json():
    row = midi_bench.row_from_summary(midi_bench.Row("medveil", "0.1.0"), SUMMARY)
    assert (row.instance, row.series, row.weighted) == (0.9, 0.5, 0.95)
    assert row.actions["text_removed"] == 0.8333


def test_parse_json_stdout_skips_leading_noise():
    stdout = "discrepancies: 3 rows\n" + json.dumps(SUMMARY, indent=2) + "\n"
    assert midi_bench.parse_json_stdout(stdout)["weighted"] == 0.95
    with pytest.raises(ValueError):
        midi_bench.parse_json_stdout("no json")


def test_format_table():
    ok = midi_bench.row_from_summary(midi_bench.Row("medveil", "0.1.0", written=9, total=10, seconds=1.234,
                                                    quarantined=1), SUMMARY)
    failed = midi_bench.Row("deid", "0.4.13", total=10, failure="pip install: no | network")
    lines = midi_bench.format_table([ok, failed]).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    # known actions in the validator's order, unknown ones after them
    assert header.index("text_removed") < header.index("uid_changed") < header.index("zz_new_action")
    assert lines[1].count("---") == len(header)
    cells = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert cells[:5] == ["medveil", "0.1.0", "90.0", "50.0", "95.0"]
    assert cells[header.index("zz_new_action")] == "-"
    assert cells[-3:] == ["9/10", "1", "1.2"]
    failed_cells = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert len(failed_cells) == len(header)
    assert failed_cells[2] == "failed: pip install: no / network"
    assert failed_cells[-3:] == ["-/10", "-", "-"]
