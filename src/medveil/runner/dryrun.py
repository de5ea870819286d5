"""``--dry-run``: what de-identification would do to one file, without writing.

The report lists every top-level attribute that changes, with the action and
the new value.  Original values are never shown: a dry run prints to a
terminal, and terminals end up in screenshots and logs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pydicom

from medveil.engine import deidentify_dataset
from medveil.engine.vrs import BINARY_VRS
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.quiet import silenced


@dataclass(frozen=True)
class Change:
    tag: str
    keyword: str
    change: str  # removed, emptied, replaced, added, nested
    new_value: str


def _preview(elem) -> str:
    if elem.VR == "SQ":
        return f"<{len(elem.value or [])} item(s)>"
    if elem.VR in BINARY_VRS:
        return f"<{len(elem.value or b'')} bytes>"
    text = str(elem.value)
    return text if len(text) <= 60 else text[:57] + "..."


def dry_run(path: Path, policy: Policy, key: Key) -> tuple[list[Change], list[tuple[str, str]]]:
    with silenced():
        original = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        cleaned = copy.deepcopy(original)
        result = deidentify_dataset(cleaned, policy, key)
    changes = []
    for tag in sorted(set(original.keys()) | set(cleaned.keys())):
        label = f"({tag.group:04X},{tag.element:04X})"
        if tag not in cleaned:
            changes.append(Change(label, original[tag].keyword, "removed", ""))
            continue
        new = cleaned[tag]
        if tag not in original:
            changes.append(Change(label, new.keyword, "added", _preview(new)))
            continue
        old = original[tag]
        if old.value == new.value:
            continue
        if new.VR == "SQ" and len(old.value or []) == len(new.value or []) and new.value:
            changes.append(Change(label, new.keyword, "nested", _preview(new)))
        elif new.is_empty:
            changes.append(Change(label, new.keyword, "emptied", ""))
        else:
            changes.append(Change(label, new.keyword, "replaced", _preview(new)))
    return changes, result.events
