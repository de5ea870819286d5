"""Which UI values are instance identifiers (remapped) and which are not.

Every UID that identifies something that was made (an instance, series,
study, frame of reference, a referenced object, an irradiation event, a
concatenation, ...) is remapped wherever it occurs, so references stay
consistent.  UIDs that name a *kind* of thing (SOP classes, transfer
syntaxes, coding schemes, well-known frames of reference) are never
remapped: they identify nobody, and changing them breaks the file.
"""

from __future__ import annotations

from pydicom.uid import UID_dictionary

#: UI attributes whose values are registry or class identifiers.
CLASS_UID_KEYWORDS = frozenset({
    "TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
    "TemplateExtensionCreatorUID", "MappingResourceUID", "PrivateInformationCreatorUID",
    "SOPClassesInStudy",
})


def is_class_keyword(keyword: str) -> bool:
    return keyword in CLASS_UID_KEYWORDS or keyword.endswith(("ClassUID", "ClassUIDs", "SyntaxUID"))


def is_well_known(uid: str) -> bool:
    """True for UIDs defined by the standard itself (PS3.6 Annex A)."""
    return uid in UID_dictionary
