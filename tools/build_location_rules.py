"""Build ``src/medveil/pixels/data/location_rules.json`` from a deid recipe's graylist.

The graylist of pydicom/deid's ``deid/data/deid.dicom`` (MIT licence) collects
the burned-in annotation regions of RSNA CTP's DicomPixelAnonymizer script and
of Stanford's contributors: for a device (modality, manufacturer, model, image
size, image type ...) the rectangles where it draws patient data. Those facts
are kept here as data; no code is taken. Only rules that name rectangles are
kept; whitelist and blacklist filters decide what to *release*, which medveil
decides itself.

    python tools/build_location_rules.py PATH/TO/deid.dicom

Without a path the script looks for the file in an installed ``deid``
package (``make bench-midi`` installs one under .bench/venvs).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "medveil" / "pixels" / "data" / "location_rules.json"
OPERATORS = {"contains", "notcontains", "equals", "notequals", "missing", "present", "empty"}


def _find_default() -> Path | None:
    for path in sorted(ROOT.glob(".bench/venvs/*/lib/python*/site-packages/deid/data/deid.dicom")):
        return path
    return None


def _term(text: str, label: str) -> dict:
    parts = text.split(None, 2)
    if not parts or parts[0] not in OPERATORS:
        raise ValueError(f"rule {label!r}: cannot read condition {text!r}")
    operator = parts[0]
    field = parts[1] if len(parts) > 1 else ""
    value = parts[2].strip() if len(parts) > 2 else ""
    return {"op": operator, "field": field, "value": value}


def _box(kind: str, text: str) -> list[int]:
    numbers = [int(n) for n in re.split(r"\s*,\s*", text.strip())]
    if len(numbers) != 4:
        raise ValueError(f"bad coordinates {text!r}")
    if kind == "ctpcoordinates":  # x, y, width, height
        x, y, w, h = numbers
        return [x, y, x + w, y + h]
    return numbers  # xmin, ymin, xmax, ymax


def parse(text: str) -> tuple[list[dict], int]:
    """Rules with rectangles from the %filter graylist section; also how many were skipped."""
    rules: list[dict] = []
    skipped = 0
    section = None
    current: dict | None = None

    def finish() -> None:
        nonlocal skipped
        if current is None:
            return
        if current["boxes"] and current["conditions"]:
            rules.append(current)
        else:
            skipped += 1

    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("LABEL") else raw.rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("%"):
            finish()
            current = None
            section = stripped
            continue
        if section != "%filter graylist":
            continue
        if stripped.startswith("LABEL"):
            finish()
            label, _, source = stripped[len("LABEL"):].partition("#")
            current = {"label": label.strip(), "contributor": source.strip().strip("()"),
                       "conditions": [], "boxes": []}
            continue
        if current is None:
            continue
        first = stripped.split(None, 1)[0]
        if first in ("coordinates", "ctpcoordinates"):
            rest = stripped.split(None, 1)[1]
            if not re.fullmatch(r"[\d\s,]+", rest):
                current["conditions"] = []  # coordinates taken from other attributes: not portable
                continue
            current["boxes"].append(_box(first, rest))
            continue
        # Lines are all required; "a || b" alternatives on one line (or a line that starts
        # with "||") widen the line before. Reading "||" as binding tighter than the line
        # break keeps a rule tied to its device instead of matching any file with "Dose"
        # in its description.
        if stripped.startswith("+"):
            stripped, alternatives = stripped[1:].strip(), []
            current["conditions"].append(alternatives)
        elif stripped.startswith("||") and current["conditions"]:
            stripped, alternatives = stripped[2:].strip(), current["conditions"][-1]
        else:
            alternatives = []
            current["conditions"].append(alternatives)
        for piece in stripped.split("||"):
            if piece.strip():
                alternatives.append(_term(piece.strip(), current["label"]))
    finish()
    return rules, skipped


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else _find_default()
    if source is None or not source.is_file():
        print("usage: build_location_rules.py PATH/TO/deid.dicom (no installed deid package found)")
        return 2
    rules, skipped = parse(source.read_text(encoding="utf-8"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "source": "pydicom/deid deid/data/deid.dicom, %filter graylist (MIT); regions collected from "
                  "RSNA CTP's DicomPixelAnonymizer script and deid contributors",
        "coordinates": "x1, y1, x2, y2 in pixels of the stored image, x2 and y2 exclusive",
        "conditions": "every inner list must hold; within one, any term may",
        "skipped_without_boxes": skipped,
        "rules": rules,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(rules)} rules ({skipped} without rectangles skipped) to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
