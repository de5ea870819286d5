"""The run's own safety: locks, the pair journal, private places, memory budgets, dead workers.

Each test pins one guarantee of issue 13 at the level of the module that
gives it; the end-to-end reproductions of the reported defects live in
test_hostile.py.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

import medveil
from medveil.errors import KeyFileError, MedveilError, QuarantineError
from medveil.pipeline import deidentify_bytes
from medveil.pseudonym import Key, key_file_warnings, load_key
from medveil.runner import local as local_module
from medveil.runner.base import run
from medveil.runner.book import RunBook, RunConfig
from medveil.runner.limits import check_decode, check_inflated_size, parse_size
from medveil.runner.lock import RunLock, RunLockedError
from medveil.store.journal import PairJournal
from medveil.store.private import private_dir

KEY = Key(b"s" * 32)
BASIC = medveil.get_profile("basic")
CT = Path(get_testdata_file("CT_small.dcm"))


def config(tmp_path: Path, **kwargs) -> RunConfig:
    inp = tmp_path / "in"
    if not inp.exists():
        inp.mkdir()
        (inp / "ct.dcm").write_bytes(CT.read_bytes())
    return RunConfig(input=inp, output=tmp_path / "out", policy=BASIC, key=KEY,
                     workspace=tmp_path / "ws", **kwargs)


# -- locks ----------------------------------------------------------------------------------------


def test_a_second_lock_on_a_directory_is_refused_naming_the_holder(tmp_path):
    first, second = RunLock(), RunLock()
    first.add_directory(tmp_path, "output directory")
    try:
        with pytest.raises(RunLockedError) as info:
            second.add_directory(tmp_path, "output directory")
        assert f"process {os.getpid()}" in str(info.value) and str(tmp_path) in str(info.value)
    finally:
        first.release()
    second.add_directory(tmp_path, "output directory")  # free again once released
    second.release()


def test_a_run_is_refused_while_another_holds_its_output(tmp_path):
    cfg = config(tmp_path)
    holder = RunBook(replace(cfg, workspace=tmp_path / "other-ws")).open()
    try:
        with pytest.raises(RunLockedError, match="another medveil run"):
            run(cfg)
    finally:
        holder.close("finished")
    assert run(cfg).written == 1


# -- the pair journal ------------------------------------------------------------------------------


def test_journal_keeps_every_complete_line_and_ignores_a_torn_one(tmp_path):
    path = tmp_path / "pairs.journal"
    with PairJournal(path) as journal:
        journal.append({"1.2.3": "2.25.1"}, {"MRN1": "P1"})
        journal.append({"1.2.4": "2.25.2"}, {})
        journal.sync()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with open(path, "ab") as handle:
        handle.write(b'{"u":{"1.2.5":"2.25')  # a crash in the middle of a line
    assert list(PairJournal(path).entries()) == [({"1.2.3": "2.25.1"}, {"MRN1": "P1"}),
                                                 ({"1.2.4": "2.25.2"}, {})]


def test_mappings_cover_every_released_file_after_an_interrupted_run(tmp_path, monkeypatch):
    """Files released before an interruption are in the mapping files, and a rerun adds the rest."""
    inp = tmp_path / "in"
    inp.mkdir()
    ds = pydicom.dcmread(CT)
    uids = []
    for number in range(6):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.2.1125.{number + 1}"
        uids.append(ds.SOPInstanceUID)
        ds.save_as(inp / f"{number}.dcm")
    cfg = replace(config(tmp_path), mappings_dir=tmp_path / "maps")
    seen = []

    def stop_after_three(status):
        seen.append(status)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        run(cfg, progress=stop_after_three)
    summary = info.value.summary
    assert summary.interrupted and summary.written == 3
    mapped = (tmp_path / "maps" / "uid_mapping.csv").read_text()
    released = [p for p in cfg.output.rglob("*.dcm")]
    assert len(released) == 3
    for path in released:
        new_uid = pydicom.dcmread(path).SOPInstanceUID
        assert f",{new_uid}\n" in mapped
    again = run(cfg)
    assert again.written == 3 and again.unchanged == 3
    mapped = (tmp_path / "maps" / "uid_mapping.csv").read_text()
    assert all(uid in mapped for uid in uids)


# -- private places ----------------------------------------------------------------------------------


def test_an_open_workspace_is_made_private_and_the_user_told(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    ws.chmod(0o777)
    notices: list[str] = []
    private_dir(ws, "workspace", notices)
    assert stat.S_IMODE(ws.stat().st_mode) == 0o700
    assert notices and "0777" in notices[0]


def test_a_workspace_owned_by_another_user_is_refused_even_when_closed(tmp_path, monkeypatch):
    """Its owner could read the quarantine and the audit store whatever its mode says (docs/security.md)."""
    ws = tmp_path / "ws"
    ws.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(ws, 65534, 65534)
    else:  # not root: play another user by changing who we are
        monkeypatch.setattr(os, "geteuid", lambda: os.stat(ws).st_uid + 1)
    with pytest.raises(MedveilError, match="belongs to another user") as info:
        run(config(tmp_path))
    assert "ct.dcm" not in str(info.value)
    assert list(ws.iterdir()) == [] and not list((tmp_path / "out").rglob("*.dcm"))


def test_quarantine_copies_are_private_whatever_the_umask(tmp_path):
    bad = tmp_path / "in" / "cut.dcm"
    bad.parent.mkdir()
    bad.write_bytes(CT.read_bytes()[:3000])
    old = os.umask(0)
    try:
        summary = run(config(tmp_path))
    finally:
        os.umask(old)
    assert summary.quarantined == 1
    for path in (tmp_path / "ws" / "quarantine").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ws").stat().st_mode) == 0o700


def test_quarantine_copies_have_a_size_cap(tmp_path):
    bad = tmp_path / "in" / "cut.dcm"
    bad.parent.mkdir()
    bad.write_bytes(CT.read_bytes()[:3000])
    summary = run(config(tmp_path, quarantine_limit=1000))
    assert summary.quarantined == 1
    quarantine = tmp_path / "ws" / "quarantine"
    assert not list(quarantine.glob("*.dcm"))
    (reason,) = quarantine.glob("*.reason.txt")
    text = reason.read_text()
    assert "not copied" in text and "input sha256: " in text and "unknown" not in text


# -- keys ---------------------------------------------------------------------------------------------


def test_an_all_zero_key_is_refused(tmp_path):
    path = tmp_path / "zero.key"
    path.write_text("medveil-key-v1\n" + "00" * 32 + "\n")
    with pytest.raises(KeyFileError, match="all zeros"):
        load_key(path)


def test_a_world_readable_key_loads_with_a_warning(tmp_path):
    path = tmp_path / "k.key"
    medveil.generate_key_file(path)
    assert key_file_warnings(path) == []
    path.chmod(0o644)
    load_key(path)
    (warning,) = key_file_warnings(path)
    assert "chmod 600" in warning


# -- memory budget -------------------------------------------------------------------------------------


def test_sizes_parse():
    assert parse_size("512M") == 512 << 20 and parse_size("2G") == 2 << 30 and parse_size("1000") == 1000
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    with pytest.raises(ValueError):
        parse_size("lots")


def _deflated_bomb(inflated_bytes: int) -> bytes:
    ds = pydicom.dcmread(CT)
    ds.add_new(0x00291010, "OB", bytes(inflated_bytes))
    ds.add_new(0x00290010, "LO", "ACME")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_deflate_bomb_is_refused_before_it_is_inflated():
    data = _deflated_bomb(64 << 20)
    assert len(data) < 1 << 20
    out, record = deidentify_bytes(data, BASIC, KEY, memory_budget=64 << 20)
    assert record.status == "quarantined" and "memory budget" in record.reason
    out, record = deidentify_bytes(data, BASIC, KEY, memory_budget=1 << 30)
    assert record.status == "written"


def test_inflated_size_is_measured_without_keeping_it():
    payload = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = payload.compress(bytes(10 << 20)) + payload.flush()
    check_inflated_size(deflated, 64 << 20)  # 10 MB inflated fits
    with pytest.raises(QuarantineError):
        check_inflated_size(deflated, 40 << 20)


def test_a_compressed_frame_claiming_more_than_rows_and_columns_is_not_decoded():
    ds = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    check_decode(ds, 1 << 30)
    data = bytearray(ds.PixelData)
    siz = data.find(b"\xff\x4f\xff\x51")
    struct.pack_into(">II", data, siz + 8, 60000, 60000)  # Xsiz, Ysiz
    ds.PixelData = bytes(data)
    with pytest.raises(QuarantineError, match="larger image than Rows x Columns"):
        check_decode(ds, 1 << 30)
    with pytest.raises(QuarantineError, match="memory budget"):
        check_decode(pydicom.dcmread(get_testdata_file("JPEG2000.dcm")), 1 << 10)


def test_a_file_over_the_budget_is_quarantined_by_the_runner(tmp_path):
    summary = run(config(tmp_path, memory_budget=4096))
    assert summary.quarantined == 1
    assert "memory budget" in summary.quarantined_inputs[0][1]


# -- dead workers -------------------------------------------------------------------------------------


def _killing_process(job, *args, **kwargs):
    if job.path.endswith("kill.dcm"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_process(job, *args, **kwargs)


_real_process = local_module.process


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_costs_its_file_only(tmp_path, monkeypatch, workers):
    inp = tmp_path / "in"
    inp.mkdir()
    ds = pydicom.dcmread(CT)
    for name in ("a.dcm", "b.dcm", "kill.dcm", "c.dcm", "d.dcm"):
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".1"
        ds.save_as(inp / name)
    monkeypatch.setattr(local_module, "process", _killing_process)
    summary = run(config(tmp_path, workers=workers))
    assert summary.written == 4 and summary.quarantined == 1
    (path, reason), = summary.quarantined_inputs
    assert path == "kill.dcm" and "worker died" in reason and "signal 9" in reason


def test_medveil_error_texts_name_no_value():
    with pytest.raises(MedveilError) as info:
        check_inflated_size(zlib.compress(b"x" * 100)[2:-4], 10)
    assert "x" * 5 not in str(info.value)


# -- resume, OUTPUT, names -----------------------------------------------------------------------------


def test_resume_reprocesses_when_the_settings_changed(tmp_path):
    cfg = config(tmp_path)
    assert run(cfg).written == 1
    again = run(cfg)
    assert again.unchanged == 1 and not again.reprocessed
    tcia = run(replace(cfg, policy=medveil.get_profile("tcia"), force=True))
    assert tcia.unchanged == 0 and tcia.written + tcia.quarantined == 1
    assert sum(tcia.reprocessed.values()) == 1 and "settings changed" in next(iter(tcia.reprocessed))


def test_resume_reprocesses_files_whose_pairs_were_never_journaled(tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    with_maps = run(replace(cfg, mappings_dir=tmp_path / "maps"))
    assert with_maps.unchanged == 1 and with_maps.written == 0  # same bytes, now journaled
    assert "no mapping pairs" in next(iter(with_maps.reprocessed))
    assert (tmp_path / "maps" / "uid_mapping.csv").read_text().count("\n") > 1


def test_an_output_holding_foreign_files_is_refused_unless_forced(tmp_path):
    cfg = config(tmp_path)
    cfg.output.mkdir()
    (cfg.output / "notes.txt").write_text("a curator's notes")
    (cfg.output / "original.dcm").write_bytes(CT.read_bytes())
    with pytest.raises(MedveilError, match="no medveil run") as info:
        run(cfg)
    assert "notes.txt" in str(info.value) and "original.dcm" in str(info.value) and "--force" in str(info.value)
    assert run(replace(cfg, force=True)).written == 1


def test_a_folder_link_in_output_is_never_written_through(tmp_path):
    """--force writes beside foreign files, not through them: a link where a release
    folder goes (planted, or a folder a curator moved away and linked back) led the
    output out of OUTPUT; the file is quarantined instead and nothing lands outside."""
    cfg = config(tmp_path)
    assert run(cfg).written == 1
    (folder,) = [p for p in cfg.output.iterdir() if p.is_dir()]
    elsewhere = tmp_path / "elsewhere"
    folder.rename(elsewhere)
    folder.symlink_to(elsewhere, target_is_directory=True)
    for released in elsewhere.rglob("*.dcm"):
        released.unlink()
    summary = run(replace(cfg, force=True, resume=False))
    assert summary.written == 0 and summary.quarantined == 1
    assert not list(elsewhere.rglob("*.dcm"))


def test_files_medveil_wrote_with_another_workspace_are_not_foreign(tmp_path):
    cfg = config(tmp_path)
    run(cfg)
    assert run(replace(cfg, workspace=tmp_path / "fresh-ws")).unchanged == 1


def test_original_paths_with_undecodable_bytes_are_recorded_escaped(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    name = os.fsdecode(b"caf\xe9-\xff.dcm")
    (inp / name).write_bytes(CT.read_bytes())
    (inp / os.fsdecode(b"cut-\xfe.dcm")).write_bytes(CT.read_bytes()[:3000])
    summary = run(config(tmp_path, record_originals=True))
    assert (summary.written, summary.quarantined) == (1, 1)
    assert summary.quarantined_inputs[0][0] == "cut-\\xfe.dcm"
    (reason,) = (tmp_path / "ws" / "quarantine").glob("*.reason.txt")
    assert "cut-\\xfe.dcm" in reason.read_text(encoding="utf-8")
    import sqlite3

    with sqlite3.connect(tmp_path / "ws" / "audit.sqlite") as db:
        paths = sorted(row[0] for row in db.execute("SELECT original_path FROM files"))
    assert paths[0].endswith("caf\\xe9-\\xff.dcm") and paths[1].endswith("cut-\\xfe.dcm")


def test_duplicate_inputs_are_named_as_duplicates(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.dcm").write_bytes(CT.read_bytes())
    (inp / "b.dcm").write_bytes(CT.read_bytes())
    summary = run(config(tmp_path))
    assert summary.written == 1 and summary.unchanged == 1
    assert summary.duplicates == [("b.dcm", "a.dcm")]


def test_non_regular_files_and_links_out_of_input_are_skipped_never_read(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "ct.dcm").write_bytes(CT.read_bytes())
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(CT.read_bytes())
    (inp / "zero.dcm").symlink_to("/dev/zero")
    (inp / "out.dcm").symlink_to(outside)
    (inp / "inside.dcm").symlink_to(inp / "ct.dcm")
    os.mkfifo(inp / "pipe.dcm")
    key = tmp_path / "k.key"
    medveil.generate_key_file(key)
    (inp / "key.dcm").symlink_to(key)
    summary = run(config(tmp_path, protected=(key,)))
    skipped = dict(summary.skipped_inputs)
    assert set(skipped) == {"zero.dcm", "out.dcm", "pipe.dcm", "key.dcm"}
    assert "not a regular file" in skipped["pipe.dcm"] and "outside the input" in skipped["out.dcm"]
    assert summary.written == 1 and summary.unchanged == 1 and summary.quarantined == 0
    assert not (tmp_path / "ws" / "quarantine").exists() or not list((tmp_path / "ws" / "quarantine").iterdir())
    followed = run(replace(config(tmp_path, protected=(key,), follow_symlinks=True), workspace=tmp_path / "ws2"))
    assert "out.dcm" not in dict(followed.skipped_inputs) and "key.dcm" in dict(followed.skipped_inputs)
    assert "key file" in dict(followed.skipped_inputs)["key.dcm"]


def test_a_hard_link_to_the_key_file_inside_input_is_skipped_as_the_key(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    key = tmp_path / "k.key"
    medveil.generate_key_file(key)
    os.link(key, inp / "copy.dcm")
    summary = run(config(tmp_path, protected=(key,)))
    assert "key file" in dict(summary.skipped_inputs)["copy.dcm"]


def _released_relpath(tmp_path):
    """Where the test input's output goes (a throw-away run of the same input and key)."""
    probe = run(config(tmp_path / "probe"))
    assert probe.written == 1
    (path,) = (tmp_path / "probe" / "out").rglob("*.dcm")
    return path.relative_to(tmp_path / "probe" / "out")


