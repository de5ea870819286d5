"""Policy: the packaged table, option precedence, IOD-dependent choices, profiles and recipes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from pydicom.uid import BasicTextSRStorage, CTImageStorage, EnhancedCTImageStorage

from conftest import ROOT, shared_path
from medveil.errors import PolicyError
from medveil.policy import Option, Policy, get_profile, load_recipe, load_table
from medveil.policy.iod import load_attribute_types, resolve_compound
from medveil.policy.recipe import parse_overrides

PATIENT_NAME, STUDY_DATE, STUDY_UID = 0x00100010, 0x00080020, 0x0020000D
STATION_NAME, INSTITUTION_NAME, DETECTOR_CAL_DATE = 0x00081010, 0x00080080, 0x0018700C


def test_table_is_the_2025b_edition_with_every_row():
    table = load_table()
    assert table.edition == "2025b"
    assert len([r for r in table.rules if r.source == "standard"]) == 647
    assert {r.tag for r in table.rules if r.source == "supplement"} >= {"00100033", "00100034"}
    assert table.lookup(PATIENT_NAME).basic == "Z"
    assert table.lookup(STUDY_UID).basic == "U"


def test_repeating_groups_and_private_rows_match_by_pattern():
    table = load_table()
    assert table.lookup(0x60023000).name == "Overlay Data"
    assert table.lookup(0x601E4000).name == "Overlay Comments"
    assert table.lookup(0x50100200).name == "Curve Data"
    assert table.lookup(0x00291010).name == "Private Attributes"
    assert table.lookup(0x60010010).name == "Private Attributes"  # odd group: private, not overlay
    assert table.lookup(0x60020010) is None  # an overlay attribute the table does not list


def test_generator_reproduces_the_packaged_file(tmp_path):
    source = shared_path("standard", "ps315_table_e1_1.json")
    out = tmp_path / "table.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_tables.py"), "--table", str(source),
                    "--out", str(out)], check=True, capture_output=True)
    packaged = ROOT / "src" / "medveil" / "policy" / "data" / "ps315_e1_1.json"
    assert out.read_bytes() == packaged.read_bytes()


def test_every_compound_row_has_type_knowledge():
    types = load_attribute_types()
    compound = [r for r in load_table().rules if "/" in r.basic and "U*" not in r.basic]
    assert compound
    missing = [r.name for r in compound if int(r.tag, 16) not in types.attributes]
    assert missing == []
    for rule in compound:
        for sop in (CTImageStorage, EnhancedCTImageStorage, BasicTextSRStorage, "1.2.3"):
            assert resolve_compound(rule.basic, int(rule.tag, 16), sop) in rule.basic.split("/")


def test_compound_resolution_by_type():
    assert resolve_compound("X/Z/D", INSTITUTION_NAME, CTImageStorage) == "X"
    assert resolve_compound("Z/D", 0x00080023, CTImageStorage) == "Z"
    assert resolve_compound("Z/D", 0x00080023, BasicTextSRStorage) == "D"
    assert resolve_compound("X/Z/U*", 0x00081140, CTImageStorage) == "U*"


def test_option_columns_override_the_basic_action():
    basic = get_profile("basic")
    assert basic.decide(STUDY_DATE, CTImageStorage).action == "Z"
    full = get_profile("basic", extra_options=frozenset({Option.RETAIN_LONG_FULL_DATES}))
    assert full.decide(STUDY_DATE, CTImageStorage).action == "K"
    modified = get_profile("basic", extra_options=frozenset({Option.RETAIN_LONG_MODIFIED_DATES}))
    decision = modified.decide(STUDY_DATE, CTImageStorage)
    assert (decision.action, decision.source, decision.fallback) == (
        "C", Option.RETAIN_LONG_MODIFIED_DATES, "Z")
    uids = get_profile("basic", extra_options=frozenset({Option.RETAIN_UIDS}))
    assert uids.decide(STUDY_UID, CTImageStorage).action == "K"
    device = get_profile("basic", extra_options=frozenset({Option.RETAIN_DEVICE_IDENTITY}))
    assert device.decide(STATION_NAME, CTImageStorage).action == "K"


def test_clean_beats_keep_when_two_options_disagree():
    policy = get_profile("basic", extra_options=frozenset(
        {Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_LONG_MODIFIED_DATES}))
    decision = policy.decide(DETECTOR_CAL_DATE, CTImageStorage)
    assert decision.action == "C" and decision.source is Option.RETAIN_LONG_MODIFIED_DATES


def test_full_and_modified_dates_exclude_each_other():
    with pytest.raises(PolicyError):
        Policy(name="x", options=frozenset({Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES}))
    # asking for Full Dates on top of a profile with Modified Dates swaps them
    policy = get_profile("tcia", extra_options=frozenset({Option.RETAIN_LONG_FULL_DATES}))
    assert Option.RETAIN_LONG_MODIFIED_DATES not in policy.options


def test_profiles():
    tcia = get_profile("tcia")
    assert {Option.RETAIN_LONG_MODIFIED_DATES, Option.RETAIN_PATIENT_CHARACTERISTICS,
            Option.RETAIN_DEVICE_IDENTITY, Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT,
            Option.RETAIN_SAFE_PRIVATE, Option.CLEAN_PIXEL_DATA} == tcia.options
    assert get_profile("basic").options == frozenset()
    with pytest.raises(PolicyError):
        get_profile("nonesuch")
    with pytest.raises(PolicyError):
        Option.parse("retain_everything")


def test_policy_pickles_for_worker_processes():
    import pickle

    policy = get_profile("tcia")
    clone = pickle.loads(pickle.dumps(policy))
    assert clone.decide(STUDY_DATE, CTImageStorage) == policy.decide(STUDY_DATE, CTImageStorage)


def test_recipe_file(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "profile": "basic",
        "options": ["retain_uids"],
        "actions": {"PatientSex": "K", "(0010,1010)": "X", "(0019,10xx)": "X",
                    '(0019,"GEMS_ACQU_01",92)': "K", "StudyDescription": {"action": "R", "value": "R1"}},
        "add": [{"tag": "(0012,0010)", "value": "SPONSOR"}],
        "pseudonymize": ["AccessionNumber", "StudyID"],
        "patient_id": {"prefix": "MV", "digits": 8},
        "date_shift": {"min_days": -30, "max_days": -10},
    }))
    policy = load_recipe(recipe)
    assert Option.RETAIN_UIDS in policy.options
    assert policy.decide(0x00100040, CTImageStorage).action == "K"
    assert policy.decide(0x00101010, CTImageStorage).action == "X"
    assert policy.decide(0x00081030, CTImageStorage).value == "R1"
    assert policy.decide_private(0x0019, "GEMS_ACQU_01", 0x92).action == "K"
    assert policy.decide_private(0x0019, "GEMS_ACQU_01", 0x93).action == "X"
    assert policy.pseudonymize == {"PatientID": "patient-id", "AccessionNumber": "accession",
                                   "StudyID": "study-id"}
    assert policy.patient_id_format.prefix == "MV" and policy.shift_range.min_days == -30
    assert policy.additions[0].tag == 0x00120010 and policy.additions[0].vr == "LO"
    # the CLI's profile wins over the recipe's
    assert load_recipe(recipe, profile="tcia").name == "tcia"


@pytest.mark.parametrize("content, message", [
    ({"actions": {"NoSuchKeyword": "X"}}, "unknown attribute"),
    ({"actions": {"PatientName": "Q"}}, "unknown action"),
    ({"actions": {'(0010,"CREATOR",10)': "K"}}, "odd group"),
    ({"frobnicate": 1}, "unknown recipe keys"),
    ({"pseudonymize": ["PatientName"]}, "cannot pseudonymise"),
    ({"options": ["retain_everything"]}, "unknown option"),
    ({"actions": {"PatientName": {"action": "R"}}}, "needs a value"),
    ({"patient_name": "{patient_name}"}, "only use the field"),
    ({"patient_id": {"prefix": "M V"}}, "prefix"),
    ({"date_shift": {"min_days": 5, "max_days": 1}}, "min_days"),
])
def test_recipe_errors_are_clear(tmp_path, content, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(content))
    with pytest.raises(PolicyError, match=message):
        load_recipe(recipe)


def test_tag_patterns():
    overrides = parse_overrides({"(60xx,0022)": "K"})
    assert overrides.for_tag(0x60020022).action == "K"
    assert overrides.for_tag(0x60020023) is None


def test_tcia_retains_safe_private_elements_by_the_knowledge_base():
    from medveil.policy import get_profile
    from medveil.policy.private_kb import load_private_kb

    policy = get_profile("tcia")
    assert policy.private_dictionary is load_private_kb()
    keep = next(e for e in load_private_kb().by_disposition("k") if not e.parents and e.creator)
    delete = next(e for e in load_private_kb().by_disposition("d") if not e.parents and e.creator)
    assert policy.decide_private(keep.group, keep.creator, keep.offset).action == "K"
    assert policy.decide_private(delete.group, delete.creator, delete.offset).action == "X"
    assert policy.decide_private(0x0009, "NO SUCH CREATOR", 0x10).action == "X"
    assert get_profile("basic").private_dictionary is None


def test_identifying_attributes_are_derived_from_the_table_with_listed_exceptions():
    from pydicom.datadict import tag_for_keyword

    from medveil.policy import identifying

    exceptions = identifying._exceptions()
    derived = identifying.derived_kinds()
    kinds = identifying.identifying_kinds()
    # Every exception names a real attribute, and says something the rule does not already say.
    for section in ("derived_but_not_used", "not_hunted", "also_hunted", "never_searched", "not_verified"):
        assert all(tag_for_keyword(k) is not None for k in exceptions[section]), section
    assert set(exceptions["derived_but_not_used"]) <= set(derived)
    assert all(derived.get(k) != kind for k, kind in exceptions["added"].items())
    assert set(exceptions["not_hunted"]) <= set(kinds)
    # The rule's kinds on rows everyone knows.
    assert derived["PatientName"] == "names" and derived["PatientID"] == "ids"
    assert derived["IssuerOfPatientID"] == "institutions" and derived["InstitutionAddress"] == "addresses"
    assert derived["PatientTelephoneNumbers"] == "phones" and derived["StationName"] == "institutions"
    assert "StudyID" in kinds and "StudyID" not in identifying.hunted_keywords()
    assert "PatientBirthDate" in identifying.hunted_keywords()
    assert identifying.never_searched() < identifying.not_verified()
