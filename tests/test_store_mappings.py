"""Mapping files: format, merging, one-to-one pairing, private directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from medveil.errors import MedveilError
from medveil.store.mappings import (
    MappingCollisionError,
    MappingFileError,
    MappingTable,
    load,
    write_mappings,
)

UID_A, UID_B, UID_C = "1.2.3.4", "1.2.3.10", "1.2.3.5"
NEW_A, NEW_B, NEW_C = "2.25.1", "2.25.2", "2.25.3"


def test_add_and_items_sorted_by_old() -> None:
    table = MappingTable("uid")
    table.add(UID_C, NEW_C)
    table.add(UID_A, NEW_A)
    table.update([(UID_B, NEW_B)])
    assert len(table) == 3
    assert table.items() == sorted([(UID_A, NEW_A), (UID_B, NEW_B), (UID_C, NEW_C)])
    assert table.get(UID_A) == NEW_A and UID_B in table


def test_repeating_a_pair_is_a_no_op() -> None:
    table = MappingTable()
    table.add(UID_A, NEW_A)
    table.add(UID_A, NEW_A)
    assert len(table) == 1


def test_same_new_for_two_olds_is_a_collision_without_values() -> None:
    table = MappingTable("uid")
    table.add(UID_A, NEW_A)
    with pytest.raises(MappingCollisionError) as info:
        table.add(UID_B, NEW_A)
    assert isinstance(info.value, MedveilError)
    message = str(info.value)
    assert "same pseudonym" in message
    for value in (UID_A, UID_B, NEW_A):
        assert value not in message


def test_same_old_to_two_news_is_a_collision() -> None:
    table = MappingTable("patid")
    table.add("PAT-1", "ANON-1")
    with pytest.raises(MappingCollisionError) as info:
        table.add("PAT-1", "ANON-2")
    assert "PAT-1" not in str(info.value) and "ANON" not in str(info.value)
    assert "patient ID" in str(info.value)


def test_update_is_all_or_nothing() -> None:
    table = MappingTable()
    table.add(UID_A, NEW_A)
    with pytest.raises(MappingCollisionError):
        table.update([(UID_B, NEW_B), (UID_C, NEW_B)])
    assert table.items() == [(UID_A, NEW_A)]


def test_update_accepts_a_mapping() -> None:
    table = MappingTable()
    table.update({UID_A: NEW_A, UID_B: NEW_B})
    assert len(table) == 2


def test_write_header_and_line_endings_exact(tmp_path: Path) -> None:
    table = MappingTable()
    table.update([(UID_C, NEW_C), (UID_A, NEW_A)])
    path = tmp_path / "uid_mapping.csv"
    table.write(path)
    assert path.read_bytes() == (
        b"id_old,id_new\n"
        b"1.2.3.4,2.25.1\n"
        b"1.2.3.5,2.25.3\n"
    )


def test_empty_table_writes_header_only(tmp_path: Path) -> None:
    path = tmp_path / "uid_mapping.csv"
    MappingTable().write(path)
    assert path.read_bytes() == b"id_old,id_new\n"
    assert len(load(path)) == 0


def test_round_trip_including_awkward_values(tmp_path: Path) -> None:
    table = MappingTable("patid")
    pairs = [("DOE, JOHN", "ANON1"), ('quote"inside', "ANON2"), ("line\nbreak", "ANON3"),
             ("ünïcode", "ANON4")]
    table.update(pairs)
    path = tmp_path / "patid_mapping.csv"
    table.write(path)
    loaded = MappingTable.load(path)
    assert loaded.kind == "patid"
    assert loaded.items() == sorted(pairs)


def test_write_merges_and_is_byte_identical_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "uid_mapping.csv"
    first = MappingTable()
    first.update([(UID_A, NEW_A), (UID_C, NEW_C)])
    first.write(path)
    second = MappingTable()
    second.update([(UID_B, NEW_B), (UID_A, NEW_A)])
    merged = second.write(path)
    assert len(merged) == 3
    content = path.read_bytes()
    assert load(path).items() == sorted([(UID_A, NEW_A), (UID_B, NEW_B), (UID_C, NEW_C)])

    second.write(path)
    first.write(path)
    merged.write(path)
    assert path.read_bytes() == content


def test_write_collision_with_file_leaves_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "uid_mapping.csv"
    table = MappingTable()
    table.add(UID_A, NEW_A)
    table.write(path)
    before = path.read_bytes()
    clash = MappingTable()
    clash.add(UID_B, NEW_A)
    with pytest.raises(MappingCollisionError):
        clash.write(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["uid_mapping.csv"]  # no temp left


def test_load_rejects_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "uid_mapping.csv"
    path.write_text("old,new\n1.2,2.25.9\n")
    with pytest.raises(MappingFileError) as info:
        load(path)
    assert "1.2" not in str(info.value)


def test_load_rejects_bad_rows_and_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "uid_mapping.csv"
    path.write_text("id_old,id_new\n1.2,2.25.9,extra\n")
    with pytest.raises(MappingFileError):
        load(path)
    path.write_text("id_old,id_new\n1.2,2.25.9\n1.3,2.25.9\n")
    with pytest.raises(MappingCollisionError) as info:
        load(path)
    assert "2.25.9" not in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MappingFileError):
        load(tmp_path / "absent.csv")


def test_write_mappings_creates_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "private" / "mappings"
    old_umask = os.umask(0o022)
    try:
        uid_path, patid_path = write_mappings(directory, [(UID_A, NEW_A)], {"PAT-1": "ANON-1"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert uid_path == directory / "uid_mapping.csv"
    assert patid_path == directory / "patid_mapping.csv"
    assert uid_path.read_text() == "id_old,id_new\n1.2.3.4,2.25.1\n"
    assert patid_path.read_text() == "id_old,id_new\nPAT-1,ANON-1\n"
    assert stat.S_IMODE(uid_path.stat().st_mode) & 0o077 == 0


def test_write_mappings_accumulates_and_makes_an_open_directory_private(tmp_path: Path) -> None:
    directory = tmp_path / "maps"
    directory.mkdir()
    directory.chmod(0o750)
    notices: list[str] = []
    write_mappings(directory, [(UID_A, NEW_A)], [("P1", "A1")], notices)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert len(notices) == 1 and "0750" in notices[0] and "0700" in notices[0]
    write_mappings(directory, [(UID_B, NEW_B)], [], notices)
    assert len(notices) == 1  # already private: nothing more to say
    assert load(directory / "uid_mapping.csv").items() == sorted([(UID_A, NEW_A), (UID_B, NEW_B)])
    assert load(directory / "patid_mapping.csv").items() == [("P1", "A1")]


def test_write_mappings_collision_writes_neither_file(tmp_path: Path) -> None:
    write_mappings(tmp_path, [(UID_A, NEW_A)], [("P1", "A1")])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(MappingCollisionError):
        write_mappings(tmp_path, [(UID_B, NEW_B)], [("P2", "A1")])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
