"""Which attributes hold identifying values, and which of them a policy keeps on purpose.

Three parts of medveil need the same answer: the residual check (an original
identifier must not survive), the text cleaner (the file's own identifiers are
cut out of descriptions) and the verification scan (identifiers must not be in
OCR'd pixel text).  If each kept its own list, an identifier that a profile
keeps on purpose (a Device Serial Number under Retain Device Identity, a Station
Name under Retain Institution Identity) would be kept in its attribute and cut
out of every description that mentions it, or would quarantine the file.  So
the list lives here, once, and the policy (recipe, profile conventions, option
columns, Basic Profile) decides which of its attributes count for a file.

Person names (PN) are found by their dictionary VR wherever they are; the
attributes listed here are those whose values are not names by type: IDs,
institutions, addresses, telephone numbers, and a few names stored in non-PN
attributes.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.datadict import tag_for_keyword

#: Attribute keyword -> the kind of identifying value it holds.
IDENTIFYING: dict[str, str] = {
    **dict.fromkeys(("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                     "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
                     "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician",
                     "ScheduledPerformingPhysicianName", "PersonName", "ResponsiblePerson"), "names"),
    **dict.fromkeys(("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "MedicalRecordLocator",
                     "AdmissionID", "ServiceEpisodeID", "RequestedProcedureID", "ScheduledProcedureStepID",
                     "PerformedProcedureStepID", "PlacerOrderNumberImagingServiceRequest",
                     "FillerOrderNumberImagingServiceRequest", "PlacerOrderNumberProcedure",
                     "FillerOrderNumberProcedure", "DeviceSerialNumber", "InsurancePlanIdentification",
                     "MilitaryRank", "BranchOfService"), "ids"),
    **dict.fromkeys(("InstitutionName", "InstitutionalDepartmentName", "StationName", "ResponsibleOrganization",
                     "IssuerOfPatientID", "LocalNamespaceEntityID"), "institutions"),
    **dict.fromkeys(("PatientAddress", "InstitutionAddress", "ReferringPhysicianAddress", "PersonAddress"),
                    "addresses"),
    **dict.fromkeys(("PatientTelephoneNumbers", "ReferringPhysicianTelephoneNumbers", "PersonTelephoneNumbers",
                     "PatientTelecomInformation", "PersonTelecomInformation"), "phones"),
}

#: The subset whose original values the residual check searches the whole output for.
#: Study ID, procedure step IDs and the like are short numbers that a scanner also
#: writes into unrelated attributes ("1"), so they are cleaned from text but not hunted.
RESIDUAL_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientBirthDate", "PatientAddress", "PatientTelephoneNumbers",
    "MedicalRecordLocator", "AccessionNumber", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "OperatorsName", "RequestingPhysician", "ScheduledPerformingPhysicianName",
    "PersonName", "MilitaryRank", "BranchOfService", "PatientInsurancePlanCodeSequence",
    "ResponsiblePerson", "ResponsibleOrganization", "StationName", "DeviceSerialNumber",
)


@lru_cache(maxsize=256)
def tag_of(keyword: str) -> int | None:
    return tag_for_keyword(keyword)


def kept_on_purpose(policy, tag: int, sop_class_uid: str) -> bool:
    """True when *policy* keeps the attribute's value as it is (K, a recipe value R,
    or a C action that falls back to keeping): its value is then not an identifier
    to hunt for or to cut out of text elsewhere."""
    if policy is None:
        return False
    decision = policy.decide(tag, sop_class_uid)
    if decision is None:
        return False
    if decision.action in ("K", "R"):
        return True
    return decision.action == "C" and decision.fallback == "K"


def kept_by_an_option(policy, tag: int) -> bool:
    """True when an option the policy has keeps the attribute in the table's own column
    (Station Name under Retain Device Identity), even if a profile convention removes it:
    the value then names a device the release keeps elsewhere (a Gantry ID that repeats
    the station's name), and finding it there is not a leak to repair."""
    if policy is None:
        return False
    rule = policy.table.lookup(tag)
    return rule is not None and any(code == "K" and option in policy.options for option, code in rule.options.items())


def identifying_keywords(policy, sop_class_uid: str, keywords=None) -> tuple[str, ...]:
    """The identifying attributes (of *keywords*, default all) that *policy* does not keep."""
    chosen = IDENTIFYING if keywords is None else keywords
    out = []
    for keyword in chosen:
        tag = tag_of(keyword)
        if tag is not None and not kept_on_purpose(policy, tag, sop_class_uid):
            out.append(keyword)
    return tuple(out)


def kept_identifying(policy, sop_class_uid: str) -> tuple[str, ...]:
    """The identifying attributes that *policy* keeps on purpose (their values are allowed in text)."""
    return tuple(k for k in IDENTIFYING if (tag := tag_of(k)) is not None
                 and kept_on_purpose(policy, tag, sop_class_uid))
