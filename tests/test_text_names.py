"""Names the file did not announce: titles, role labels, the gazetteer rule, credentials; and
the word lists behind them."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from medveil.text.allow import (
    clinical_terms,
    common_words,
    is_clinical,
    is_common,
    read_list,
)
from medveil.text.names import find_names, gazetteer, in_gazetteer
from medveil.text.spans import merge


def names(text: str) -> list[str]:
    return [text[s.start:s.end] for s in merge(find_names(text))]


@pytest.mark.parametrize(("text", "expected"), [
    ("Mary Smith", "Mary Smith"),
    ("MARY SMITH", "MARY SMITH"),
    ("CT for Mary Smith 2014", "Mary Smith"),
    ("SMITH, JOHN", "SMITH, JOHN"),
    ("SMITH^JOHN", "SMITH^JOHN"),
    ("J. Smith", "J. Smith"),
    ("J.A. Smith", "J.A. Smith"),
    ("Smith J", "Smith J"),
    ("JOHN A SMITH", "JOHN A SMITH"),
    ("JOHN L SMITH", "JOHN L SMITH"),
    ("for Carter", "Carter"),
    ("by Carter", "Carter"),
    ("pt Carter", "Carter"),
    ("patient CARTER", "CARTER"),
    ("per Garcia", "Garcia"),
    ("discussed with Carter", "Carter"),
    ("seen at Carter", "Carter"),
    ("Ana de la Cruz", "Ana de la Cruz"),
    ("Jean-Pierre Dubois", "Jean-Pierre Dubois"),
    ("José García", "José García"),
    ("JOSE GARCIA", "JOSE GARCIA"),
    ("Robert Brown", "Robert Brown"),
    ("Mary Long", "Mary Long"),
])
def test_gazetteer_names_fire_next_to_a_name_an_initial_or_a_cue(text, expected):
    assert names(text) == [expected]


@pytest.mark.parametrize("text", [
    "Carter", "HEAD CT Carter", "call Carter", "carter smith", "X RAY CHEST", "MAY LONG WHITE",
    "AX DIXON", "Grace period", "Brown fat", "L Carter", "R HAND", "Jones fracture", "Hunter syndrome",
    "Iris coloboma", "Heart Lung", "for Evaluation", "per Protocol", "with Contrast", "Baker cyst",
    "WHITE MATTER", "BROWN", "MR BRAIN", "MS lesions", "MRS voxel", "Dr.", "Tech: CT HEAD",
    "Referring physician", "Name: unknown", "Pt with cough", "CT for pain",
])
def test_what_is_not_a_name(text):
    assert find_names(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("MRI BRAIN per Dr. Taylor", "Dr. Taylor"),
    ("DR.SMITH", "DR.SMITH"),
    ("Dr J Smith", "Dr J Smith"),
    ("Dr. Waters", "Dr. Waters"),  # a radiographic view, but after a title a person
    ("Dr. Smith Will Call", "Dr. Smith"),
    ("Mr. O'Brien knee", "Mr. O'Brien"),
    ("MR. SMITH", "MR. SMITH"),
    ("Ms Jones", "Ms Jones"),
    ("Prof. Zyx", "Prof. Zyx"),
    ("Dra. García", "Dra. García"),
    ("Dr. Adams, MD", "Dr. Adams, MD"),
    ("Physician: Xylo Qwerty", "Xylo Qwerty"),
    ("Tech: JD", "JD"),
    ("TECH JD", "JD"),
    ("Referred by Zork", "Zork"),
    ("Dictated by: Quinn Vasquez", "Quinn Vasquez"),
    ("Electronically signed by Olsen, K", "Olsen, K"),
    ("Name: Zyx Wvu", "Zyx Wvu"),
    ("Radiologist Patel", "Patel"),
    ("Zhang Wei, MD", "Zhang Wei, MD"),
    ("SMITH MD", "SMITH MD"),
    ("Kowalski, PhD", "Kowalski, PhD"),
])
def test_titles_role_labels_and_credentials(text, expected):
    assert names(text) == [expected]


def test_the_cue_word_is_not_part_of_the_span():
    text = "Referred by Dr. Adams"
    assert names(text) == ["Dr. Adams"]
    assert names("Physician: Zyx") == ["Zyx"]


def test_gazetteer_data():
    names_ = gazetteer()
    assert len(names_) >= 5000
    clinical = clinical_terms()
    for word, kinds in names_.items():
        assert word == word.lower() and len(word) >= 3
        assert word not in clinical, word
        assert kinds <= {"first", "last", "common"} and kinds & {"first", "last"}
        if "common" not in kinds:
            assert word not in common_words(), word
    for word in ("may", "long", "white", "gray", "head", "chest", "brown", "ray", "dixon", "iris"):
        assert not in_gazetteer(word), word
    for word in ("smith", "john", "mary", "garcia", "müller", "muller", "josé", "jose", "carter"):
        assert in_gazetteer(word), word


REQUIRED_CLINICAL = [
    "t1", "t2", "flair", "dwi", "adc", "mprage", "swi", "stir", "gre", "se", "fse", "tse", "epi", "bold", "dti",
    "localizer", "scout", "survey", "w/o", "w/wo", "contrast", "gad", "iv", "l", "r", "lt", "rt", "left", "right",
    "bilateral", "ax", "sag", "cor", "axial", "sagittal", "coronal", "pa", "ap", "lat", "lateral", "oblique",
    "portable", "erect", "semi-erect", "supine", "routine", "stat", "hx", "r/o", "s/p", "f/u", "w/", "cta", "mra",
    "pet", "spect", "us", "cr", "dx", "mg", "nm", "xa",
]


def test_clinical_allow_list():
    terms = read_list("clinical_terms.txt")
    assert len(set(terms)) >= 500
    assert all(t == t.lower() for t in terms)
    for term in REQUIRED_CLINICAL:
        assert is_clinical(term), term
    assert is_clinical("SEMI-ERECT") and is_clinical("T2W_TSE") and is_clinical("AX.")
    assert not is_clinical("Smith") and not is_clinical("")


def test_common_words():
    assert len(common_words()) >= 1000
    assert is_common("the") and is_common("White") and is_common("HEAD")
    assert not is_common("Smith")


def test_the_data_files_say_how_they_were_made():
    for name in ("names.txt", "common_words.txt"):
        text = resources.files("medveil.text").joinpath("data").joinpath(name).read_text(encoding="utf-8")
        header = re.findall(r"^#.*$", text, re.MULTILINE)
        assert any("build_name_gazetteer.py" in line for line in header), name
