"""medveil.text end to end: realistic descriptor values in, the clinical remainder out.

The table holds values of the kinds the Clean Descriptors / Clean Structured Content options
hand to the cleaner (series and study descriptions, protocol names, image comments, additional
patient history, medical alerts, SR text), written for these tests.  PHI-bearing rows expect
the clinical words to survive; clean rows expect the value back unchanged, character for
character.
"""

from __future__ import annotations

import itertools
import re

import pytest

from medveil.text import CleanResult, KnownIdentifiers, Span, TextCleaner, clean_text
from medveil.text import clean as clean_module
from medveil.text.spans import CATEGORIES

#: One file's own identifiers, shared by the table.
KNOWN = KnownIdentifiers(
    names=("SMITH^JOHN^A", "TAYLOR^MARGARET"),
    ids=("00123456", "ACC-2014-778"),
    dates=("19480321", "20140321"),
    institutions=("Springfield General Hospital",),
    addresses=("742 Evergreen Terrace^Springfield^IL^62704",),
    phones=("217-555-0134",),
)

CLEAN_VALUES = [
    "AX T2 FLAIR", "CT CHEST W/O CONTRAST", "0.0%", "P4^P101^S108^I0", "HEAD ROUTINE", "MR BRAIN W/WO",
    "L", "PORTABLE", "SEMI-ERECT", "SAG T1 MPRAGE", "AX DWI B1000", "ADC", "COR STIR",
    "t2_tse_tra_320", "ep2d_diff_3scan_trace_p2", "T1 VIBE DIXON FS POST", "CTA HEAD AND NECK",
    "CHEST PA AND LATERAL", "XR KNEE 3 VIEWS LT", "US ABDOMEN COMPLETE", "MAMMO SCREENING BILAT",
    "PET/CT WHOLE BODY FDG", "NM BONE SCAN WHOLE BODY", "Localizer", "3-Plane Loc", "Survey MST",
    "Head 5.0 J30s 3", "Body 1.0 Br40 3 -125.5", "DOSE REPORT", "Patient Protocol", "Version 1.2.3",
    "Matrix 512x512 FOV 240", "3.0T MR KNEE RT", "120 kVp 250 mAs", "DLP 845.2 mGy*cm",
    "TR 2000 TE 80", "Hx: headache, r/o mass", "S/P ORIF LEFT ANKLE, F/U",
    "Medical alert: allergy to iodinated contrast", "No known allergies", "Pregnancy status unknown",
    "Contrast reaction: hives", "Findings: No acute intracranial hemorrhage.",
    "Impression: Normal chest radiograph.", "Mild degenerative changes of the lumbar spine.",
    "The lungs are clear. Heart size is normal.", "MIP AX 10mm", "FIESTA CINE 4CH", "SWI mIP",
    "DTI 30 directions", "BOLD resting state", "ASL perfusion", "RT FOOT AP/OBL/LAT",
    "Knee MRI, right, without contrast", "Follow-up in 6 months", "Compared with prior study",
    "AX T2 FRFSE FS", "COR T1 FSE", "Breast MRI bilateral with and without contrast", "MRCP 3D",
    "Cardiac: LVEF 55%", "Calcium score 0", "IV contrast 100 ml Omnipaque 350", "Delay 70 sec",
    "Sag T2 Cube", "AX LAVA FLEX", "COR T2 HASTE", "Abdomen 1.0 B30f", "Grace period",
    "Mark the lesion", "Heart Lung", "Iris Coloboma", "Hunter syndrome", "Baker cyst left knee",
    "Turner syndrome follow-up", "Parkinson disease", "Hodgkin lymphoma staging",
    "Paget disease of bone", "Jones fracture", "Hill-Sachs lesion", "Salter Harris II fracture",
    "Chiari I malformation", "Fisher grade 3", "Hounsfield units", "ST SEGMENT ELEVATION",
    "1 CHEST CT", "CHEST, PA", "X RAY CHEST", "MAY LONG WHITE", "AX DIXON", "MR. Spectroscopy",
    "MS lesions, follow-up", "DWI b=1000 s/mm2", "SE 2 IM 45", "Scan 1 of 3",
]

