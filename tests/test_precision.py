"""Release precision (issue 14): keep what curators keep, clean what identifies, in any form.

Names held under the wrong VR, identifiers a profile keeps on purpose, earlier
de-identification history, TCIA's curation conventions, dates in any attribute
and site initialisms.
"""

from __future__ import annotations

import json
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import PHI, phi_dataset
from medveil.engine import deidentify_dataset
from medveil.engine.identifiers import collect_known
from medveil.policy import Option, get_profile
from medveil.policy.identifying import identifying_keywords, kept_identifying
from medveil.text import KnownIdentifiers, TextCleaner


def _events(result, category):
    return [detail for cat, detail in result.events if cat == category]


# -- 7 / 13.8: person names by dictionary VR -------------------------------------------------------


@pytest.mark.parametrize("vr", ["LO", "SH", "LT"])
def test_patient_name_under_another_vr_is_split_into_components(key, vr):
    ds = phi_dataset()
    del ds.PatientName
    ds.add_new(0x00100010, vr, "SMITHERS^WAYLON^Q")
    ds.StudyDescription = "CT CHEST for Waylon"  # the given name alone, in free text
    known = collect_known(ds)
    assert "SMITHERS^WAYLON^Q" in known.names
    result = deidentify_dataset(ds, get_profile("tcia"), key).dataset
    assert "Waylon".upper() not in str(result.StudyDescription).upper()
    assert "CT CHEST" in result.StudyDescription


def test_unlisted_name_attribute_under_another_vr_is_emptied(key):
    ds = phi_dataset()
    ds.add_new(0x00400006, "LO", "DOE^JOHN")  # Scheduled Performing Physician's Name is PN
    result = deidentify_dataset(ds, get_profile("basic"), key).dataset
    assert str(result.get("ScheduledPerformingPhysicianName", "") or "") in ("", "ANONYMIZED")


def test_residual_check_splits_a_name_stored_as_lo(key):
    ds = phi_dataset()
    del ds.PatientName
    ds.add_new(0x00100010, "LO", "SMITHERS^WAYLON^Q")
    ds.SequenceName = "waylon_t2"  # only the given name: found because the name was split
    result = deidentify_dataset(ds, get_profile("basic"), key)
    assert "WAYLON" not in str(result.dataset.get("SequenceName", "")).upper()
    assert any(json.loads(d)["attribute"] == "SequenceName" for d in _events(result, "repair"))


# -- 5: identifying attributes follow the options in one place -------------------------------------


def test_identifying_attributes_follow_the_options():
    tcia, basic = get_profile("tcia"), get_profile("basic")
    assert "DeviceSerialNumber" in kept_identifying(tcia, "")
    assert "DeviceSerialNumber" not in identifying_keywords(tcia, "")
    assert "DeviceSerialNumber" in identifying_keywords(basic, "")
    assert "StationName" in identifying_keywords(tcia, "")  # TCIA removes it (convention)


def test_a_kept_device_serial_number_is_not_cut_from_descriptions(key):
    ds = phi_dataset()
    ds.DeviceSerialNumber = "SN45123"
    ds.ImageComments = "QA scan on scanner SN45123 for Waylon Smithers"
    result = deidentify_dataset(ds, get_profile("tcia"), key).dataset
    assert result.DeviceSerialNumber == "SN45123"
    assert "SN45123" in result.ImageComments
    assert "Smithers" not in result.ImageComments
    basic = deidentify_dataset(phi_dataset(), get_profile("basic", extra_options=frozenset(
        {Option.CLEAN_DESCRIPTORS})), key).dataset
    assert "DeviceSerialNumber" not in basic


def test_kept_values_are_no_finding_of_the_verification_scan():
    from medveil.verify import scan_dataset

    ds = Dataset()
    ds.ImageComments = "call 555-123-4567"
    ds.StudyDescription = "555-123-4567"
    assert scan_dataset(ds)  # a phone number in the header
    assert not scan_dataset(ds, kept=["555-123-4567"])


