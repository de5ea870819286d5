#!/usr/bin/env python3
"""Generate medveil's private tag knowledge base from TCIA's KB and PS3.15 Table E.3.10-1.

The Basic Profile removes every private attribute; the TCIA profile instead keeps, hashes or
shifts those that The Cancer Imaging Archive's curators have judged, one by one, in their
Private Tag Knowledge Base (2024-02-01).  This script reads that KB as published in CSV (see
../shared/README.md for its provenance), adds the rows of PS3.15 Table E.3.10-1 "Safe
Private Attributes" (transcribed in src/medveil/policy/data/safe_private_e3101.yaml), and
writes the data file ``src/medveil/policy/data/private_tags.json`` that ships in the package
and that ``medveil.policy.private_kb`` loads.

The CSV is not clean, so every row is parsed on its own and accounted for: it becomes an
entry, or is *excluded* (well formed but outside what the table can hold: disposition "na",
or a standard attribute nested in a private sequence), or is *skipped* (broken: no usable
disposition, a signature that does not parse, ...).  Skipped rows are printed and listed, by
CSV line number (the header is line 1), in the data file's metadata.

Quirks of the 2024-02-01 CSV, all handled here: a UTF-8 byte order mark and CRLF line ends;
the quote that opens the first private creator of a signature is missing
(``(0019,GEMS_ACQU_01",92)``) while nested ones keep both (``(0029,"X",10)``); creator names
contain commas (``HOLOGIC, Inc.``, ``0021,1000``); creator-less rows (``(0009,,02)``);
dispositions with stray spaces or capitals (`` k``, ``K``, ``D``); empty dispositions.

Usage: python tools/build_private_kb.py [CSV] [--safe YAML] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "medveil" / "policy" / "data"
DEFAULT_CSV = ROOT.parent / "shared" / "standard" / "tcia_private_tag_kb.csv"
DEFAULT_SAFE = DATA / "safe_private_e3101.yaml"
DEFAULT_OUT = DATA / "private_tags.json"

KB_SOURCE = "tcia-kb-2024-02-01"
KB_NAME = "TCIA Private Tag Knowledge Base (TCIAPrivateTagKB-02-01-2024-formatted.csv)"
KB_DATE = "2024-02-01"
STANDARD_SOURCE = "ps3.15-e.3.10-1"
COLUMNS = ["element_sig_pattern", "tag_name", "vr", "private_disposition"]
DISPOSITIONS = ("k", "d", "h", "o", "oi")
NOT_APPLICABLE = "na"
#: Order of entries that share a tag and sequence path: the standard's keep first (it wins
#: where it disagrees), then the KB's most protective disposition, so that a reader taking
#: the first match never keeps what some KB row deletes.
RANK = {STANDARD_SOURCE: 0, "d": 1, "h": 2, "oi": 3, "o": 4, "k": 5}
FIELDS = ["group", "creator", "offset", "vr", "name", "disposition", "parents", "source"]
VRS = frozenset({
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
    "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
    "UR", "US", "UT", "UV"})

# One step of a signature.  A private step ends with `",hh)` and its creator may hold commas,
# so the creator is matched lazily up to a closing `",hh)` that is followed by a sequence
# marker or the end; the opening quote is optional because the CSV often lost it.
_PUBLIC_STEP = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)(?=\[<|$)")
_PRIVATE_STEP = re.compile(r'\(([0-9A-Fa-f]{4}),"?(.*?)"?,([0-9A-Fa-f]{2})\)(?=\[<|$)')
_LEVEL = re.compile(r"\[<(\d+)>\]")
_SAFE_ROW = re.compile(r"^\(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\) (\S+)(?: (.*))?$")


class RowError(ValueError):
    """A CSV row that cannot become an entry; the message is the reason reported."""


@dataclass(frozen=True)
class Step:
    group: int
    creator: str | None  # None for a standard (or private creator) element given in full
    element: int  # the full element for a standard step, the low byte for a private one

    def text(self) -> str:
        if self.creator is None:
            return f"({self.group:04x},{self.element:04x})"
        return f'({self.group:04x},"{self.creator}",{self.element:02x})'


def parse_signature(signature: str) -> list[Step]:
    """Split an element_sig_pattern into its steps, checking the nesting markers."""
    steps: list[Step] = []
    pos = 0
    while True:
        public = _PUBLIC_STEP.match(signature, pos)
        private = None if public else _PRIVATE_STEP.match(signature, pos)
        if public:
            steps.append(Step(int(public[1], 16), None, int(public[2], 16)))
            pos = public.end()
        elif private:
            group, creator = int(private[1], 16), private[2].strip()
            if not group & 1:
                raise RowError(f"private creator on even group {group:04x}")
            if '"' in creator:
                raise RowError(f"unbalanced quotes in private creator {creator!r}")
            steps.append(Step(group, creator, int(private[3], 16)))
            pos = private.end()
        else:
            raise RowError(f"unparseable signature at character {pos + 1}: {signature[pos:]!r}")
        if pos == len(signature):
            return steps
        level = _LEVEL.match(signature, pos)
        if not level:
            raise RowError(f"expected a sequence marker at character {pos + 1}")
        if int(level[1]) != len(steps) - 1:
            raise RowError(f"sequence marker <{level[1]}> at depth {len(steps) - 1}")
        pos = level.end()
        if pos == len(signature):
            raise RowError("signature ends with a sequence marker")


@dataclass
class Report:
    """Where every CSV row went, by CSV line number."""

    rows: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    excluded: dict[str, list[int]] = field(default_factory=dict)  # reason -> lines
    normalised: list[tuple[int, str]] = field(default_factory=list)  # (line, raw disposition)

    def exclude(self, reason: str, line: int) -> None:
        self.excluded.setdefault(reason, []).append(line)


def read_kb(text: str, report: Report) -> list[dict]:
    """The KB rows that become entries; everything else is recorded in *report*."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != COLUMNS:
        raise SystemExit(f"unexpected CSV header {header!r}; expected {COLUMNS}")
    entries: list[dict] = []
    seen: set[tuple] = set()
    for record in reader:
        line = reader.line_num
        report.rows += 1
        try:
            entry = _kb_entry(record, line, report)
        except RowError as exc:
            report.skipped.append((line, str(exc)))
            continue
        if entry is None:
            continue
        key = tuple(entry[f] if f != "parents" else tuple(entry[f]) for f in FIELDS)
        if key in seen:
            report.exclude("duplicate of an earlier row", line)
            continue
        seen.add(key)
        entries.append(entry)
    return entries