PHI_VALUES = [
    ("CT CHEST W/O CONTRAST for Mary Smith 20140321", "CT CHEST W/O CONTRAST", ("name", "date")),
    ("MRI BRAIN per Dr. Taylor", "MRI BRAIN", ("name",)),
    ("Pt SMITH, JOHN DOB 03/21/1948 c/o headache", "Pt c/o headache", ("name", "date")),
    ("CT HEAD (Dr. Smith)", "CT HEAD", ("name",)),
    ("(Dr. Smith, CT)", "(CT)", ("name",)),
    ("Findings discussed with Dr. Adams on 03/21/2014 at 10:15.", "Findings discussed.", ("name", "date")),
    ("Referred by Dr. Adams, MD", "", ("name",)),
    ("Physician: Margaret Taylor", "", ("name",)),
    ("Tech: JD", "", ("name",)),
    ("MRN: 00123456", "", ("id",)),
    ("ID 123456 CT HEAD", "CT HEAD", ("id",)),
    ("Acc# ACC2014778 CHEST", "CHEST", ("id",)),
    ("SSN 123-45-6789", "", ("ssn",)),
    ("Tel 217-555-0134", "", ("phone",)),
    ("Results to fax (217) 555-0199", "Results", ("phone",)),
    ("Email jsmith@example.org", "", ("email",)),
    ("92 yo F with cough", "F with cough", ("age",)),
    ("Age 95, fall", "fall", ("age",)),
    ("093Y", "", ("age",)),
    ("Patient lives at 742 Evergreen Terrace, Springfield, IL 62704", "Patient lives", ("address",)),
    ("Outside films from St. Mary's Hospital", "Outside films", ("institution",)),
    ("Springfield General Hospital CT HEAD", "CT HEAD", ("institution",)),
    ("SGH MRI LUMBAR SPINE", "MRI LUMBAR SPINE", ("institution",)),
    ("Scanned at Mercy Medical Center", "Scanned", ("institution",)),
    ("JOHN A SMITH CT HEAD", "CT HEAD", ("name",)),
    ("J. Smith knee pain", "knee pain", ("name",)),
    ("Smith J 2014-03-21", "", ("name", "date")),
    ("CT ABD/PELVIS 3/21/14 JS", "CT ABD/PELVIS", ("date", "name")),
    ("MR 20140321101500", "MR", ("date",)),
    ("Study date 21-MAR-2014", "", ("date",)),
    ("Exam on March 21, 2014", "Exam", ("date",)),
    ("Dictated by Zbigniew Qwertz", "", ("name",)),
    ("cc: Dr. Lee", "", ("name",)),
    ("RAD225780X24 CHEST PA", "CHEST PA", ("id",)),
    ("PT-4667-37 MRI KNEE", "MRI KNEE", ("id",)),
    ("A79596346", "", ("id",)),
    ("Accession 55512345 CT", "CT", ("id",)),
    ("unix time 1395396900", "", ("timestamp",)),
    ("Follow-up for Ms Jones", "Follow-up", ("name",)),
    ("SMITH^JOHN^A", "", ("name",)),
    ("Smith, John", "", ("name",)),
    ("John Smith", "", ("name",)),
    ("Image comment: Taylor Margaret, 03/21/2014", "Image comment", ("name", "date")),
    ("Mr. O'Brien knee", "knee", ("name",)),
    ("Dra. García abdomen", "abdomen", ("name",)),
    ("Ana de la Cruz, 95 years old", "", ("name", "age")),
    ("Brain MRI - Taylor, Margaret - 2014/03/21 - routine", "Brain MRI - routine", ("name", "date")),
    ("Medical alert: patient John Smith allergic to penicillin",
     "Medical alert: patient allergic to penicillin", ("name",)),
    ("Additional history: 91 year old male, fall", "Additional history: male, fall", ("age",)),
    ("Referring: Dr Zhang Wei", "", ("name",)),
    ("Reviewed with radiologist Dr. Patel", "Reviewed", ("name",)),
    ("Tel: (217) 555-0134", "", ("phone",)),
    ("Contact: 217.555.0134", "", ("phone",)),
    ("PO Box 12, Springfield", "", ("address", "address")),
    ("Visit #A12345678", "", ("id",)),
    ("DR.JONES CT HEAD", "CT HEAD", ("name",)),
    ("CT HEAD W/O - REF PHYS: ROBERT BROWN", "CT HEAD W/O", ("name",)),
    ("seen in ER, called Dr. Nguyen 3/21/2014 10:15 PM", "seen in ER, called", ("name", "date")),
    ("CT performed at University of Chicago Medical Center", "CT performed", ("institution",)),
    ("Hospital of the University of Pennsylvania", "", ("institution",)),
    ("RADIOLOGY ASSOCIATES OF SPRINGFIELD", "", ("institution",)),
    ("Johns Hopkins Hospital, Baltimore, MD 21287", "", ("institution", "address")),
    ("Scan by tech MK", "Scan", ("name",)),
    ("Comparison: 01/15/2013 (Springfield General)", "Comparison", ("date", "institution")),
    ("Pt: Doe, Jane", "", ("name",)),
    ("Name: Robert Johnson DOB: 1/2/1950 MRN: 7788990", "", ("name", "date", "id")),
    ("CT HEAD 21 Mar 2014 Dr. K. Patel", "CT HEAD", ("date", "name")),
    ("Phone: +1 555 123 4567", "", ("phone",)),
    ("Patient phone 555.123.4567 ext 22", "Patient", ("phone",)),
    ("patient email: mary.smith@mail.com", "patient", ("email",)),
    ("Springfield, IL 62704", "", ("address",)),
    ("Houston, TX", "", ("address",)),
    ("PATIENT: ROBERT BROWN", "", ("name",)),
    ("Protocol by Emily Clark for research study", "Protocol for research study", ("name",)),
    ("Ref: Dr. H. Müller", "", ("name",)),
    ("Klinikum Rechts der Isar", "", ("institution",)),
    ("CT for Carter", "CT", ("name",)),
    ("ACCESSION NO. 4478812 MR SPINE", "MR SPINE", ("id",)),
    ("Brain^Routine^SMITH", "Brain^Routine", ("name",)),
    ("CHEST 2V; ordered by Dr. Wilson; 2014-03-21", "CHEST 2V", ("name", "date")),
    ("Margaret T. CT HEAD", "CT HEAD", ("name",)),
    ("Verified by: Maria Garcia, RT(R)", "", ("name",)),
    ("Images sent to Springfield General Hospital on 3/22/2014", "Images sent", ("institution", "date")),
    ("Head CT\nPhysician: Dr. Evans\nRoutine", "Head CT\nRoutine", ("name",)),
    ("Tel 217 555 0134 (home)", "(home)", ("phone",)),
    ("LEFT KNEE, JOHN SMITH, 20140321", "LEFT KNEE", ("name", "date")),
    ("KNEE RT - Acc 4478812 - Dr Ruiz", "KNEE RT", ("id", "name")),
    ("Hx of fall, pt is 97 years old", "Hx of fall, pt is", ("age",)),
    ("SR: Report signed by Dr. Olsen on 2014-03-22T09:30:00", "SR: Report", ("name", "date")),
    ("MRN 00123456 / Acc ACC-2014-778", "", ("id", "id")),
    ("Screening mammogram at St Luke's", "Screening mammogram", ("institution",)),
    ("Patient email j.smith@example.com, phone (217) 555-0134", "Patient", ("email", "phone")),
]