def test_text_cleaner_keeps_kept_values_but_removes_the_rest():
    known = KnownIdentifiers(names=("DOE^JANE",), kept=("SN45123",))
    result = TextCleaner(known).clean("scanner SN45123, patient Jane Doe, MRN 99887766")
    assert "SN45123" in result.text and "Doe" not in result.text and "99887766" not in result.text


# -- 4: de-identification history -----------------------------------------------------------------


def _previously_deidentified() -> Dataset:
    ds = phi_dataset()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = ["mri_reface 0.3", "site script v2"]
    item = Dataset()
    item.CodeValue = "113101"
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = "Clean Pixel Data Option"
    ds.DeidentificationMethodCodeSequence = Sequence([item])
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.RecognizableVisualFeatures = "NO"
    return ds


def test_earlier_deidentification_history_is_kept_and_appended_to(key):
    result = deidentify_dataset(_previously_deidentified(), get_profile("basic", extra_options=frozenset(
        {Option.RETAIN_LONG_FULL_DATES})), key).dataset
    methods = list(result.DeidentificationMethod)
    assert methods[:2] == ["mri_reface 0.3", "site script v2"] and methods[2].startswith("medveil")
    codes = [item.CodeValue for item in result.DeidentificationMethodCodeSequence]
    assert codes[0] == "113101" and "113100" in codes[1:] and "113106" in codes[1:]
    assert result.PatientIdentityRemoved == "YES"
    # dates were modified by the earlier run: keeping them now does not make them unmodified
    assert result.LongitudinalTemporalInformationModified == "MODIFIED"
    assert result.RecognizableVisualFeatures == "NO"


def test_history_of_a_first_deidentification(key):
    result = deidentify_dataset(phi_dataset(), get_profile("tcia"), key).dataset
    assert [item.CodeValue for item in result.DeidentificationMethodCodeSequence][0] == "113100"
    assert result.LongitudinalTemporalInformationModified == "MODIFIED"


# -- 5: TCIA curation conventions ------------------------------------------------------------------


def _reference(sop_class: str, sop_instance: str) -> Sequence:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return Sequence([item])


def _with_references() -> Dataset:
    ds = phi_dataset()
    ds.ReferencedStudySequence = _reference("1.2.840.10008.3.1.2.3.1", "1.2.826.0.1.3680043.2.1125.777.1")
    ds.ReferencedPerformedProcedureStepSequence = _reference("1.2.840.10008.3.1.2.3.3",
                                                             "1.2.826.0.1.3680043.2.1125.777.2")
    ds.ReferencedPatientSequence = _reference("1.2.840.10008.3.1.2.1.1", "1.2.826.0.1.3680043.2.1125.777.3")
    ds.SmokingStatus = "NO"
    ds.PatientSexNeutered = "UNALTERED"
    return ds


def test_tcia_keeps_reference_sequences_with_remapped_uids(key):
    result = deidentify_dataset(_with_references(), get_profile("tcia"), key)
    ds = result.dataset
    study_ref = ds.ReferencedStudySequence[0]
    assert study_ref.ReferencedSOPClassUID == "1.2.840.10008.3.1.2.3.1"  # class kept as is
    assert study_ref.ReferencedSOPInstanceUID != "1.2.826.0.1.3680043.2.1125.777.1"
    assert result.uid_pairs["1.2.826.0.1.3680043.2.1125.777.1"] == study_ref.ReferencedSOPInstanceUID
    pps = ds.ReferencedPerformedProcedureStepSequence[0]
    assert pps.ReferencedSOPInstanceUID != "1.2.826.0.1.3680043.2.1125.777.2"
    assert "ReferencedPatientSequence" not in ds
    assert ds.SmokingStatus == "NO" and ds.PatientSexNeutered == "UNALTERED"


