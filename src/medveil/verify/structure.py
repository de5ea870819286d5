"""Does a file look de-identified at all?  Checks that need no key.

Without the run's key, ``medveil verify`` cannot know the identifiers the
inputs carried, so a scan for them is impossible; an untouched original
with a plain name and MRN can look as clean to the generic patterns as a
release.  What can be checked is the structure PS3.15 asks of a
de-identified object:

* Patient Identity Removed (0012,0062) is YES;
* De-identification Method (0012,0063) or its code sequence (0012,0064) is
  present;
* no attribute that the Basic Profile removes (action X), with the options
  the file itself declares in its method code sequence, still has a value.

A file that fails any of these is reported, and the release fails.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from medveil.errors import PolicyError
from medveil.policy import Option, Policy, load_table
from medveil.verify.scan import Finding

_CODE_TO_OPTION = {option.code.value: option for option in Option}
_DEIDENTIFIED = "not de-identified"


def declared_options(ds: Dataset) -> frozenset[Option]:
    """The options the file says were applied (its De-identification Method Code Sequence)."""
    options = set()
    for item in ds.get("DeidentificationMethodCodeSequence") or []:
        option = _CODE_TO_OPTION.get(str(item.get("CodeValue", "")).strip())
        if option is not None:
            options.add(option)
    return frozenset(options)


def structural_findings(ds: Dataset) -> list[Finding]:
    """Where *ds* shows it was not de-identified (see the module's list); empty when it looks done."""
    findings = []
    if str(ds.get("PatientIdentityRemoved", "") or "").strip().upper() != "YES":
        findings.append(Finding("PatientIdentityRemoved", f"{_DEIDENTIFIED}: not YES"))
    if not ds.get("DeidentificationMethod") and not ds.get("DeidentificationMethodCodeSequence"):
        findings.append(Finding("DeidentificationMethod", f"{_DEIDENTIFIED}: no method recorded"))
    policy = Policy(name="declared", options=declared_options(ds), table=load_table())
    sop_class = str(ds.get("SOPClassUID", "") or "")
    for elem in ds:
        tag = int(elem.tag)
        if tag >> 16 & 1 or tag >> 16 == 0x0002 or elem.is_empty:
            continue
        try:
            decision = policy.decide(tag, sop_class)
        except PolicyError:
            continue
        if decision is None:
            continue
        if decision.action == "X":
            findings.append(Finding(elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})",
                                    "present with a value, though the profile removes it"))
    return findings