@pytest.fixture(scope="module")
def cleaner() -> TextCleaner:
    return TextCleaner(KNOWN)


def test_the_table_is_big_enough():
    assert len(CLEAN_VALUES) + len(PHI_VALUES) >= 100
    assert len(set(CLEAN_VALUES)) == len(CLEAN_VALUES)


@pytest.mark.parametrize("value", CLEAN_VALUES)
def test_clean_values_come_back_unchanged(cleaner, value):
    result = cleaner.clean(value)
    assert result.text == value
    assert result.categories == ()
    assert not result.changed


@pytest.mark.parametrize(("value", "expected", "categories"), PHI_VALUES)
def test_phi_is_removed_and_the_clinical_words_stay(cleaner, value, expected, categories):
    result = cleaner.clean(value)
    assert result.text == expected
    assert result.categories == categories
    assert result.changed


@pytest.mark.parametrize(("value", "expected"), [
    ("CT CHEST W/O CONTRAST for Mary Smith 20140321", "CT CHEST W/O CONTRAST 20140311"),
    ("Pt SMITH, JOHN DOB 03/21/1948 c/o headache", "Pt DOB 03/11/1948 c/o headache"),
    ("Exam on March 21, 2014", "Exam on March 11, 2014"),
    ("Study date 21-MAR-2014", "Study date 11-MAR-2014"),
    ("2014-03-21T10:15:00", "2014-03-11T10:15:00"),
    ("MR 20140321101500", "MR 20140311101500"),
    ("CT 3/21/14", "CT 3/11/14"),
    ("21.03.2014", "11.03.2014"),
    ("Comparison 03/21/2014 10:15", "Comparison 03/11/2014 10:15"),
    ("epoch 1395396900", "epoch 1394532900"),
    ("Findings discussed with Dr. Adams on 03/21/2014 at 10:15.",
     "Findings discussed on 03/11/2014 at 10:15."),
])
def test_dates_are_shifted_in_their_own_format(value, expected):
    result = clean_text(value, KNOWN, date_offset=-10)
    assert result.text == expected
    assert "date" in result.categories or "timestamp" in result.categories