def test_tcia_conventions_yield_to_the_options_a_user_adds(key):
    policy = get_profile("tcia", extra_options=frozenset({Option.RETAIN_INSTITUTION_IDENTITY}))
    ds = phi_dataset()
    ds.InstitutionName = "Springfield General Hospital"
    result = deidentify_dataset(ds, policy, key).dataset
    assert result.StationName == "CT01"  # the site's identity is retained: so is its station


def test_basic_profile_stays_the_table(key):
    ds = deidentify_dataset(_with_references(), get_profile("basic"), key).dataset
    assert "ReferencedStudySequence" not in ds or len(ds.ReferencedStudySequence) == 0
    assert "SmokingStatus" not in ds
    assert "StationName" not in ds or ds.StationName in ("", "ANONYMIZED")


def test_every_tcia_convention_says_why():
    from medveil.policy import PROFILES

    conventions = PROFILES["tcia"]["conventions"]
    assert len(conventions) >= 10
    assert all(len(c.reason) > 40 for c in conventions.values())
    assert PROFILES["basic"]["conventions"] == {}


def test_a_recipe_still_wins_over_a_convention(key):
    from dataclasses import replace

    from medveil.policy.recipe import parse_overrides

    policy = replace(get_profile("tcia"), overrides=parse_overrides({"StationName": "K"}))
    assert deidentify_dataset(phi_dataset(), policy, key).dataset.StationName == "CT01"
    assert PHI["PatientID"]  # the fixture's identifiers are intact for the other tests


# -- 2: dates in any attribute, in any written form -----------------------------------------------


def _hidden_dates() -> Dataset:
    ds = phi_dataset()
    ds.SeriesNumber = "20010925"  # a scanner that numbers series by the study date
    ds.SoftwareVersions = ["VE11C [20010925]", "syngo MR"]
    ds.ImagesInAcquisition = "20010925"
    ds.WindowCenter = "40"
    ds.SliceThickness = "1.25"
    return ds


def test_hidden_dates_shift_with_the_patient_under_modified_dates(key):
    from medveil.pseudonym import shift_da

    result = deidentify_dataset(_hidden_dates(), get_profile("tcia"), key)
    ds = result.dataset
    offset_date = shift_da("20010925", _offset(key))
    assert str(ds.SeriesNumber) == offset_date
    assert list(ds.SoftwareVersions) == [f"VE11C [{offset_date}]", "syngo MR"]
    assert str(ds.WindowCenter) == "40" and str(ds.SliceThickness) == "1.25"  # numbers stay numbers
    assert ("hidden-date-shifted", "SeriesNumber") in result.events


def _offset(key) -> int:
    from medveil.engine.deidentify import patient_key
    from medveil.pseudonym import patient_offset

    return patient_offset(key, patient_key(phi_dataset()), get_profile("tcia").shift_range)


def test_hidden_dates_are_removed_without_a_date_option(key):
    ds = deidentify_dataset(_hidden_dates(), get_profile("basic"), key).dataset
    assert "20010925" not in str(ds)
    assert list(ds.SoftwareVersions) == ["VE11C", "syngo MR"]


def test_hidden_dates_stay_under_full_dates(key):
    policy = get_profile("basic", extra_options=frozenset({Option.RETAIN_LONG_FULL_DATES}))
    ds = deidentify_dataset(_hidden_dates(), policy, key).dataset
    assert str(ds.SeriesNumber) == "20010925"


@pytest.mark.parametrize("text, shifted", [
    ("Sep1999", "Oct1999"), ("Sept. 1999", "Oct. 1999"), ("September '99", "October '99"),
    ("1999-09", "1999-10"), ("09/1999", "10/1999"), ("Q3 1999", None),
])
def test_month_year_and_partial_dates_shift_at_their_precision(text, shifted):
    from medveil.text.dates import find_dates, shift_date_text

    spans = find_dates(f"prior study {text} compared")
    assert [f"prior study {text} compared"[s.start:s.end] for s in spans] == [text]
    assert shift_date_text(text, 30) == shifted  # Aug 15 + 30 days is still Q3: not shifted, removed
    assert shift_date_text("Q3 1999", 60) == "Q4 1999"