def _kb_entry(record: list[str], line: int, report: Report) -> dict | None:
    if len(record) != len(COLUMNS):
        raise RowError(f"expected {len(COLUMNS)} fields, found {len(record)}")
    signature, name, vr, raw = (value.strip() for value in record)
    disposition = raw.lower()
    if not disposition:
        raise RowError("empty disposition")
    if disposition not in DISPOSITIONS + (NOT_APPLICABLE,):
        raise RowError(f"unknown disposition {raw!r}")
    if vr and vr not in VRS:
        raise RowError(f"unknown VR {vr!r}")
    steps = parse_signature(signature)
    leaf = steps[-1]
    if leaf.creator is None:
        report.exclude("standard attribute or private creator element as the leaf", line)
        return None
    if disposition == NOT_APPLICABLE:
        report.exclude("disposition na (not applicable)", line)
        return None
    if record[3] != disposition:
        report.normalised.append((line, record[3]))
    return {"group": leaf.group, "creator": leaf.creator, "offset": leaf.element, "vr": vr,
            "name": name, "disposition": disposition,
            "parents": [step.text() for step in steps[:-1]], "source": KB_SOURCE}


def read_safe(text: str) -> tuple[str, list[dict]]:
    """Table E.3.10-1 as keep entries, with the table's edition."""
    table = yaml.safe_load(text)
    entries = []
    for creator, rows in table["creators"].items():
        for row in rows:
            match = _SAFE_ROW.match(row)
            if not match:
                raise SystemExit(f"unparseable E.3.10-1 row {row!r} ({creator})")
            vr = "" if match[3] == "-" else match[3]
            entries.append({"group": int(match[1], 16), "creator": creator.strip(),
                            "offset": int(match[2], 16), "vr": vr, "name": match[4] or "",
                            "disposition": "k", "parents": [], "source": STANDARD_SOURCE})
    if len(entries) != table["rows"]:
        raise SystemExit(f"E.3.10-1 transcription has {len(entries)} rows, not {table['rows']}")
    return str(table["edition"]), entries


