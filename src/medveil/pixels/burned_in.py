"""Which objects are known to carry burned-in text in their pixels.

With the Clean Pixel Data option such objects get the ``all-text`` pixel
policy (every text region masked); without it they must not pass into a
release unless the user says so: their header can be perfect while the image
shows the patient's name.  An object counts as carrying burned-in text when it says
so (Burned In Annotation = YES) or when its modality or SOP Class is one
where burned-in annotation is the rule rather than the exception:
ultrasound, secondary capture, X-ray angiography, endoscopy and other
visible-light captures, and documents.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

MODALITIES = frozenset({"US", "XA", "ES", "SC", "DOC", "OT", "XC", "GM"})
SOP_CLASS_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7",       # Secondary Capture (all flavours)
    "1.2.840.10008.5.1.4.1.1.6.",      # Ultrasound (single and multi-frame, enhanced)
    "1.2.840.10008.5.1.4.1.1.3.1",     # Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.12.1",    # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.77.1",    # Visible Light (endoscopic, microscopic, photographic, video)
    "1.2.840.10008.5.1.4.1.1.104.",    # Encapsulated PDF / CDA / STL ... documents
)


def burned_in_reason(ds: Dataset) -> str | None:
    """Why *ds* is presumed to carry burned-in text, or None."""
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return "Burned In Annotation is YES"
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in MODALITIES:
        return f"modality {modality} usually carries burned-in text"
    sop_class = str(ds.get("SOPClassUID", "")).strip()
    if sop_class.startswith(SOP_CLASS_PREFIXES):
        return "SOP Class usually carries burned-in text or is a document"
    return None