@pytest.mark.parametrize("text", ["T1 1.5mm 2010-2012", "version 3.2-2010", "Q5 1999", "13/1999",
                                  "20011325", "1.2.840.20010925.1"])
def test_what_only_looks_like_a_partial_date_is_left_alone(text):
    from medveil.text.dates import find_dates

    assert find_dates(text) == []


def test_partial_dates_in_descriptions_are_removed_without_shifting():
    result = TextCleaner().clean("CT CHEST prior Sep1999")
    assert result.text == "CT CHEST prior" and result.categories == ("date",)


# -- 3: institution initialisms and short forms ----------------------------------------------------


@pytest.mark.parametrize("institution, station, text, expected", [
    ("North Fulton General Hospital", "", "CT CHEST W/O CONTRAST at NFGH", "CT CHEST W/O CONTRAST"),
    ("North Fulton General Hospital", "", "outside read, NFG campus", "outside read, campus"),
    ("Springfield Medical Center", "SMC-MR2", "MR BRAIN SMC", "MR BRAIN"),
    ("Hospital of the University of Pennsylvania", "HUP6MR1", "MR at HUP", "MR"),
    ("SC3T", "AWP66044", "QA AWP scanner", "QA scanner"),
])
def test_site_initialisms_and_short_forms_are_removed(institution, station, text, expected):
    known = KnownIdentifiers(institutions=tuple(v for v in (institution, station) if v))
    assert TextCleaner(known).clean(text).text == expected


@pytest.mark.parametrize("institution, station, text", [
    ("Cardiac Thoracic Associates", "CTA_SCANNER1", "CTA chest"),  # CTA is a clinical abbreviation
    ("Mayo Rochester Institute", "MRI_ROOM2", "MRI brain w/o"),
    ("Pacific Eye Trust", "PET-CT1", "PET CT whole body"),
    ("Diagnostic Wellness Institute", "DWI_STATION", "DWI TSE FLAIR"),
])
def test_clinical_abbreviations_win_over_site_initialisms(institution, station, text):
    known = KnownIdentifiers(institutions=(institution, station))
    assert TextCleaner(known).clean(text).text == text


def test_site_initialism_in_a_description_is_removed_end_to_end(key):
    ds = phi_dataset()
    ds.InstitutionName = "North Fulton General Hospital"
    ds.StudyDescription = "CT CHEST W/O CONTRAST at NFGH"
    result = deidentify_dataset(ds, get_profile("tcia"), key).dataset
    assert result.StudyDescription == "CT CHEST W/O CONTRAST"


def test_a_removed_station_name_repeated_in_a_kept_device_attribute_is_not_a_leak(key):
    ds = phi_dataset()
    ds.StationName = "NXONXP"
    ds.GantryID = "NXONXP"  # device identity, retained by the tcia profile
    result = deidentify_dataset(ds, get_profile("tcia"), key)
    assert "StationName" not in result.dataset and result.dataset.GantryID == "NXONXP"
    assert not _events(result, "repair")


def test_an_institution_named_with_common_words_is_still_found():
    known = KnownIdentifiers(institutions=("Price Community Hospital", "OT05_NUC"))
    cleaner = TextCleaner(known)
    assert cleaner.clean("AX T1 POST GAD at PCH").text == "AX T1 POST GAD"
    assert cleaner.clean("outside films from Price Community Hospital").text == "outside films"
    assert cleaner.clean("NUC MED bone scan").text == "NUC MED bone scan"  # a department code, not a site
    from medveil.text.forms import institution_forms

    assert institution_forms("General Hospital") == ([], [])  # names a kind of place, not one