def test_an_output_folder_linking_out_of_the_tree_receives_nothing(tmp_path):
    """With --force (or a link made after the check) a release went wherever a folder link of OUTPUT led."""
    (tmp_path / "probe").mkdir()
    relpath = _released_relpath(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cfg = config(tmp_path, force=True)
    cfg.output.mkdir()
    (cfg.output / relpath.parts[0]).symlink_to(elsewhere)
    summary = run(cfg)
    assert summary.written == 0 and summary.quarantined == 1
    assert list(elsewhere.iterdir()) == []


def test_local_location_writes_never_follow_a_planted_link_or_leave_the_tree(tmp_path):
    from medveil.runner.locations import Location, LocationError
    from medveil.store.private import TMP_PREFIX

    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "a" / f"{TMP_PREFIX}b.dcm-{os.getpid()}").symlink_to(victim)  # the old temporary's name
    Location(out).write("a/b.dcm", b"released")
    assert victim.read_text() == "keep me"
    assert not (out / "a" / "b.dcm").is_symlink() and (out / "a" / "b.dcm").read_bytes() == b"released"
    (out / "c").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(LocationError, match="symbolic link"):
        Location(out).write("c/d/e.dcm", b"released")
    assert not (tmp_path / "elsewhere").exists()
    os.mkfifo(out / "a" / "fifo.dcm")  # an output name taken by a FIFO: not opened, replaced
    assert Location(out).sha256(str(out / "a" / "fifo.dcm")) is None

    # a delete reaches the file the way the write did: never through a link, never outside the tree
    elsewhere = tmp_path / "elsewhere2"
    elsewhere.mkdir()
    (elsewhere / "x.dcm").write_text("not ours")
    (out / "g").symlink_to(elsewhere, target_is_directory=True)
    Location(out).delete("g/x.dcm")
    assert (elsewhere / "x.dcm").read_text() == "not ours"
    Location(out).delete("a/b.dcm")
    Location(out).delete("nowhere/b.dcm")  # nothing there: nothing to do, and no folder made
    assert not (out / "nowhere").exists()
    assert not (out / "a" / "b.dcm").exists()