def test_a_shifted_date_counts_as_a_change():
    result = clean_text("20140321", date_offset=-10)
    assert result == CleanResult("20140311", ("date",))
    assert result.changed


def test_a_zero_offset_keeps_the_date_but_still_reports_it():
    assert clean_text("CT 2014-03-21", date_offset=0) == CleanResult("CT 2014-03-21", ("date",))


def test_an_own_date_in_a_form_that_cannot_be_shifted_is_removed():
    """"140321" is only known to be a date because the file says so: no format to keep."""
    assert clean_text("Series 140321 CT", KNOWN, date_offset=-10).text == "Series CT"


def test_date_offset_must_be_whole_days():
    with pytest.raises(TypeError):
        TextCleaner(date_offset=1.5)
    with pytest.raises(TypeError):
        TextCleaner(date_offset=True)


def test_find_returns_sorted_non_overlapping_spans(cleaner):
    text = "CT for Mary Smith 20140321, MRN 00123456, John Smith"
    spans = cleaner.find(text)
    assert spans == sorted(spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(span.category in CATEGORIES for span in spans)
    assert [text[s.start:s.end] for s in spans] == ["Mary Smith", "20140321", "00123456", "John Smith"]


def test_find_carries_the_shifted_form_only_with_an_offset():
    assert TextCleaner().find("20140321") == [Span(0, 8, "date")]
    assert TextCleaner(date_offset=1).find("20140321") == [Span(0, 8, "date", "20140322")]


def test_categories_never_hold_the_text(cleaner):
    result = cleaner.clean("Mary Smith 555-123-4567 jsmith@example.org")
    assert set(result.categories) <= set(CATEGORIES)
    assert "Smith" not in repr(result.categories)


def test_empty_and_blank_values():
    assert clean_text("") == CleanResult("", ())
    assert clean_text("   ") == CleanResult("   ", ())


def test_the_other_kind_is_removed_verbatim():
    known = KnownIdentifiers(other=("Project Bluebird",))
    assert clean_text("CT HEAD project bluebird cohort", known) == CleanResult("CT HEAD cohort", ("other",))


def test_without_known_identifiers_the_generic_detectors_still_work():
    assert clean_text("CT for Mary Smith 20140321").text == "CT"


def test_generic_detectors_are_built_once_per_process(monkeypatch):
    TextCleaner()  # the first cleaner of the process may build them
    built = clean_module.generic_detectors.cache_info().misses
    calls = []
    original = re.compile

    def counting_compile(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(re, "compile", counting_compile)
    first, second = TextCleaner(), TextCleaner()
    assert clean_module.generic_detectors.cache_info().misses == built
    assert first._detectors is second._detectors
    assert calls == []  # no identifiers of the file's own: nothing to compile at all
    fresh = KnownIdentifiers(names=("QUIMBY^JOSEPH",), ids=("ZX-9911-42",))
    TextCleaner(fresh)
    assert calls  # a file's own identifiers need patterns of their own ...
    calls.clear()
    TextCleaner(fresh)
    assert calls == []  # ... compiled once per process: files of a series share them


def test_a_cleaner_handles_many_values(cleaner):
    """Sanity, not a benchmark: a thousand calls go through without error."""
    values = [value for value, _, _ in PHI_VALUES] + CLEAN_VALUES
    results = [cleaner.clean(values[i % len(values)]) for i in range(1000)]
    assert len(results) == 1000