def test_binary_bytes_in_a_kept_text_value_are_repaired_not_quarantined(key):
    """A text value holding binary bytes (what a stretched length leaves behind) is removed,
    emptied or dummied by its Type, and the file released; refused only where no repair is valid."""
    from io import BytesIO

    from pydicom.dataelem import DataElement

    from conftest import image_dataset
    from medveil.pipeline import deidentify_bytes

    ds = image_dataset()
    ds.add(DataElement(0x00321030, "LO", b"CHEST PAIN\x01\x02\x00\x10\x00\x02"))  # Reason for Study
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    out, record = deidentify_bytes(buffer.getvalue(), get_profile("tcia"), key)
    assert record.status == "written", out
    repairs = [json.loads(d) for c, d in record.events if c == "repair"]
    assert {"attribute": "ReasonForStudy", "action": "removed",
            "why": "binary bytes in a text value (may hide other elements)"} in repairs
    assert b"CHEST PAIN" not in out


def test_synth_selection_takes_one_image_of_each_pixel_encoding_first():
    from pathlib import Path

    from medveil.synth.corpus import Source
    from medveil.synth.plan import select

    def source(n, encoding, series, text=None):
        return Source(corpus="c", path=Path(f"{n}.dcm"), relpath=f"{n:03d}.dcm", sop_instance_uid=f"1.{n}",
                      sop_class_uid="1.2", study_uid="1.9", series_uid=series, modality="OT", instance_number=n,
                      pixel_text=text, encoding=encoding)

    plain = [source(n, "1.2.840.10008.1.2.1/MONOCHROME2", "1.5") for n in range(30)]
    rare = [source(100, "1.2.840.10008.1.2.5/PALETTE COLOR", "1.6"),
            source(101, "1.2.840.10008.1.2.4.90/YBR_RCT", "1.7"),
            source(102, "1.2.840.10008.1.2.4.80/MONOCHROME2", "1.8"),
            source(103, "1.2.840.10008.1.2.4.80/RGB", "1.8", text="corpus shows text")]
    chosen = select(plain + rare, 9)
    encodings = {s.encoding for s in chosen}
    assert {"1.2.840.10008.1.2.5/PALETTE COLOR", "1.2.840.10008.1.2.4.90/YBR_RCT",
            "1.2.840.10008.1.2.4.80/MONOCHROME2"} <= encodings
    assert len(chosen) == 9
    first_pass = select(plain + rare[3:], 3)  # an image showing text is no "pixels retained" candidate
    assert all(s.pixel_text is None for s in first_pass[:1])


def test_verify_gate_repairs_a_header_finding_instead_of_quarantining(key):
    from dataclasses import replace
    from io import BytesIO

    from conftest import image_dataset
    from medveil.pipeline import deidentify_bytes

    ds = image_dataset()
    del ds.PixelData  # header only: no OCR needed for this test
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.ReceiveCoilName = "help@coil-site.org"  # unlisted, kept by the table
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    policy = replace(get_profile("basic"), verify=True)
    out, record = deidentify_bytes(buffer.getvalue(), policy, key)
    assert record.status == "written", out
    repairs = [json.loads(d) for c, d in record.events if c == "repair"]
    assert {"attribute": "ReceiveCoilName", "action": "removed",
            "why": "verification found possible PHI"} in repairs
    assert b"coil-site" not in out


def test_a_clinical_word_beside_hospital_or_center_names_the_place():
    """Found on held-out seed 9292 ("SECONDARY CAPTURE at SMC" for Sharp Medical Center)."""
    cleaner = TextCleaner(KnownIdentifiers(institutions=("Sharp Medical Center",)))
    assert cleaner.clean("SECONDARY CAPTURE at SMC").text == "SECONDARY CAPTURE"
    assert cleaner.clean("B30f sharp kernel").text == "B30f sharp kernel"  # the word alone stays
    from medveil.text.forms import institution_forms

    assert institution_forms("Department of Radiology") == ([], [])


