"""Known-location rules: where a device burns patient data, whether or not OCR reads it.

OCR misses text (low contrast, odd fonts, text over anatomy); some devices
are known to draw the patient's name in the same rectangle on every image.
A rule names a device by header attributes and lists rectangles that are
masked whenever it matches. The shipped rules
(``data/location_rules.json``, built by ``tools/build_location_rules.py``
from the graylist of pydicom/deid, which collects RSNA CTP's
DicomPixelAnonymizer regions) are the field's shared knowledge; a site adds
its own devices with a file of the same shape (``--pixel-rules``).

Rules are matched against the header as it came in, before de-identification
changes descriptions and dates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue

from medveil.errors import MedveilError

_OPERATORS = {"contains", "notcontains", "equals", "notequals", "missing", "present", "empty"}


class RuleError(MedveilError):
    """A rules file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Term:
    op: str
    field: str
    value: str

    def holds(self, ds: Dataset, seen: dict[str, tuple[bool, str]] | None = None) -> bool:
        """Whether the term holds for *ds*; *seen* memoises each field's (present, text) across terms."""
        found = seen.get(self.field) if seen is not None else None
        if found is None:
            present = self.field in ds
            found = (present, _text(ds.get(self.field)) if present else "")
            if seen is not None:
                seen[self.field] = found
        present, text = found
        if self.op == "missing":
            return not present
        if self.op == "present":
            return present
        if self.op == "empty":
            return not text
        if self.op in ("contains", "notcontains"):
            hit = bool(text) and _pattern(self.value).search(text) is not None
            return hit if self.op == "contains" else not hit
        equal = present and text.strip().lower() == self.value.strip().lower()
        return equal if self.op == "equals" else not equal


@dataclass(frozen=True, slots=True)
class LocationRule:
    """Rectangles (x1, y1, x2, y2; x2/y2 exclusive) a matching device draws patient data in."""

    label: str
    conditions: tuple[tuple[Term, ...], ...]
    boxes: tuple[tuple[int, int, int, int], ...]

    def matches(self, ds: Dataset, seen: dict[str, tuple[bool, str]] | None = None) -> bool:
        return all(any(term.holds(ds, seen) for term in line) for line in self.conditions)


@cache
def _pattern(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(value), re.IGNORECASE)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value)


def parse_rules(data: object, *, origin: str) -> tuple[LocationRule, ...]:
    """Rules from the JSON/YAML structure ``{"rules": [{label, conditions, boxes}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError(f"{origin}: expected a mapping with a 'rules' list")
    rules = []
    for index, raw in enumerate(data["rules"]):
        where = f"{origin}: rule {index + 1}"
        try:
            lines = []
            for line in raw["conditions"]:
                line = line if isinstance(line, list) else [line]
                terms = []
                for term in line:
                    op = str(term["op"])
                    if op not in _OPERATORS:
                        raise RuleError(f"{where}: unknown operator {op!r}")
                    terms.append(Term(op, str(term["field"]), str(term.get("value", ""))))
                if terms:
                    lines.append(tuple(terms))
            boxes = []
            for box in raw["boxes"]:
                x1, y1, x2, y2 = (int(v) for v in box)
                if x2 <= x1 or y2 <= y1 or x1 < 0 or y1 < 0:
                    raise RuleError(f"{where}: box {box} is empty or negative")
                boxes.append((x1, y1, x2, y2))
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleError(f"{where}: {type(exc).__name__} {exc}") from None
        if not lines:
            raise RuleError(f"{where}: a rule without conditions would match every image")
        rules.append(LocationRule(str(raw.get("label", f"rule {index + 1}")), tuple(lines), tuple(boxes)))
    return tuple(rules)


@cache
def shipped_rules() -> tuple[LocationRule, ...]:
    text = resources.files("medveil.pixels").joinpath("data/location_rules.json").read_text(encoding="utf-8")
    return parse_rules(json.loads(text), origin="location_rules.json")


def load_rules(path: Path | str) -> tuple[LocationRule, ...]:
    """A site's rules file (JSON or YAML, the shape of the shipped file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RuleError(f"cannot read pixel rules {path.name}: {type(exc).__name__}") from None
    return parse_rules(data, origin=path.name)


def matching_boxes(ds: Dataset, rules: Iterable[LocationRule]) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(rule label, rectangle) for every rectangle of every rule *ds* matches."""
    seen: dict[str, tuple[bool, str]] = {}  # a hundred rules ask about a handful of attributes
    return [(rule.label, box) for rule in rules if rule.matches(ds, seen) for box in rule.boxes]


class RuleMatcher:
    """:func:`matching_boxes` for one set of rules, remembered by what the rules ask about.

    A hundred rules ask about sixteen attributes, and the files of a series
    answer alike: the answer for a file is looked up by those attributes'
    values (device names, descriptions, image sizes), held in this process's
    memory only, a few hundred sets at most, never logged.
    """

    def __init__(self, rules: Iterable[LocationRule], capacity: int = 256) -> None:
        self.rules = tuple(rules)
        self.fields = tuple(sorted({term.field for rule in self.rules for line in rule.conditions for term in line}))
        # A field that names no attribute (the graylist has misspellings) is never present.
        self._known = tuple(name for name in self.fields if tag_for_keyword(name) is not None)
        self.capacity = capacity
        self._answers: dict[tuple, list[tuple[str, tuple[int, int, int, int]]]] = {}

    def boxes(self, ds: Dataset) -> list[tuple[str, tuple[int, int, int, int]]]:
        seen: dict[str, tuple[bool, str]] = dict.fromkeys(self.fields, (False, ""))
        for name in self._known:
            if name in ds:
                seen[name] = (True, _text(ds.get(name)))
        key = tuple(seen[name] for name in self.fields)
        found = self._answers.get(key)
        if found is None:
            found = [(rule.label, box) for rule in self.rules if rule.matches(ds, seen) for box in rule.boxes]
            if len(self._answers) >= self.capacity:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = found
        return list(found)
