"""The answer key's checks for one written instance.

Two sources feed them.  The generator's own promises (:class:`Expect`) cover
what it planted: the PHI span in a description, the date in a procedure step
ID, the private element with the patient's name.  Everything else follows
from the standard, applied to the file as written: every UID Table E.1-1
replaces must change and stay consistent, every person name must go, every
date the Modified Dates option shifts must shift, every attribute the TCIA
profile keeps (IOD attributes, patient characteristics, device identity)
must still be there, every private element the knowledge base rules on is
kept or deleted as it says, and the pixels are either unchanged or have
their burned-in text hidden.

The file is read back from disk first, and each check's path and value come
from :mod:`medveil.evaluate.flatten`, the validator's own view of a file, so
key and validator cannot disagree on how a path is spelled or a value shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pydicom.datadict import dictionary_is_retired, keyword_for_tag
from pydicom.dataset import Dataset

from medveil.errors import PolicyError
from medveil.evaluate.answer_key import Check
from medveil.evaluate.flatten import pixel_digest, value_text, walk
from medveil.evaluate.paths import format_path, public
from medveil.policy import AttributeDecision, Option, Policy, get_profile
from medveil.policy.private_kb import load_private_kb
from medveil.synth import expect as E
from medveil.synth.burn import Box
from medveil.synth.expect import Expect
from medveil.synth.seeds import rng

PIXEL_DATA = 0x7FE00010
MAX_ORIGINAL_PRIVATE = 12
_BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})
_REMOVED = frozenset({"X", "Z", "D"})
#: Kept attributes that a careful de-identifier may still legitimately rewrite.
_NO_KEEP_CHECK = frozenset({"SpecificCharacterSet"})


@cache
def tcia_policy() -> Policy:
    """The expected de-identification: PS3.15 Basic Profile with the TCIA options."""
    return get_profile("tcia")


def decide(tag: int, sop_class: str) -> AttributeDecision | None:
    """The TCIA profile's decision for a public attribute (None: the table does not list it).

    Where the table's action depends on an attribute Type medveil does not know
    for this object, the attribute counts as removed: the key then asks for no
    "keep" check that a careful de-identifier could fail.
    """
    try:
        return tcia_policy().decide(tag, sop_class)
    except PolicyError:
        return AttributeDecision("X")


def build_checks(ds: Dataset, expects: Iterable[Expect], *, seed: int, boxes: Iterable[Box] = (),
                 pixels_unchanged: bool = False) -> tuple[Check, ...]:
    """Checks for written instance ``ds``: planted ``expects`` first, then the standard's rules."""
    sop_class = str(ds.get("SOPClassUID", ""))
    elements = {format_path(path): (path, element) for path, element in walk(ds, ())}
    checks: dict[tuple[str, str], Check] = {}
    covered: set[str] = set()
    for item in expects:
        key = format_path(item.path)
        found = elements.get(key)
        if found is None:
            continue
        _, element = found
        value = item.value if item.value is not None else value_text(element)
        action_text = item.action_text
        if action_text is None and item.action in ("text_removed", "text_retained"):
            action_text = value
        checks[(key, item.action)] = Check(
            action=item.action, tag_ds=key, tag=item.path[-1].tag_text(), tag_name=_name(item.path[-1], element),
            value=value, action_text=action_text, category=list(item.category))
        covered.add(key)
    originals: list[Check] = []
    for key, (path, element) in elements.items():
        if key in covered:
            continue
        step = path[-1]
        if step.private:
            if len(path) == 1:
                originals.extend(_private_checks(key, step, element))
            continue
        for check in _standard_checks(sop_class, key, path, element):
            checks.setdefault((key, check.action), check)
    if len(originals) > MAX_ORIGINAL_PRIVATE:
        chosen = rng(seed, "original-private", str(ds.get("SOPInstanceUID", ""))).sample(
            range(len(originals)), MAX_ORIGINAL_PRIVATE)
        originals = [originals[n] for n in sorted(chosen)]
    for check in originals:
        checks.setdefault((check.tag_ds, check.action), check)
    pixel_path = format_path((public(PIXEL_DATA),))
    for number, box in enumerate(boxes):
        checks[(pixel_path, f"pixels_hidden#{number}")] = Check(
            action="pixels_hidden", tag_ds=pixel_path, tag="(7FE0,0010)", tag_name="PixelData",
            value=box.text, action_text=box.to_json(), category=list(E.BURNED_IN))
    digest = pixel_digest(ds)
    if pixels_unchanged and digest:
        checks[(pixel_path, "pixels_retained")] = Check(
            action="pixels_retained", tag_ds=pixel_path, tag="(7FE0,0010)", tag_name="PixelData",
            value=None, action_text=digest, category=list(E.PIXELS))
    return tuple(checks[key] for key in sorted(checks))