def test_a_partial_date_the_shift_does_not_move_is_removed():
    from medveil.text.dates import shift_date_text

    assert shift_date_text("Q2 2011", 10) is None  # mid-May + 10 days: still Q2 2011
    assert shift_date_text("Q2 2011", 60) == "Q3 2011"
    assert TextCleaner(date_offset=10).clean("prior Q2 2011").text == "prior"


# -- kept private values that are binary (OB/OW/UN) or implicit VR: still searched --------------

def _released(ds, policy, key):
    from medveil.pipeline import deidentify_bytes

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    out, record = deidentify_bytes(buffer.getvalue(), policy, key)
    assert record.status == "written", out
    return out, record


@pytest.mark.parametrize(("vr", "value"), [
    ("OB", b"SMITHERS WAYLON "),
    ("UN", b"MRN-0099123 "),
    ("OW", "SMITHERS ".encode("utf-16-le")),
])
def test_a_kept_private_binary_value_holding_an_identifier_is_removed(key, vr, value):
    """Retain Safe Private keeps (0019,"FDMS 1.0",90) Film Annotation Character String whatever
    its VR; the residual check read only text VRs, so a name stored as OB or OW was released."""
    ds = phi_dataset()
    block = ds.private_block(0x0019, "FDMS 1.0", create=True)
    block.add_new(0x90, vr, value)
    block.add_new(0x10, "OB", b"01")  # Exposure Unit Type Code: kept, identifies nobody
    out, record = _released(ds, get_profile("tcia"), key)
    assert b"SMITHERS" not in out and b"0099123" not in out
    assert "SMITHERS".encode("utf-16-le") not in out
    assert b"FDMS 1.0" in out  # the rest of the block stays
    repairs = [json.loads(d) for c, d in record.events if c == "repair"]
    assert any(r["attribute"] == "(0019,1090)" and r["action"] == "removed" for r in repairs)


def test_a_kept_private_value_of_an_implicit_vr_file_is_searched(key):
    """In implicit VR a private element of a creator pydicom does not know reads as UN bytes;
    (0013,"CTP",10) Project Name is kept by the KB and was never searched."""
    from pydicom.uid import ImplicitVRLittleEndian

    ds = phi_dataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    block = ds.private_block(0x0013, "CTP", create=True)
    block.add_new(0x10, "LO", "MRN-0099123")
    block.add_new(0x11, "LO", "LUNG TRIAL")
    out, _ = _released(ds, get_profile("tcia"), key)
    assert b"0099123" not in out
    assert b"LUNG TRIAL" in out


@pytest.mark.parametrize(("vr", "value"), [("OB", b"SMITHERS "), ("OW", "SMITHERS ".encode("utf-16-le"))])
def test_verify_reads_private_binary_values(vr, value):
    from medveil.verify import WordMatcher, scan_dataset

    ds = Dataset()
    block = ds.private_block(0x0019, "FDMS 1.0", create=True)
    block.add_new(0x90, vr, value)
    assert [str(f) for f in scan_dataset(ds, WordMatcher(["SMITHERS"]))] == ["(0019,1090) (identifier)"]


def _raw_text(ds, tag: int, vr: str, value: bytes) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


@pytest.mark.parametrize("profile", ["basic", "tcia"])
def test_an_iso2022_value_padded_inside_its_kanji_mode_is_searched(key, profile):
    """ESC $ B ... then the space that pads the value to even length, without ESC ( B:
    pydicom cannot decode it (a space is no JIS X 0208 byte) and the residual check read
    it as Latin-1, so the ideographic family name reached the release."""
    ds = phi_dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    _raw_text(ds, 0x00100010, "PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B")
    _raw_text(ds, 0x00281055, "LO", b"\x1b$B;3ED ")  # Window Center & Width Explanation: unlisted
    _raw_text(ds, 0x00081030, "LO", b"\x1b$B;3ED ")  # Study Description: cleaned under tcia
    out, _ = _released(ds, get_profile(profile), key)
    assert b";3ED" not in out


