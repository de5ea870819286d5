"""The engine on in-memory datasets: one behaviour per test."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian

from conftest import FOR_UID, PHI, REF_UID, SERIES_UID, SOP_UID, STUDY_UID, phi_dataset
from medveil.engine import deidentify_dataset
from medveil.engine.dummy import DUMMY_TEXT
from medveil.errors import QuarantineError
from medveil.policy import Option, get_profile
from medveil.policy.recipe import apply_recipe_settings
from medveil.pseudonym import is_valid_uid, patient_offset, pseudonymize_uid


def _days(a: str, b: str) -> int:
    return (date(int(a[:4]), int(a[4:6]), int(a[6:8])) - date(int(b[:4]), int(b[4:6]), int(b[6:8]))).days


def test_basic_profile_replaces_patient_identity(phi_ds, key):
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    ds = result.dataset
    assert ds.PatientID == result.new_patient_id != PHI["PatientID"]
    assert str(ds.PatientName) == ds.PatientID
    assert "PatientBirthDate" in ds and ds.PatientBirthDate == ""  # Z: kept present, empty
    assert "OtherPatientIDs" not in ds
    assert ds.AccessionNumber == ""  # Basic: Z
    assert "InstitutionName" not in ds  # X/Z/D, Type 3 in General Equipment
    assert result.patient_pairs == {PHI["PatientID"]: ds.PatientID}


def test_uids_remapped_consistently_everywhere(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert ds.SOPInstanceUID == pseudonymize_uid(key, SOP_UID)
    assert ds.StudyInstanceUID == pseudonymize_uid(key, STUDY_UID)
    assert ds.SeriesInstanceUID == pseudonymize_uid(key, SERIES_UID)
    assert ds.FrameOfReferenceUID == pseudonymize_uid(key, FOR_UID)
    new_ref = pseudonymize_uid(key, REF_UID)
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_ref
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == new_ref
    assert all(is_valid_uid(u) for u in (ds.SOPInstanceUID, new_ref))


def test_class_uids_and_transfer_syntax_never_change(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert ds.SOPClassUID == CTImageStorage
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_retain_uids_keeps_them(phi_ds, key):
    policy = get_profile("basic", extra_options=frozenset({Option.RETAIN_UIDS}))
    result = deidentify_dataset(phi_ds, policy, key)
    assert result.dataset.SOPInstanceUID == SOP_UID
    assert result.dataset.ReferencedImageSequence[0].ReferencedSOPInstanceUID == REF_UID
    assert result.uid_pairs == {}


def test_modified_dates_shift_every_date_by_the_patient_offset(phi_ds, key):
    policy = get_profile("basic", extra_options=frozenset({Option.RETAIN_LONG_MODIFIED_DATES}))
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    offset = patient_offset(key, PHI["PatientID"], policy.shift_range)
    assert offset < 0
    assert _days(ds.StudyDate, "20200310") == offset
    assert _days(ds.SeriesDate, "20200310") == offset
    assert ds.AcquisitionDateTime[8:] == "101500.123456+0100"
    assert _days(ds.AcquisitionDateTime[:8], "20200310") == offset
    assert _days(ds.StudyUpdateDateTime[:8], "20200311") == offset  # unlisted DT still shifted
    assert ds.StudyTime == "101500"  # whole-day shifts keep times
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_full_dates_keep_dates(phi_ds, key):
    policy = get_profile("basic", extra_options=frozenset({Option.RETAIN_LONG_FULL_DATES}))
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    assert ds.StudyDate == "20200310"
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_without_date_options_dates_follow_the_basic_profile(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert ds.StudyDate == ""  # Z
    assert "SeriesDate" not in ds  # X/D, Type 3
    assert "AcquisitionDateTime" not in ds  # X/Z/D, Type 3 for CT
    assert ds.StudyUpdateDateTime == ""  # unlisted date: emptied
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_same_patient_same_offset_across_files(key):
    policy = get_profile("tcia")
    a, b = phi_dataset(), phi_dataset()
    b.StudyDate = "20210101"
    b.SOPInstanceUID = "1.2.3.4.5"
    ra, rb = deidentify_dataset(a, policy, key), deidentify_dataset(b, policy, key)
    assert _days(rb.dataset.StudyDate, ra.dataset.StudyDate) == _days("20210101", "20200310")
    assert ra.new_patient_id == rb.new_patient_id


def test_invalid_date_is_emptied_and_recorded(phi_ds, key):
    phi_ds.StudyDate = "20200230"
    result = deidentify_dataset(phi_ds, get_profile("tcia"), key)
    assert result.dataset.StudyDate == ""
    assert ("invalid-date-emptied", "StudyDate") in result.events


def test_private_tags_removed_with_their_creators(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert not [e for e in ds if e.tag.is_private]


def test_recipe_keeps_a_private_signature_and_its_creator(phi_ds, key):
    policy = apply_recipe_settings(get_profile("basic"), {"actions": {'(0009,"ACME_PRIVATE 1.0",11)': "K"}})
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    assert ds[0x00090010].value == "ACME_PRIVATE 1.0"
    assert ds[0x00091011].value == "1.5"
    assert 0x00091010 not in ds


def test_retain_safe_private_uses_the_dictionary_hook(phi_ds, key):
    class Dictionary:
        def disposition(self, group, creator, element):
            return {0x11: "k", 0x10: "d"}.get(element) if creator == "ACME_PRIVATE 1.0" else None

    from dataclasses import replace

    policy = replace(get_profile("basic", extra_options=frozenset({Option.RETAIN_SAFE_PRIVATE})),
                     private_dictionary=Dictionary())
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    assert ds[0x00091011].value == "1.5" and 0x00091010 not in ds


def test_overlay_group_removed_whole_and_curves_removed(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert not [e for e in ds if e.tag.group in (0x6000, 0x5000)]


def test_pixel_data_untouched(phi_ds, key):
    before = phi_ds.PixelData
    ds = deidentify_dataset(phi_ds, get_profile("tcia"), key).dataset
    assert ds.PixelData == before


def test_unknown_standard_attribute_removed(phi_ds, key):
    phi_ds.add_new(0x00089999, "LO", "who knows")
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert 0x00089999 not in result.dataset
    assert ("unknown-attribute-removed", "(0008,9999)") in result.events


def test_method_attributes_recorded(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("tcia"), key).dataset
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100"
    assert {"113105", "113104", "113107", "113108", "113109", "113111"} <= set(codes)
    assert "113101" not in codes  # pixel cleaning did not run, so it is not claimed
    assert any("2025b" in v for v in ds.DeidentificationMethod)


def test_tcia_keeps_characteristics_and_device_and_pseudonymises_accession(phi_ds, key):
    phi_ds.DeviceSerialNumber = "SN-7781"
    ds = deidentify_dataset(phi_ds, get_profile("tcia"), key).dataset
    assert ds.PatientSex == "M" and ds.PatientAge == "072Y"
    assert ds.DeviceSerialNumber == "SN-7781"  # Retain Device Identity
    assert "StationName" not in ds  # TCIA convention: it spells the site
    assert ds.AccessionNumber not in ("", PHI["AccessionNumber"])
    assert ds.AccessionNumber.isdigit()


def test_clean_descriptors_without_a_cleaner_falls_back_to_basic(phi_ds, key):
    result = deidentify_dataset(phi_ds, get_profile("tcia", cleaners={}), key)
    assert "StudyDescription" not in result.dataset  # Basic X, never kept uncleaned
    assert ("clean-fallback", "StudyDescription: X") in result.events


def test_pluggable_cleaner_is_used_for_c_actions(phi_ds, key):
    from dataclasses import replace

    def cleaner(keyword, vr, value, ctx):
        return value.replace("CHEST", "THORAX")

    policy = replace(get_profile("tcia"), cleaners={Option.CLEAN_DESCRIPTORS: cleaner})
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    assert ds.StudyDescription == "CT THORAX W/O CONTRAST"


def test_compound_actions_follow_the_iod(key):
    ds = phi_dataset()
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.DeviceSerialNumber = "SN-12345"
    ds.ContentDate = "20200310"
    result = deidentify_dataset(ds, get_profile("basic"), key).dataset
    assert result.DeviceSerialNumber == DUMMY_TEXT  # Type 1 in Enhanced General Equipment
    assert result.ContentDate == "19000101"  # Type 1 in Multi-frame Functional Groups
    ct = phi_dataset()
    ct.DeviceSerialNumber = "SN-12345"
    ct.ContentDate = "20200310"
    result = deidentify_dataset(ct, get_profile("basic"), key).dataset
    assert "DeviceSerialNumber" not in result  # Type 3 in General Equipment
    assert result.ContentDate == ""  # Type 2C in General Image


def _repairs(result) -> dict[str, dict]:
    return {json.loads(detail)["attribute"]: json.loads(detail) for category, detail in result.events
            if category == "repair"}


def test_residual_identifier_in_free_text_is_cut_out_not_quarantined(phi_ds, key):
    phi_ds.SequenceName = "t2_smithers"  # unlisted attribute holding the patient's family name
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert result.dataset.SequenceName == "t2"
    repair = _repairs(result)["SequenceName"]
    assert repair["action"] == "replaced" and "SMITHERS" not in json.dumps(repair).upper()


def test_residual_identifier_in_coded_attributes_is_repaired_by_type(phi_ds, key):
    original_id = str(phi_ds.PatientID)
    phi_ds.PatientAlternativeCalendar = original_id  # CS, unlisted, Type unknown: removed
    phi_ds.add_new(0x00091010, "LO", original_id)  # private, no creator: removed anyway
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert "PatientAlternativeCalendar" not in result.dataset
    assert _repairs(result)["PatientAlternativeCalendar"]["action"] == "removed"
    assert original_id not in str(result.dataset)


def test_residual_identifier_nested_in_a_kept_sequence_is_repaired(phi_ds, key):
    item = Dataset()
    item.CodeMeaning = "pt smithers"  # Code Meaning inside an unlisted sequence is kept by the table
    item.CodeValue = "123"
    item.CodingSchemeDesignator = "99LOCAL"
    phi_ds.AnatomicRegionSequence = [item]
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert result.dataset.AnatomicRegionSequence[0].CodeMeaning == "pt"
    assert "AnatomicRegionSequence[0].CodeMeaning" in _repairs(result)


def test_residual_identifier_that_cannot_be_repaired_quarantines(phi_ds, key):
    phi_ds.Modality = str(phi_ds.PatientID)  # Type 1 coded string: no repair keeps the object valid
    with pytest.raises(QuarantineError) as info:
        deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert "Modality" in str(info.value)


def test_residual_check_ignores_vocabulary_and_placeholders(key):
    ds = phi_dataset()
    ds.PatientName = "Perfusion^Test"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "PERFUSION"]  # CS: defined terms, not PHI
    ds.InstitutionName = "OFFIS"
    ds.Manufacturer = "OFFIS"  # equipment maker, often the test site itself
    ds.SequenceName = "test"  # placeholder name component
    deidentify_dataset(ds, get_profile("basic"), key)


def test_nested_patient_name_in_unlisted_place_is_cleaned_by_table(phi_ds, key):
    ds = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    assert ds.SourceImageSequence[0].PatientName == ""


def test_missing_patient_id_still_gets_a_stable_pseudonym(key):
    a, b = phi_dataset(), phi_dataset()
    del a.PatientID, b.PatientID
    del a.OtherPatientIDs, b.OtherPatientIDs
    ra = deidentify_dataset(a, get_profile("basic"), key)
    rb = deidentify_dataset(b, get_profile("basic"), key)
    assert ra.new_patient_id == rb.new_patient_id and ra.dataset.PatientID == ra.new_patient_id
    assert ra.patient_pairs == {}


def test_deterministic_and_key_dependent(key, other_key):
    policy = get_profile("tcia")
    one = deidentify_dataset(phi_dataset(), policy, key).dataset
    two = deidentify_dataset(phi_dataset(), policy, key).dataset
    three = deidentify_dataset(phi_dataset(), policy, other_key).dataset
    assert one == two
    assert one.SOPInstanceUID != three.SOPInstanceUID and one.PatientID != three.PatientID


def test_recipe_replacement_and_addition(phi_ds, key):
    policy = apply_recipe_settings(get_profile("basic"), {
        "actions": {"StudyDescription": {"action": "R", "value": "RESEARCH"}, "(0008,0070)": "X"},
        "add": [{"tag": "ClinicalTrialSponsorName", "value": "ACME TRIAL"}],
    })
    ds = deidentify_dataset(phi_ds, policy, key).dataset
    assert ds.StudyDescription == "RESEARCH"
    assert "Manufacturer" not in ds
    assert ds.ClinicalTrialSponsorName == "ACME TRIAL"


def test_input_dataset_is_changed_in_place(phi_ds, key):
    original = copy.deepcopy(phi_ds)
    result = deidentify_dataset(phi_ds, get_profile("basic"), key)
    assert result.dataset is phi_ds and phi_ds != original


def test_residual_check_reads_encoded_values_in_their_character_set(key):
    from io import BytesIO

    import pydicom

    ds = phi_dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.SequenceName = "山田"  # unlisted, left encoded (ISO 2022) by the engine
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    reread = pydicom.dcmread(BytesIO(buffer.getvalue()))
    result = deidentify_dataset(reread, get_profile("basic"), key)  # found although still encoded
    assert "SequenceName" not in result.dataset
    assert _repairs(result)["SequenceName"]["action"] == "removed"


def test_every_basic_action_letter(key):
    from dataclasses import replace

    from medveil.policy.recipe import parse_overrides

    ds = phi_dataset()
    ds.StudyComments = "comment"
    ds.ImageComments = "comment"
    ds.ProtocolName = "T1 AX"
    ds.StudyID = "STUDY1"
    overrides = parse_overrides({"StudyComments": "X", "ImageComments": "Z", "ProtocolName": "D",
                                 "StudyID": "K", "FrameOfReferenceUID": "U"})
    result = deidentify_dataset(ds, replace(get_profile("basic"), overrides=overrides), key).dataset
    assert "StudyComments" not in result
    assert result.ImageComments == ""
    assert result.ProtocolName == DUMMY_TEXT
    assert result.StudyID == "STUDY1"
    assert result.FrameOfReferenceUID == pseudonymize_uid(key, FOR_UID)


def test_unknown_value_representation_quarantines(key, tmp_path):
    from pathlib import Path

    import pydicom
    import pydicom.data

    data = bytearray((Path(pydicom.data.__file__).parent / "test_files" / "CT_small.dcm").read_bytes())
    at = data.index(b"\x08\x00\x70\x00LO")  # Manufacturer, explicit VR
    data[at + 4:at + 6] = b"ZZ"
    path = tmp_path / "bad.dcm"
    path.write_bytes(bytes(data))
    ds = pydicom.dcmread(path)
    with pytest.raises(QuarantineError, match=r"unknown value representation in Manufacturer"):
        deidentify_dataset(ds, get_profile("basic"), key)


def test_every_action_code_has_one_handler_that_describes_itself():
    from medveil.engine.actions import ACTIONS, describe
    from medveil.policy.profile import ACTIONS as POLICY_ACTIONS

    assert set(ACTIONS) == set(POLICY_ACTIONS) | {"P"}
    for code in ACTIONS:
        assert describe(code) and ACTIONS[code].code == code


def test_profiles_lists_the_action_codes():
    from typer.testing import CliRunner

    from medveil.cli import app

    output = CliRunner().invoke(app, ["profiles"]).output
    assert "keep the reference sequence, replace the instance UIDs in it" in output
    assert "replace an identifier (Patient ID, Accession Number) with its keyed pseudonym" in output


def _sr_text_item(text: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", "Finding"
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    item.ConceptNameCodeSequence = Sequence([code])
    item.TextValue = text
    return item


def test_a_dummied_sequence_keeps_no_free_text_of_its_items(phi_ds, key):
    """Basic: Content Sequence and Graphic Annotation Sequence are D. Walking their items by
    the table kept every text it does not list (Text Value, Unformatted Text Value), so a
    report's 'seen by Dr Nick Riviera, 555-0199' was released; only Clean Structured
    Content / Clean Graphics may keep (cleaned) text there."""
    phi_ds.ContentSequence = Sequence([_sr_text_item("seen by Dr Nick Riviera, 555-0199")])
    text_object = Dataset()
    text_object.UnformattedTextValue = "Riviera"
    annotation = Dataset()
    annotation.TextObjectSequence = Sequence([text_object])
    phi_ds.GraphicAnnotationSequence = Sequence([annotation])
    result = deidentify_dataset(phi_ds, get_profile("basic"), key).dataset
    item = result.ContentSequence[0]
    assert item.TextValue == "ANONYMIZED"  # Type 1 in a TEXT item: a dummy, not removed
    assert item.ConceptNameCodeSequence[0].CodeValue == "121071"  # codes stay, so the tree still parses
    assert result.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED"


def test_clean_structured_content_still_keeps_cleaned_text(phi_ds, key):
    phi_ds.ContentSequence = Sequence([_sr_text_item("no change since 2019, seen by Dr HIBBERT")])
    result = deidentify_dataset(phi_ds, get_profile("tcia"), key).dataset
    text = result.ContentSequence[0].TextValue
    assert "no change since" in text and "HIBBERT" not in text


def test_an_original_uid_inside_free_text_is_not_released(phi_ds, key):
    """The residual check compared whole values with the remapped UIDs, so a study UID
    quoted inside text (a WADO URL, 'see study <uid>') reached the release unchanged."""
    phi_ds.add_new(0x00281055, "LO", f"ref {SOP_UID}")  # Window Center & Width Explanation
    phi_ds.ImageComments = f"see study {STUDY_UID} for priors"
    phi_ds.add_new(0x00287FE0, "UR", f"http://pacs/wado?studyUID={STUDY_UID}&x=1")
    for profile in ("basic", "tcia"):
        result = deidentify_dataset(copy.deepcopy(phi_ds), get_profile(profile), key)
        text = str(list(result.dataset.iterall()))
        assert STUDY_UID not in text and SOP_UID not in text, profile
        assert any(c == "repair" and "PixelDataProviderURL" in d for c, d in result.events)


def test_encrypted_attributes_are_not_released(phi_ds, key):
    """Encrypted Attributes Sequence (0400,0500) holds the original values an earlier
    de-identifier encrypted for re-identification (and what claims to be encrypted may
    not be); Table E.1-1 does not list it, so it was walked and its content kept."""
    item = Dataset()
    item.EncryptedContentTransferSyntaxUID = ExplicitVRLittleEndian
    item.EncryptedContent = b"SMITHERS^WAYLON "
    phi_ds.EncryptedAttributesSequence = Sequence([item])
    for profile in ("basic", "tcia"):
        result = deidentify_dataset(copy.deepcopy(phi_ds), get_profile(profile), key).dataset
        assert "EncryptedAttributesSequence" not in result, profile
