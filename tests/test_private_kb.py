"""Private tag knowledge base: the generator, the packaged file and the lookups."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from collections import Counter

import pytest

from conftest import ROOT, shared_path
from medveil.policy.private_kb import (
    KB_SOURCE,
    STANDARD_SOURCE,
    PrivateKB,
    PrivateTagEntry,
    load_private_kb,
)

TOOL = ROOT / "tools" / "build_private_kb.py"
PACKAGED = ROOT / "src" / "medveil" / "policy" / "data" / "private_tags.json"
#: CSV lines (header = line 1) of the 2024-02-01 KB that have no disposition at all.
EMPTY_DISPOSITION_ROWS = [686, 752, 2470, 2701, 2702, 4368, *range(8320, 8329)]
KB_DATA_ROWS = 8787  # header + 8,787 records; the last line has no line end
FULL_TAG_LEAF = re.compile(r"(^|\])\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)$")


def _tool():
    spec = importlib.util.spec_from_file_location("build_private_kb", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kb():
    return load_private_kb()


# --- the generator -----------------------------------------------------------------------

@pytest.mark.shared
def test_generator_reproduces_the_packaged_file(tmp_path):
    source = shared_path("standard", "tcia_private_tag_kb.csv")
    out = tmp_path / "private_tags.json"
    run = subprocess.run([sys.executable, str(TOOL), str(source), "--out", str(out)],
                         check=True, capture_output=True, text=True)
    assert out.read_bytes() == PACKAGED.read_bytes()
    reported = [line for line in run.stdout.splitlines() if line.startswith("skipped row ")]
    assert reported == [f"skipped row {n}: empty disposition" for n in EMPTY_DISPOSITION_ROWS]


@pytest.mark.shared
def test_every_csv_row_is_accounted_for(kb):
    source = shared_path("standard", "tcia_private_tag_kb.csv")
    with source.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))[1:]
    assert len(records) == KB_DATA_ROWS
    meta = kb.metadata["kb"]
    assert meta["rows"] == KB_DATA_ROWS
    assert meta["entries"] + meta["excluded"] + meta["skipped"] == KB_DATA_ROWS
    excluded = kb.metadata["excluded"]
    assert sum(len(lines) for lines in excluded.values()) == meta["excluded"]
    # Excluded rows are well formed, just outside the table: "na" or a standard leaf.
    for line in excluded["disposition na (not applicable)"]:
        assert records[line - 2][3].strip() == "na"
    for line in excluded["standard attribute or private creator element as the leaf"]:
        assert FULL_TAG_LEAF.search(records[line - 2][0])


@pytest.mark.parametrize("signature, steps", [
    ('(0019,GEMS_ACQU_01",92)', [(0x0019, "GEMS_ACQU_01", 0x92)]),
    ('(0019,HOLOGIC, Inc.",05)', [(0x0019, "HOLOGIC, Inc.", 0x05)]),
    ('(0021,0021,1000",4f)', [(0x0021, "0021,1000", 0x4F)]),
    ("(0009,,02)", [(0x0009, "", 0x02)]),
    ('(0008,1084)[<0>](312f,"Ramsoft Diagnosis Datetime Identifier",10)',
     [(0x0008, None, 0x1084), (0x312F, "Ramsoft Diagnosis Datetime Identifier", 0x10)]),
    (('(0029,SIEMENS SYNGO ADVANCED PRESENTATION",02)[<0>](0029,"SIEMENS SYNGO ADVANCED '
      'PRESENTATION",a7)[<1>](0029,0010)'),
     [(0x0029, "SIEMENS SYNGO ADVANCED PRESENTATION", 0x02),
      (0x0029, "SIEMENS SYNGO ADVANCED PRESENTATION", 0xA7), (0x0029, None, 0x0010)]),
])
def test_signatures_with_the_csv_quirks_parse(signature, steps):
    parsed = _tool().parse_signature(signature)
    assert [(s.group, s.creator, s.element) for s in parsed] == steps


@pytest.mark.parametrize("signature", [
    '(0019,GEMS_ACQU_01",9)',  # one hex digit
    '(0018,GEMS_ACQU_01",92)',  # creator on an even group
    '(0008,1084)(0019,"X",10)',  # no sequence marker
    '(0008,1084)[<1>](0019,"X",10)',  # marker at the wrong depth
    '(0008,1084)[<0>]',
    '(0019,"GE"MS",92)',
    "0019,GEMS_ACQU_01,92",
])
def test_broken_signatures_are_reported(signature):
    tool = _tool()
    with pytest.raises(tool.RowError):
        tool.parse_signature(signature)


def test_broken_rows_are_skipped_with_a_reason():
    tool = _tool()
    text = ("element_sig_pattern,tag_name,vr,private_disposition\r\n"
            '"(0019,A"",10)",Good,LO, K\r\n'
            '"(0019,A"",11)",No disposition,LO,\r\n'
            '"(0019,A"",12)",Odd disposition,LO,x\r\n'
            '"(0019,A"",13)",Odd VR,ZZ,d\r\n'
            '"(0019,A"",14)",Too many,LO,d,extra\r\n'
            '"(0019,A"",1)",Bad signature,LO,d\r\n'
            '"(0019,A"",15)",Not applicable,LO,na\r\n')
    report = tool.Report()
    entries = tool.read_kb(text, report)
    assert [(e["offset"], e["disposition"]) for e in entries] == [(0x10, "k")]
    assert [line for line, _ in report.skipped] == [3, 4, 5, 6, 7]
    assert all(reason for _, reason in report.skipped)
    assert report.normalised == [(2, " K")]
    assert report.excluded == {"disposition na (not applicable)": [8]}


# --- the packaged file ---------------------------------------------------------------------

def test_packaged_file_loads_on_its_own(kb):
    assert PACKAGED.stat().st_size < 2_000_000
    assert kb.kb_date == "2024-02-01"
    assert kb.standard_edition == "2026d"
    sources = Counter(entry.source for entry in kb.entries)
    assert sources == {KB_SOURCE: kb.metadata["kb"]["entries"], STANDARD_SOURCE: 479}
    assert {entry.disposition for entry in kb.entries} == {"k", "d", "h", "o", "oi"}
    meta = kb.metadata["kb"]
    assert meta["entries"] + meta["excluded"] + meta["skipped"] == meta["rows"] == KB_DATA_ROWS
    assert load_private_kb() is kb  # cached


def test_skipped_rows_are_only_the_broken_ones(kb):
    assert [s.row for s in kb.skipped] == EMPTY_DISPOSITION_ROWS
    assert {s.reason for s in kb.skipped} == {"empty disposition"}
    assert kb.metadata["kb"]["skipped"] == len(EMPTY_DISPOSITION_ROWS) == 15


def test_known_entries(kb):
    entry = kb.lookup(0x0019, "GEMS_ACQU_01", 0x92)
    assert (entry.name, entry.disposition, entry.parents) == (
        "Slice Offset On Frequency Axis", "k", ())
    assert kb.disposition(0x0019, "GEMS_ACQU_01", 0x1092) == "k"
    assert kb.disposition(0x0019, "GEMS_ACQU_01", 0x92) == "k"
    assert kb.disposition(0x0009, "GEMS_IDEN_01", 0x1027) == "oi"  # Image Actual Date
    assert kb.disposition(0x0009, "FDMS 1.0", 0x1005) == "h"
    assert kb.disposition(0x0009, "GEMS_PETD_01", 0x1005) == "o"
    assert kb.disposition(0x0009, "GEMS_ACQU_01", 0x10FF) is None


def test_entries_under_a_sequence(kb):
    # Only listed inside Referenced Image Sequence inside Referenced Series Sequence.
    entry = kb.lookup(0x0009, "GEIIS_RA1000", 0x01)
    assert entry.parents == ("(0008,1115)", "(0008,1140)")
    assert entry.disposition == "k"
    # Listed at top level (keep) and inside sequences (some delete): top level wins.
    entry = kb.lookup(0x2001, "Philips Imaging DD 001", 0xC1)
    assert entry.parents == ()
    nested = [e for e in kb.matches(0x2001, "Philips Imaging DD 001", 0xC1) if e.parents]
    assert ("(2001,\"Philips Imaging DD 129\",00)", "(0008,1115)") in {e.parents for e in nested}
    assert "d" in {e.disposition for e in nested}


def test_creator_is_stripped_then_exact_then_case_insensitive(kb):
    assert kb.disposition(0x0019, "GEMS_ACQU_01 ", 0x92) == "k"
    assert kb.disposition(0x0019, "gems_acqu_01", 0x92) == "k"
    entries = (
        PrivateTagEntry(0x0009, "ACME", 0x10, "LO", "upper", "d", (), KB_SOURCE),
        PrivateTagEntry(0x0009, "acme", 0x10, "LO", "lower", "k", (), KB_SOURCE),
        PrivateTagEntry(0x0009, "ACME", 0x11, "LO", "nested", "d", ("(0008,1115)",), KB_SOURCE),
        PrivateTagEntry(0x0009, "ACME", 0x11, "LO", "top", "k", (), KB_SOURCE),
    )
    small = PrivateKB(entries=entries)
    assert small.lookup(0x0009, "acme", 0x10).name == "lower"
    assert small.lookup(0x0009, "ACME", 0x10).name == "upper"
    assert small.lookup(0x0009, "Acme", 0x10).name == "upper"  # fallback: first in order
    assert small.lookup(0x0009, "ACME", 0x11).name == "top"
    assert small.creators() == frozenset({"ACME", "acme"})


def test_unknown_creator_or_group(kb):
    assert kb.lookup(0x0019, "NO SUCH CREATOR", 0x92) is None
    assert kb.disposition(0x0019, "NO SUCH CREATOR", 0x1092) is None
    assert kb.disposition(0x0021, "GEMS_ACQU_01", 0x1092) is None
    assert kb.matches(0x0019, "NO SUCH CREATOR", 0x92) == ()


def test_several_vrs_resolve_to_the_most_protective(kb):
    # The KB keeps Batch Description as LO but deletes it when it arrives as UN.
    found = kb.matches(0x0009, "GEMS_PETD_01", 0x37)
    assert {(e.vr, e.disposition) for e in found} == {("LO", "k"), ("UN", "d")}
    assert kb.disposition(0x0009, "GEMS_PETD_01", 0x1037) == "d"


def test_creators_and_by_disposition(kb):
    creators = kb.creators()
    assert {"GEMS_ACQU_01", "HOLOGIC, Inc.", "Philips PET Private Group"} <= creators
    assert "" not in creators
    assert kb.by_disposition("oi") and all(e.disposition == "oi" for e in kb.by_disposition("oi"))
    assert sum(len(kb.by_disposition(d)) for d in ("k", "d", "h", "o", "oi")) == len(kb.entries)
    assert kb.by_disposition("na") == ()


# --- Table E.3.10-1 --------------------------------------------------------------------------

def test_safe_private_rows_are_present(kb):
    safe = [e for e in kb.entries if e.source == STANDARD_SOURCE]
    assert len(safe) == 479
    assert len({e.creator for e in safe}) == 20
    assert all(e.disposition == "k" and e.parents == () for e in safe)
    suv = kb.lookup(0x7053, "Philips PET Private Group", 0x00)
    assert (suv.source, suv.vr, suv.disposition) == (STANDARD_SOURCE, "DS", "k")
    assert suv.name.startswith("SUV Factor")
    assert kb.lookup(0x0019, "GEMS_ACQU_01", 0x23).source == STANDARD_SOURCE  # Table Speed
    assert kb.lookup(0x0119, "SIEMENS Ultrasound SC2000", 0x11).vr == ""  # table gives none


def test_the_standard_wins_where_the_kb_deletes(kb):
    # The KB deletes Linear Presentation Gl Trafo Shape Sub; E.3.10-1 lists it as safe.
    found = kb.matches(0x2001, "Philips Imaging DD 001", 0x67)
    assert {(e.source, e.disposition) for e in found} == {(STANDARD_SOURCE, "k"), (KB_SOURCE, "d")}
    assert kb.disposition(0x2001, "Philips Imaging DD 001", 0x1067) == "k"
    recorded = {d["tag"]: d for d in kb.metadata["disagreements"]}
    assert recorded['(2001,"Philips Imaging DD 001",67)'] == {
        "tag": '(2001,"Philips Imaging DD 001",67)', "kb": ["d"], "standard": "k"}
