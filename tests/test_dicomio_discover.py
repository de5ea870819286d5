"""Input discovery: classification of each file and a deterministic walk."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medveil.dicomio import discover as discover_module
from medveil.dicomio.discover import Discovered, DiscoveryError, classify, discover

CT = Path(get_testdata_file("CT_small.dcm"))
MR = Path(get_testdata_file("MR_small.dcm"))
DICOMDIR = Path(get_testdata_file("DICOMDIR"))


def _raw_implicit(path: Path) -> None:
    """The CT dataset written without preamble, prefix or file meta."""
    ds = pydicom.dcmread(CT)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)


def _raw_explicit(path: Path) -> None:
    """The CT file with preamble, prefix and meta group sliced off."""
    data = CT.read_bytes()
    assert data[128:132] == b"DICM"
    (group_length,) = struct.unpack("<I", data[140:144])  # (0002,0000) UL value
    path.write_bytes(data[144 + group_length:])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    shutil.copyfile(CT, root / "b_ct.dcm")
    _raw_implicit(root / "c_raw_implicit")
    _raw_explicit(root / "c_raw_explicit.dcm")
    (root / "d_no_preamble.dcm").write_bytes(CT.read_bytes()[128:])
    (root / "e_notes.txt").write_text("Patient DOE^JOHN, see attached\n")
    (root / "f_empty.dcm").write_bytes(b"")
    # Passes the cheap header test (group 0010, implicit length) but holds no
    # group 0008 element, so the real parse must reject it.
    (root / "g_fake.bin").write_bytes(b"\x10\x00\x10\x00" + struct.pack("<I", 4) + b"ABCD" * 8)
    (root / ".medveil-tmp-7-123").write_bytes(CT.read_bytes())
    media = root / "A_media"
    media.mkdir()
    shutil.copyfile(DICOMDIR, media / "DICOMDIR")
    shutil.copyfile(DICOMDIR, media / "index.bin")  # recognised by its SOP class, not name
    nested = root / "z_nested" / "deeper"
    nested.mkdir(parents=True)
    shutil.copyfile(MR, nested / "mr.dcm")
    hidden = root / ".git"
    hidden.mkdir()
    shutil.copyfile(MR, hidden / "mr_hidden")
    return root


def _rel(items: list[Discovered], root: Path) -> list[tuple[str, str]]:
    return [(item.path.relative_to(root).as_posix(), item.kind) for item in items]


def test_kinds_and_deterministic_order(tree: Path) -> None:
    found = list(discover(tree))
    assert _rel(found, tree) == [
        (".git/mr_hidden", "dicom"),
        ("A_media/DICOMDIR", "dicomdir"),
        ("A_media/index.bin", "dicomdir"),
        ("b_ct.dcm", "dicom"),
        ("c_raw_explicit.dcm", "dicom"),
        ("c_raw_implicit", "dicom"),
        ("d_no_preamble.dcm", "dicom"),
        ("e_notes.txt", "not-dicom"),
        ("f_empty.dcm", "not-dicom"),
        ("g_fake.bin", "not-dicom"),
        ("z_nested/deeper/mr.dcm", "dicom"),
    ]
    by_name = {item.path.name: item for item in found}
    assert by_name["f_empty.dcm"].reason == "empty file"
    assert by_name["e_notes.txt"].reason == discover_module.REASON_NOT_RECOGNISED
    assert by_name["g_fake.bin"].reason == discover_module.REASON_NOT_RECOGNISED
    assert all(item.reason is None for item in found if item.kind in ("dicom", "dicomdir"))
    assert list(discover(tree)) == found


def test_raw_files_are_really_headerless(tree: Path) -> None:
    for name in ("c_raw_implicit", "c_raw_explicit.dcm"):
        data = (tree / name).read_bytes()
        assert b"DICM" not in data[:132]
        assert data[:2] == b"\x08\x00"
        ds = pydicom.dcmread(tree / name, force=True)
        assert ds.SOPInstanceUID == pydicom.dcmread(CT).SOPInstanceUID


def test_root_may_be_a_single_file(tree: Path) -> None:
    assert list(discover(tree / "b_ct.dcm")) == [Discovered(tree / "b_ct.dcm", "dicom", None,
                                                            (tree / "b_ct.dcm").resolve())]
    assert list(discover(str(tree / "e_notes.txt")))[0].kind == "not-dicom"


def test_missing_root_raises_naming_the_path(tmp_path: Path) -> None:
    """The path is the user's own (a terminal message, never the audit store): name it."""
    missing = tmp_path / "DOE_JOHN"
    with pytest.raises(DiscoveryError) as info:
        list(discover(missing))
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


def test_part10_files_need_no_full_parse(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("dcmread must not be needed for Part 10 files")

    monkeypatch.setattr(discover_module.pydicom, "dcmread", forbidden)
    for name in ("b_ct.dcm", "d_no_preamble.dcm", "A_media/DICOMDIR", "e_notes.txt",
                 "f_empty.dcm"):
        assert classify(tree / name).kind in ("dicom", "dicomdir", "not-dicom")


def test_dicomdir_name_alone_is_not_enough(tmp_path: Path) -> None:
    fake = tmp_path / "DICOMDIR"
    fake.write_text("this is not a directory record\n")
    assert classify(fake).kind == "not-dicom"
    real_ct = tmp_path / "dicomdir_named_ct"
    shutil.copyfile(CT, real_ct)
    assert classify(real_ct).kind == "dicom"


def test_broken_symlink_is_unreadable_and_reason_has_no_path(tmp_path: Path) -> None:
    link = tmp_path / "DOE_JOHN.dcm"
    link.symlink_to(tmp_path / "gone")
    found = list(discover(tmp_path))
    assert [(d.path.name, d.kind) for d in found] == [("DOE_JOHN.dcm", "unreadable")]
    assert found[0].reason and "DOE_JOHN" not in found[0].reason
    assert str(tmp_path) not in found[0].reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked.dcm"
    shutil.copyfile(CT, locked)
    locked.chmod(0)
    try:
        assert classify(locked) == Discovered(locked, "unreadable", "permission denied")
    finally:
        locked.chmod(0o600)


def test_unreadable_via_open_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "DOE_JOHN.dcm"
    shutil.copyfile(CT, target)

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(discover_module.os, "open", deny)
    result = classify(target)
    assert result == Discovered(target, "unreadable", "permission denied")


def test_directory_symlinks_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    shutil.copyfile(CT, root / "real" / "ct.dcm")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "link.dcm").symlink_to(root / "real" / "ct.dcm")
    found = [(d.path.relative_to(root).as_posix(), d.kind) for d in discover(root)]
    assert found == [("link.dcm", "dicom"), ("loop", "skipped"), ("real/ct.dcm", "dicom")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    found = classify(fifo)
    assert (found.kind, found.real) == ("skipped", None) and "not a regular file" in found.reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_put_in_place_after_the_stat_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check and the open are two steps: a FIFO swapped in between used to block the walk for ever."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    regular = tmp_path / "regular.dcm"
    shutil.copyfile(CT, regular)
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):  # what the stat saw before the swap
        return real_stat(regular if Path(path) == fifo else path, *args, **kwargs)

    monkeypatch.setattr(discover_module.os, "stat", stale_stat)
    found = classify(fifo)
    assert (found.kind, found.real) == ("skipped", None) and "not a regular file" in found.reason
