"""Which images the chest-radiograph anonymiser may touch: frontal (PA/AP) chest CR/DX images, nothing else.

Why so strict: the anonymiser was trained and measured on frontal chest radiographs only (``docs/cxr.md``).  On a
knee or a lateral chest its field means nothing, and coding such an image with 113102 ("Clean Recognizable Visual
Features") would claim a protection nobody measured.  So the header decides first, from four attributes that the
Basic Profile keeps:

- SOP Class UID: Computed Radiography, or Digital X-Ray For Presentation / For Processing.  Anything else (a
  secondary capture that says Modality CR, a mammogram) is left alone.
- Body Part Examined (0018,0015) CHEST, THORAX or LUNG, or else the Anatomic Region Sequence coding the chest
  (SNOMED CT 43799004 / SNOMED RT T-D3000).  Another body part leaves the image alone; an empty one, or a
  free-text value that only mentions the chest ("PORT CHEST"), is undecided.
- View Position (0018,5101) PA or AP, or else a View Code Sequence coding a frontal view (PS3.16 CID 4010:
  postero-anterior, antero-posterior, frontal).  A lateral, oblique or decubitus view leaves the image alone; none,
  or a non-standard value starting with PA or AP ("PA ERECT"), is undecided.
- Image Laterality (0020,0062) L or R: one side only (a rib or shoulder view), left alone; B, U or empty is fine.

Where an attribute is undecided and none says "no", a cheap image check (``lungs.lung_field_check``: aspect
ratio and the two lung fields found by the shipped segmentation model) decides, and the decision and its numbers
are recorded.  Every decision carries a fixed reason text, never a value from the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

CR_DX_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1": "CR",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX",  # Digital X-Ray Image Storage - For Processing
}
CHEST_PARTS = {"CHEST", "THORAX", "LUNG", "LUNGS"}
CHEST_WORDS = ("CHEST", "THORAX", "THORAC", "LUNG", "TORAX", "TORACE", "POUMON")
#: Anatomic Region Sequence codes for the chest (SNOMED CT, SNOMED RT).
CHEST_CODES = {("SCT", "43799004"), ("SRT", "T-D3000"), ("SNM3", "T-D3000")}
FRONTAL_VIEWS = {"PA", "AP"}
#: View Code Sequence codes of frontal views, PS3.16 CID 4010 (SNOMED CT; SNOMED RT where one exists).
FRONTAL_VIEW_CODES = {("SCT", "272479007"), ("SCT", "399348003"), ("SCT", "399033003"),  # PA, AP, frontal
                      ("SRT", "R-10214"), ("SRT", "R-10206")}
ONE_SIDE = {"L", "R"}


@dataclass
class Decision:
    """Whether the anonymiser applies; ``applies is None`` means the header cannot tell (the image must)."""

    applies: bool | None
    decided_by: str  # "header" | "image"
    why: str
    details: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The audit record: fixed texts and computed numbers only."""
        return {"applies": self.applies, "decided_by": self.decided_by, "why": self.why, **self.details}


def header_decision(ds: Dataset) -> Decision:
    """The decision from the header alone (see the module docstring)."""
    sop = str(ds.get("SOPClassUID", "") or "").strip()
    if sop not in CR_DX_SOP_CLASSES:
        return Decision(False, "header", "not a CR/DX SOP class")
    part = _chest_part(ds)
    view = _frontal_view(ds)
    side = str(ds.get("ImageLaterality", "") or "").strip().upper()
    if part is False:
        return Decision(False, "header", "Body Part Examined is not the chest")
    if view is False:
        return Decision(False, "header", "View Position is not PA or AP")
    if side in ONE_SIDE:
        return Decision(False, "header", "Image Laterality is one side only")
    if part and view:
        return Decision(True, "header", "frontal chest CR/DX by its header")
    missing = [name for name, known in (("Body Part Examined", part), ("View Position", view)) if not known]
    return Decision(None, "header", " and ".join(missing) + " not given")


def decide(ds: Dataset, image_check=None) -> Decision:
    """The header decision, completed by ``image_check()`` (a callable returning a ``Decision``) where the header
    cannot tell.  ``image_check`` is called only then, so header-decided files never decode their pixels."""
    decision = header_decision(ds)
    if decision.applies is not None or image_check is None:
        return decision
    checked = image_check()
    checked.details = {"header": decision.why, **checked.details}
    return checked


def _chest_part(ds: Dataset) -> bool | None:
    part = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    if part:
        if part in CHEST_PARTS:
            return True
        return None if any(word in part for word in CHEST_WORDS) else False
    codes = _codes(ds.get("AnatomicRegionSequence"))
    if codes:
        return True if codes & CHEST_CODES else False
    return None


def _frontal_view(ds: Dataset) -> bool | None:
    view = str(ds.get("ViewPosition", "") or "").strip().upper()
    if view:
        if view in FRONTAL_VIEWS:
            return True
        # "PA ERECT", "AP_SUPINE": frontal by its first word, but not a defined term: let the image decide
        return None if re.split(r"[^A-Z]+", view)[0] in FRONTAL_VIEWS else False
    codes = _codes(ds.get("ViewCodeSequence"))
    if codes:
        return bool(codes & FRONTAL_VIEW_CODES)
    return None


def _codes(seq) -> set[tuple[str, str]]:
    out = set()
    for item in seq or []:
        scheme = str(item.get("CodingSchemeDesignator", "") or "").strip().upper()
        value = str(item.get("CodeValue", "") or "").strip().upper()
        if value:
            out.add((scheme, value))
    return out
