"""The text cleaner inside the engine: C actions clean spans, SR trees are walked, private dates shift."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import BasicTextSRStorage

from conftest import PHI, phi_dataset
from medveil.engine import deidentify_dataset
from medveil.policy import Option, get_profile
from medveil.pseudonym import patient_offset


def test_descriptor_keeps_clinical_words_and_loses_the_name_and_date(key):
    ds = phi_dataset()
    ds.SeriesDescription = "CT CHEST W/O CONTRAST for Waylon Smithers 20200310"
    ds.ProtocolName = "AX T2 FLAIR"
    result = deidentify_dataset(ds, get_profile("tcia"), key)
    out = result.dataset
    assert out.SeriesDescription.startswith("CT CHEST W/O CONTRAST")
    assert "Smithers" not in out.SeriesDescription and "Waylon" not in out.SeriesDescription
    assert "20200310" not in out.SeriesDescription
    assert out.ProtocolName == "AX T2 FLAIR"
    assert out.StudyDescription == "CT CHEST W/O CONTRAST"
    cleaned = [detail for category, detail in result.events if category == "text-span-cleaned"]
    assert cleaned and all(d.startswith("SeriesDescription: ") for d in cleaned)
    assert not any("Smithers" in detail or "2020" in detail for _, detail in result.events)


def test_a_date_in_text_moves_with_the_patient(key):
    ds = phi_dataset()
    ds.ImageComments = "prior exam 20200310, compare"
    out = deidentify_dataset(ds, get_profile("tcia"), key).dataset
    assert "20200310" not in out.ImageComments
    assert out.ImageComments.startswith("prior exam ") and out.ImageComments.endswith(", compare")


def test_basic_profile_does_not_clean_it_removes(key):
    ds = phi_dataset()
    ds.SeriesDescription = "CT CHEST for Waylon Smithers"
    out = deidentify_dataset(ds, get_profile("basic"), key).dataset
    assert "SeriesDescription" not in out


def sr_dataset() -> Dataset:
    ds = phi_dataset()
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                    "SamplesPerPixel", "PhotometricInterpretation", "PixelData"):
        delattr(ds, keyword)
    ds.SOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.TextValue = "Mild cardiomegaly. Discussed with Dr. Julius Hibbert on 03/10/2020."
    name = Dataset()
    name.RelationshipType = "HAS OBS CONTEXT"
    name.ValueType = "PNAME"
    name.PersonName = PHI["ReferringPhysicianName"]
    when = Dataset()
    when.RelationshipType = "HAS OBS CONTEXT"
    when.ValueType = "DATE"
    when.Date = "20200310"
    code = Dataset()
    code.CodeValue = "C0205307"  # a UMLS concept: looks like an MRN to a pattern, is not one
    code.CodingSchemeDesignator = "UMLS"
    code.CodeMeaning = "Normal"
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "CODE"
    finding.ConceptCodeSequence = Sequence([code])
    ds.ContentSequence = Sequence([text, name, when, finding])
    return ds


def test_structured_report_text_is_cleaned_names_replaced_dates_shifted(key):
    policy = get_profile("tcia")
    result = deidentify_dataset(sr_dataset(), policy, key)
    items = result.dataset.ContentSequence
    assert "Mild cardiomegaly." in items[0].TextValue
    assert "Hibbert" not in items[0].TextValue and "03/10/2020" not in items[0].TextValue
    assert str(items[1].PersonName) != PHI["ReferringPhysicianName"]
    assert items[2].Date != "20200310" and len(items[2].Date) == 8
    assert items[3].ConceptCodeSequence[0].CodeValue == "C0205307"
    assert items[3].ConceptCodeSequence[0].CodeMeaning == "Normal"


def test_private_dates_and_timestamps_shift_by_the_knowledge_base(key):
    from medveil.policy.private_kb import load_private_kb

    kb = load_private_kb()
    timestamp = next(e for e in kb.by_disposition("oi") if e.vr == "SL" and not e.parents)
    ds = phi_dataset()
    block = ds.private_block(timestamp.group, timestamp.creator, create=True)
    block.add_new(timestamp.offset, "SL", 1_583_830_000)
    policy = get_profile("tcia")
    out = deidentify_dataset(ds, policy, key).dataset
    offset = patient_offset(key, PHI["PatientID"], policy.shift_range)
    shifted = out.private_block(timestamp.group, timestamp.creator)[timestamp.offset].value
    assert shifted == 1_583_830_000 + offset * 86400
    assert Option.RETAIN_SAFE_PRIVATE in policy.options


def test_graphic_annotation_text_is_cleaned_with_clean_graphics(key):
    ds = phi_dataset()
    text_object = Dataset()
    text_object.UnformattedTextValue = "L lung nodule - Smithers, Waylon"
    annotation = Dataset()
    annotation.TextObjectSequence = Sequence([text_object])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    policy = get_profile("tcia", extra_options=frozenset({Option.CLEAN_GRAPHICS}))
    out = deidentify_dataset(ds, policy, key).dataset
    cleaned = out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    assert cleaned.startswith("L lung nodule") and "Smithers" not in cleaned


def test_rt_structure_set_labels_keep_clinical_names_and_lose_phi(key):
    ds = phi_dataset()
    ds.StructureSetLabel = "PLAN Smithers 20200310"
    ds.StructureSetName = "PTV BOOST"
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROIName = "GTV PRIMARY"
    ds.StructureSetROISequence = Sequence([roi])
    out = deidentify_dataset(ds, get_profile("tcia"), key).dataset
    assert out.StructureSetLabel.startswith("PLAN") and "Smithers" not in out.StructureSetLabel
    assert "20200310" not in out.StructureSetLabel
    assert out.StructureSetName == "PTV BOOST"
    assert out.StructureSetROISequence[0].ROIName == "GTV PRIMARY"


def test_all_phi_type1_value_falls_back_to_the_basic_action(key):
    ds = phi_dataset()
    ds.StructureSetLabel = "Waylon Smithers"
    result = deidentify_dataset(ds, get_profile("tcia"), key)
    assert result.dataset.StructureSetLabel not in ("", "Waylon Smithers")  # D: a dummy, never empty
    assert ("clean-fallback", "StructureSetLabel: D") in result.events


def test_encapsulated_documents_are_not_released(key):
    import pytest

    from medveil.errors import QuarantineError

    ds = phi_dataset()
    ds.EncapsulatedDocument = b"%PDF-1.4 report for Waylon Smithers"
    with pytest.raises(QuarantineError, match="encapsulated document"):
        deidentify_dataset(ds, get_profile("tcia"), key)


def test_private_hash_disposition_remaps_uids_held_as_text(key):
    from medveil.policy.private_kb import load_private_kb
    from medveil.pseudonym import pseudonymize_uid

    entry = next(e for e in load_private_kb().by_disposition("h")
                 if not e.parents and e.creator and e.vr in ("LO", "SH", "UI"))
    ds = phi_dataset()
    block = ds.private_block(entry.group, entry.creator, create=True)
    block.add_new(entry.offset, "LO", "1.2.826.0.1.3680043.8.498.777")
    result = deidentify_dataset(ds, get_profile("tcia"), key)
    value = result.dataset.private_block(entry.group, entry.creator)[entry.offset].value
    assert value == pseudonymize_uid(key, "1.2.826.0.1.3680043.8.498.777")
    assert result.uid_pairs["1.2.826.0.1.3680043.8.498.777"] == value