def _name(step, element) -> str:
    if step.private:
        entry = load_private_kb().lookup(step.group, step.creator or "", step.element)
        return entry.name if entry is not None else ""
    return element.keyword or keyword_for_tag(element.tag) or ""


def _removed_above(sop_class: str, path) -> bool:
    """True when a sequence this element sits in is removed, emptied or replaced by a dummy."""
    for step in path[:-1]:
        if step.private:
            return True
        decision = decide((step.group << 16) | step.element, sop_class)
        if decision is not None and decision.action in _REMOVED:
            return True
    return False


def _standard_checks(sop_class: str, key: str, path, element) -> list[Check]:
    step = path[-1]
    tag = (step.group << 16) | step.element
    vr = element.VR
    if step.element == 0x0000 or step.group == 0x0002 or step.group % 2:
        return []  # group lengths, file meta, private creators and creator-less private elements
    decision = decide(tag, sop_class)
    value = value_text(element)
    name = element.keyword or ""
    common = {"tag_ds": key, "tag": step.tag_text(), "tag_name": name}
    if vr == "UI" and decision is not None and decision.action == "U" and value and "\\" not in value:
        return [Check(action="uid_changed", value=value, category=list(E.UID_CHANGED), **common),
                Check(action="uid_consistent", value=value, category=list(E.UID_CONSISTENT), **common)]
    if vr == "PN" and value.strip():
        return [Check(action="text_removed", value=value, action_text=value, category=list(E.NAME), **common)]
    removed_above = _removed_above(sop_class, path)
    if vr in ("DA", "DT") and value.strip():
        kept = decision is None or decision.action == "K"
        if decision is not None and decision.action == "C" and decision.source is Option.RETAIN_LONG_MODIFIED_DATES:
            return [Check(action="date_shifted", value=value, category=list(E.DATE), **common)]
        if removed_above:
            return [Check(action="date_shifted", value=value, category=list(E.DATE), **common)]
        if not kept:
            return [Check(action="text_removed", value=value, action_text=value, category=list(E.DATE),
                          **common)]
        return []
    if len(path) != 1 or vr in _BULK_VRS or tag == PIXEL_DATA or name in _NO_KEEP_CHECK or not name:
        return []
    if dictionary_is_retired(tag) or (decision is not None and decision.action != "K"):
        return []
    if vr == "UI" and decision is not None:
        return []
    category = E.IOD
    if decision is not None and decision.source is Option.RETAIN_PATIENT_CHARACTERISTICS:
        category = E.PATIENT_CHARACTERISTICS
    elif decision is not None and decision.source is Option.RETAIN_DEVICE_IDENTITY:
        category = E.DEVICE_IDENTITY
    action = "text_notnull" if value != "" else "tag_retained"
    return [Check(action=action, value=value, category=list(category), **common)]


def _private_checks(key: str, step, element) -> list[Check]:
    """What the knowledge base says about a private element the source already had."""
    entry = load_private_kb().lookup(step.group, step.creator or "", step.element)
    if entry is None:
        return []
    value = value_text(element)
    common = {"tag_ds": key, "tag": step.tag_text(), "tag_name": entry.name, "value": value}
    textual = value.strip() != "" and not value.startswith("binary:")
    if entry.disposition == "k":
        return [Check(action="tag_retained", category=list(E.SAFE_PRIVATE), **common)]
    if entry.disposition == "d" and textual:
        return [Check(action="text_removed", action_text=value, category=list(E.PRIVATE_DELETE), **common)]
    if entry.disposition in ("o", "oi") and textual and sum(ch.isdigit() for ch in value) >= 8:
        return [Check(action="date_shifted", category=list(E.PRIVATE_DATE), **common)]
    return []
