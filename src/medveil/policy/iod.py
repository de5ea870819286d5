"""Choosing among the IOD-dependent actions of Table E.1-1 (X/Z, X/D, Z/D, X/Z/D).

PS3.15 E.3.1 lets the action depend on the attribute's Type in the object's
IOD: Type 1 needs a dummy value, Type 2 must stay present (empty), Type 3 may
go.  The Types come from ``data/attribute_types.yaml`` (PS3.3 knowledge per
SOP Class family).  When the table code does not offer the letter for the
Type (e.g. X/D for a Type 2 attribute), the choice that keeps the object at
least as valid as before wins: a dummy rather than removal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from medveil.errors import PolicyError

#: When the Type's own letter is not offered, these are tried in order.
_FALLBACK = {1: ("D", "Z", "X"), 2: ("Z", "D", "X"), 3: ("X", "Z", "D")}


@dataclass(frozen=True)
class AttributeTypes:
    families: dict[str, tuple[str, ...]]
    attributes: dict[int, dict]
    #: tag -> keyword whose presence makes the attribute Type 2 (see the data file).
    conditional_type2: dict[int, str]

    def family_of(self, sop_class_uid: str) -> str | None:
        for family, uids in self.families.items():
            for uid in uids:
                if sop_class_uid == uid or (uid.endswith(".") and sop_class_uid.startswith(uid)):
                    return family
        return None

    def type_of(self, tag: int, sop_class_uid: str) -> int | None:
        entry = self.attributes.get(tag)
        if entry is None:
            return None
        family = self.family_of(sop_class_uid or "")
        overrides = entry.get("families") or {}
        return int(overrides.get(family, entry["default"]))


@lru_cache(maxsize=1)
def load_attribute_types() -> AttributeTypes:
    text = resources.files("medveil.policy").joinpath("data", "attribute_types.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    families = {name: tuple(uids) for name, uids in data["families"].items()}
    attributes = {int(tag, 16): entry for tag, entry in data["attributes"].items()}
    conditional = {int(tag, 16): entry["when_present"]
                   for tag, entry in (data.get("conditional_type2") or {}).items()}
    return AttributeTypes(families=families, attributes=attributes, conditional_type2=conditional)


def required_empty(tag: int, ds) -> bool:
    """True when removing *tag* from *ds* would break a Type 2C condition the dataset meets."""
    keyword = load_attribute_types().conditional_type2.get(tag)
    return keyword is not None and keyword in ds


def resolve_compound(code: str, tag: int, sop_class_uid: str) -> str:
    """Reduce a compound Basic Profile code to one of its letters for this object.

    ``X/Z/U*`` (Referenced/Source Image Sequence) becomes ``U*``: keep the
    sequence and replace the instance UIDs inside it, which the walker does
    for every nested UID anyway.
    """
    if "/" not in code:
        return code
    letters = code.split("/")
    if "U*" in letters:
        return "U*"
    attr_type = load_attribute_types().type_of(tag, sop_class_uid)
    if attr_type is None:
        raise PolicyError(f"no Type knowledge for ({tag >> 16:04X},{tag & 0xFFFF:04X}) with action {code}")
    for letter in _FALLBACK[attr_type]:
        if letter in letters:
            return letter
    raise PolicyError(f"cannot resolve action {code}")