@pytest.mark.parametrize("profile", ["basic", "tcia"])
def test_a_name_in_fullwidth_letters_is_found(key, profile):
    """Japanese systems write Latin names in fullwidth forms ('ＳＭＩＴＨＥＲＳ'); the residual
    check and verify compared code points, so the same name in other forms was released."""
    from medveil.verify import WordMatcher, scan_dataset

    ds = phi_dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.add_new(0x00281055, "LO", "ＳＭＩＴＨＥＲＳ")  # Window Center & Width Explanation: unlisted
    out, _ = _released(ds, get_profile(profile), key)
    assert "ＳＭＩＴＨＥＲＳ".encode() not in out
    assert scan_dataset(ds, WordMatcher(["SMITHERS"]))  # verify would have noticed too


@pytest.mark.parametrize("text", ["LI NA", "Na Li", "Li, Na", "f/u LI_NA"])
def test_a_name_of_short_components_is_found_in_either_order(key, text):
    """A name whose components are all shorter than four letters (LI^NA, WU^YI, KIM^MIN) was
    searched for only as 'LI^NA': the patient's name written 'Li, Na' or 'NA LI' in kept text
    was released. The family and given names next to each other, in either order, are
    specific enough to search for whatever their length."""
    from medveil.verify import WordMatcher, identifier_words, scan_dataset

    ds = phi_dataset()
    ds.PatientName = "LI^NA"
    ds.add_new(0x00281055, "LO", text)  # Window Center & Width Explanation: unlisted, kept
    policy = get_profile("basic")
    words = identifier_words(ds, policy)
    assert scan_dataset(ds, WordMatcher(words))  # verify's words cover both orders
    out, _ = _released(ds, policy, key)
    assert text.encode() not in out
    unrelated = phi_dataset()
    unrelated.PatientName = "LI^NA"
    unrelated.add_new(0x00281055, "LO", "Bili naive NA")
    out, _ = _released(unrelated, policy, key)
    assert b"Bili naive NA" in out  # the two components apart are no finding


@pytest.mark.parametrize("text", ["id99887766", "MRN99887766", "PID:99887766b"])
def test_a_numeric_patient_id_run_into_letters_is_found(key, text):
    """Whole-word matching let a numeric Patient ID written against letters (a scanner's
    'MRN99887766', a protocol named 'id99887766') through; long numbers need only digits
    around them to end."""
    ds = phi_dataset()
    ds.PatientID = "99887766"
    ds.add_new(0x00281055, "LO", text)  # Window Center & Width Explanation: unlisted, kept
    out, _ = _released(ds, get_profile("basic"), key)
    assert b"99887766" not in out
    short = phi_dataset()
    short.PatientID = "1234"
    short.add_new(0x00281055, "LO", "T1234 kernel")
    out, _ = _released(short, get_profile("basic"), key)
    assert b"T1234 kernel" in out  # a short number in a word is not taken for the ID


@pytest.mark.parametrize("text", ["lives on Evergreen Terrace", "SPRINGFIELDTON"])
def test_each_line_of_an_address_is_searched_for(key, text):
    """An address was searched for only whole ('742 Evergreen Terrace^Springfieldton'),
    so its street or its town alone in kept text reached the release."""
    ds = phi_dataset()
    ds.PatientAddress = "742 Evergreen Terrace^Springfieldton, OR 97475"
    ds.add_new(0x00281055, "LO", text)  # Window Center & Width Explanation: unlisted, kept
    out, _ = _released(ds, get_profile("basic"), key)
    assert b"Evergreen" not in out and b"SPRINGFIELDTON" not in out
