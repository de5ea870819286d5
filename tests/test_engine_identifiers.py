"""The file's own identifiers, collected from a dataset once (medveil.engine.identifiers)."""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from medveil.engine import deidentify_dataset
from medveil.engine import identifiers as identifiers_module
from medveil.engine.identifiers import collect_known, known_once
from medveil.policy import get_profile
from medveil.text import TextCleaner


def _dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName = "SMITH^JOHN^A"
    ds.OtherPatientNames = ["SMYTHE^JON", "ANONYMIZED"]
    ds.ReferringPhysicianName = "ADAMS^ROBERT"
    ds.OperatorsName = ""
    ds.PatientID = "00123456"
    ds.AccessionNumber = "ACC-2014-778"
    ds.StudyID = "1"
    ds.PatientBirthDate = "19480321"
    ds.StudyDate = "20140321"
    ds.AcquisitionDateTime = "20140321101500.000"
    ds.InstitutionName = "Springfield General Hospital"
    ds.InstitutionAddress = "1 Hospital Drive^Springfield^IL^62704"
    ds.PatientAddress = "742 Evergreen Terrace"
    ds.PatientTelephoneNumbers = "217-555-0134"
    ds.StationName = "UNKNOWN"
    ds.StudyDescription = "CT HEAD"
    other = Dataset()
    other.PatientID = "OLD-55123"
    ds.OtherPatientIDsSequence = Sequence([other])
    observer = Dataset()
    observer.VerifyingObserverName = "OLSEN^KARI"
    ds.VerifyingObserverSequence = Sequence([observer])
    pname = Dataset()
    pname.ValueType = "PNAME"
    pname.PersonName = "NGUYEN^AN"
    container = Dataset()
    container.ContentSequence = Sequence([pname])
    ds.ContentSequence = Sequence([container])
    return ds


def test_collect_known_collects_top_level_and_nested_values():
    known = collect_known(_dataset())
    assert set(known.names) == {"SMITH^JOHN^A", "SMYTHE^JON", "ADAMS^ROBERT", "OLSEN^KARI", "NGUYEN^AN"}
    assert set(known.ids) == {"00123456", "ACC-2014-778", "1", "OLD-55123"}
    assert set(known.dates) == {"19480321", "20140321", "20140321101500.000"}
    assert known.institutions == ("Springfield General Hospital",)
    assert set(known.addresses) == {"1 Hospital Drive^Springfield^IL^62704", "742 Evergreen Terrace"}
    assert known.phones == ("217-555-0134",)
    assert known.other == ()


def test_collect_known_skips_unreadable_values():
    ds = _dataset()
    ds[0x00280010] = RawDataElement(Tag(0x00280010), "US", 3, b"abc", 0, True, True)  # odd length
    known = collect_known(ds)
    assert "00123456" in known.ids


def test_collect_known_feeds_the_cleaner():
    cleaner = TextCleaner(collect_known(_dataset()))
    # "ID" is a label of the removed value and goes with it
    assert cleaner.clean("Kari Olsen read; old ID 55123; J. Smith 3/21/14").text == "read; old"


def test_known_once_collects_at_first_use_only(monkeypatch):
    calls = []
    real = identifiers_module.collect_known
    monkeypatch.setattr(identifiers_module, "collect_known", lambda ds, policy=None: calls.append(1) or real(ds, policy))
    ds = _dataset()
    known = known_once(ds, None)
    assert calls == []
    assert known() is known()
    assert calls == [1]


def test_deidentify_dataset_uses_the_identifiers_it_is_given(monkeypatch, key):
    ds = _dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5.6.7.8.9"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.5.6.7.8.10", "1.2.3.4.5.6.7.8.11"
    ds.StudyDescription = "CT HEAD for Kari Olsen"
    policy = get_profile("tcia")
    known = known_once(ds, policy)
    expected = known()
    monkeypatch.setattr(identifiers_module, "collect_known", lambda *args: (_ for _ in ()).throw(AssertionError))
    result = deidentify_dataset(ds, policy, key, known=known)
    assert expected.names and "Olsen" not in str(result.dataset.StudyDescription)