def _sort_key(entry: dict) -> tuple:
    rank = RANK[entry["source"] if entry["source"] == STANDARD_SOURCE else entry["disposition"]]
    return (entry["group"], entry["creator"], entry["offset"], entry["parents"], rank,
            entry["vr"], entry["name"])


def disagreements(kb: list[dict], safe: list[dict]) -> list[dict]:
    """Top-level tags the standard keeps but some KB row does not."""
    top_level: dict[tuple, set[str]] = {}
    for e in kb:
        if not e["parents"]:
            top_level.setdefault((e["group"], e["creator"], e["offset"]), set()).add(
                e["disposition"])
    found = []
    for entry in safe:
        key = (entry["group"], entry["creator"], entry["offset"])
        kb_says = sorted(top_level.get(key, ()))
        if any(d != "k" for d in kb_says):
            found.append({"tag": f'({key[0]:04x},"{key[1]}",{key[2]:02x})', "kb": kb_says,
                          "standard": "k"})
    return found


def build(csv_bytes: bytes, safe_text: str) -> tuple[dict, list[dict], Report]:
    report = Report()
    kb = read_kb(csv_bytes.decode("utf-8-sig"), report)
    edition, safe = read_safe(safe_text)
    entries = sorted(kb + safe, key=_sort_key)
    excluded = sum(len(lines) for lines in report.excluded.values())
    if len(kb) + excluded + len(report.skipped) != report.rows:
        raise SystemExit("internal error: some CSV rows are not accounted for")
    metadata = {
        "generated_by": "tools/build_private_kb.py",
        "fields": FIELDS,
        "kb": {"name": KB_NAME, "date": KB_DATE, "source": KB_SOURCE,
               "sha256": hashlib.sha256(csv_bytes).hexdigest(), "rows": report.rows,
               "entries": len(kb), "excluded": excluded, "skipped": len(report.skipped),
               "normalised": len(report.normalised)},
        "standard": {"name": "DICOM PS3.15 Table E.3.10-1 Safe Private Attributes",
                     "edition": edition, "source": STANDARD_SOURCE, "rows": len(safe)},
        "skipped": [{"row": line, "reason": reason} for line, reason in report.skipped],
        "excluded": {reason: lines for reason, lines in sorted(report.excluded.items())},
        "normalised": [{"row": line, "disposition": raw} for line, raw in report.normalised],
        "disagreements": disagreements(kb, safe),
    }
    return metadata, entries, report


def render(metadata: dict, entries: list[dict]) -> str:
    """The data file: metadata one key a line, then one entry a line (as a list of FIELDS)."""
    def dump(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    meta = ",\n".join(f"{dump(key)}:{dump(value)}" for key, value in sorted(metadata.items()))
    rows = ",\n".join(dump([f"{e['group']:04x}", e["creator"], f"{e['offset']:02x}", e["vr"],
                            e["name"], e["disposition"], e["parents"], e["source"]])
                      for e in entries)
    return '{"metadata":{\n' + meta + '},\n"entries":[\n' + rows + "\n]}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--safe", type=Path, default=DEFAULT_SAFE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    metadata, entries, report = build(args.csv.read_bytes(),
                                      args.safe.read_text(encoding="utf-8"))
    for line, reason in report.skipped:
        print(f"skipped row {line}: {reason}")
    for reason, lines in sorted(report.excluded.items()):
        print(f"excluded {len(lines)} rows: {reason}")
    kb = metadata["kb"]
    print(f"{kb['rows']} KB rows: {kb['entries']} entries, {kb['excluded']} excluded, "
          f"{kb['skipped']} skipped ({kb['normalised']} dispositions normalised); "
          f"{metadata['standard']['rows']} E.3.10-1 rows (edition "
          f"{metadata['standard']['edition']}), {len(metadata['disagreements'])} disagreeing")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(metadata, entries), encoding="utf-8", newline="\n")
    print(f"wrote {len(entries)} entries to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