def test_zero_padding_is_not_parsed_element_by_element_and_changes_nothing():
    """8 zero bytes read as one empty element: 10 MB of padding used to be 1.3 million elements."""
    data = CT.read_bytes()
    plain, _ = deidentify_bytes(data, BASIC, KEY)
    padded, record = deidentify_bytes(data + bytes(10 << 20), BASIC, KEY)
    assert record.status == "written" and padded == plain


def test_text_too_long_to_clean_falls_back_to_the_basic_action():
    ds = pydicom.dcmread(CT)
    ds.ImageComments = "CHEST " * 20000  # 120 k characters (implicit VR: no 64 kB length limit)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    out, record = deidentify_bytes(buffer.getvalue(), medveil.get_profile("tcia"), KEY)
    released = pydicom.dcmread(io.BytesIO(out)) if record.status == "written" else None
    assert released is not None and "ImageComments" not in released
    assert ("text-too-long-to-clean", "ImageComments") in record.events


def test_a_kept_value_hiding_binary_bytes_is_removed_and_the_file_released():
    """Smallest unit: the attribute goes (with whatever it swallowed), not the file."""
    from medveil.policy import Option

    ds = pydicom.dcmread(CT)
    ds.StudyDescription = "CT HEAD\x08\x00\x80\x00LO\x06\x00GENRL"  # a header inside the value
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    tcia = medveil.get_profile("tcia")
    tcia = replace(tcia, options=tcia.options - {Option.CLEAN_PIXEL_DATA})
    out, record = deidentify_bytes(buffer.getvalue(), tcia, KEY)
    assert record.status == "written"
    assert "StudyDescription" not in pydicom.dcmread(io.BytesIO(out))
    repairs = [detail for category, detail in record.events if category == "repair"]
    assert repairs == ['{"action": "removed", "attribute": "StudyDescription", '
                       '"why": "binary bytes in a text value (may hide other elements)"}']
    assert b"GENRL" not in out


def test_a_required_attribute_hiding_binary_bytes_quarantines_the_file():
    ds = pydicom.dcmread(CT)
    ds.Modality = "CT\x01\x02\x03"  # binary, but no elements to read back
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    _, record = deidentify_bytes(buffer.getvalue(), BASIC, KEY)
    assert record.status == "quarantined" and record.reason.startswith("Modality: binary bytes")
