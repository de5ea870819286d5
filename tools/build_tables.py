#!/usr/bin/env python3
"""Generate medveil's policy data from the DICOM standard's own tables.

medveil decides what to do with each attribute from PS3.15 Table E.1-1, not
from a hand-typed list.  This script reads the table as published in JSON
(edition 2025b; see ../shared/README.md for its provenance) and writes the
compact data file ``src/medveil/policy/data/ps315_e1_1.json`` that ships in
the package.  Run it again when a new edition of the standard is adopted and
commit the regenerated file together with the edition string.

Usage: python tools/build_tables.py [--table PATH] [--edition 2025b] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = ROOT.parent / "shared" / "standard" / "ps315_table_e1_1.json"
DEFAULT_OUT = ROOT / "src" / "medveil" / "policy" / "data" / "ps315_e1_1.json"

#: Table column name -> medveil option name (the names used in profiles).
OPTION_COLUMNS = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_long_full_dates",
    "rtnLongModifDatesOpt": "retain_long_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}

BASIC_CODES = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}
OPTION_CODES = {"K", "C"}
_TAG = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")


def _tag_key(raw: str) -> str:
    """Return the tag as 8 lowercase characters; 'x' marks a repeating digit."""
    if raw.upper().startswith("(GGGG,EEEE)"):
        return "private"
    match = _TAG.match(raw.upper())
    if not match:
        raise ValueError(f"unrecognised tag notation {raw!r}")
    return (match.group(1) + match.group(2)).lower()


def build(rows: list[dict], edition: str) -> dict:
    out_rows = []
    seen: set[str] = set()
    for row in rows:
        tag = _tag_key(row["tag"])
        if tag in seen:
            raise ValueError(f"duplicate row for {row['tag']}")
        seen.add(tag)
        basic = row["basicProfile"].strip()
        if basic not in BASIC_CODES:
            raise ValueError(f"unknown Basic Profile action {basic!r} for {row['tag']}")
        options = {}
        for column, option in OPTION_COLUMNS.items():
            code = row.get(column, "").strip()
            if not code:
                continue
            if code not in OPTION_CODES:
                raise ValueError(f"unknown option action {code!r} in {column} for {row['tag']}")
            options[option] = code
        out_rows.append({"tag": tag, "name": row["name"].strip(), "basic": basic,
                         "in_std_iod": row.get("stdCompIOD") == "Y", "options": options})
    out_rows.sort(key=lambda r: r["tag"])
    return {
        "standard": "DICOM PS3.15 Table E.1-1",
        "edition": edition,
        "generated_by": "tools/build_tables.py",
        "options": sorted(OPTION_COLUMNS.values()),
        "rows": out_rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--edition", default="2025b")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = json.loads(args.table.read_text(encoding="utf-8"))
    data = build(rows, args.edition)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=0, sort_keys=True, separators=(",", ":")) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(data['rows'])} rows (edition {args.edition}) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
