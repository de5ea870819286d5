"""Removing spans leaves tidy text: labels and glue go with their value, separators collapse,
brackets stay balanced, and text away from the spans is untouched."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medveil.text import TextCleaner
from medveil.text.allow import read_list
from medveil.text.spans import Span
from medveil.text.tidy import remove_spans


def cut(text: str, *parts: str, category: str = "name") -> str:
    """*text* without each of *parts* (each found once, left to right)."""
    spans, position = [], 0
    for part in parts:
        start = text.index(part, position)
        spans.append(Span(start, start + len(part), category))
        position = start + len(part)
    return remove_spans(text, spans)


@pytest.mark.parametrize(("text", "parts", "expected"), [
    ("CT HEAD Smith ROUTINE", ["Smith"], "CT HEAD ROUTINE"),
    ("CT HEAD - Smith - ROUTINE", ["Smith"], "CT HEAD - ROUTINE"),
    ("CT HEAD, Smith, routine", ["Smith"], "CT HEAD, routine"),
    ("CT HEAD Smith, routine", ["Smith"], "CT HEAD, routine"),
    ("Smith, CT HEAD", ["Smith"], "CT HEAD"),
    ("CT HEAD, Smith", ["Smith"], "CT HEAD"),
    ("CT HEAD - Smith", ["Smith"], "CT HEAD"),
    ("CT^Smith^HEAD", ["Smith"], "CT^HEAD"),
    ("Smith^John", ["Smith", "John"], ""),
    ("CT, Smith, Jones, routine", ["Smith", "Jones"], "CT, routine"),
    ("CT HEAD (Smith)", ["Smith"], "CT HEAD"),
    ("CT HEAD (Smith, 2014)", ["Smith", "2014"], "CT HEAD"),
    ("(Smith, CT)", ["Smith"], "(CT)"),
    ("[Smith] CT", ["Smith"], "CT"),
    ("Findings discussed with Smith.", ["Smith"], "Findings discussed."),
    ("Seen. Smith. Routine", ["Smith"], "Seen. Routine"),
    ("Line one\nSmith\nLine three", ["Smith"], "Line one\nLine three"),
    ("CT  HEAD   Smith", ["Smith"], "CT  HEAD"),
    ("Smith", ["Smith"], ""),
    ("- Smith -", ["Smith"], ""),
])
def test_separators_and_brackets(text, parts, expected):
    assert cut(text, *parts) == expected


@pytest.mark.parametrize(("text", "parts", "expected"), [
    ("DOB 03/21/1948 headache", ["03/21/1948"], "headache"),
    ("Pt DOB: 03/21/1948", ["03/21/1948"], "Pt"),
    ("MRN:12345 CT", ["12345"], "CT"),
    ("Acc# 12345 CT", ["12345"], "CT"),
    ("Tel. 555-1234", ["555-1234"], ""),
    ("Referred by Smith", ["Smith"], ""),
    ("Electronically signed by Smith on", ["Smith"], ""),
    ("Physician: Smith", ["Smith"], ""),
    ("CT HEAD Dr. Smith", ["Smith"], "CT HEAD"),
    ("MR Smith", ["Smith"], "MR"),  # the modality, not "Mr"
    ("Patient Smith presents", ["Smith"], "Patient presents"),
    ("Patient: Smith presents", ["Smith"], "presents"),
    ("Date 2014 CT", ["2014"], "CT"),
    ("Location: Springfield", ["Springfield"], ""),
    ("Location Springfield", ["Springfield"], "Location"),
])
def test_labels_go_with_their_value(text, parts, expected):
    assert cut(text, *parts) == expected


@pytest.mark.parametrize(("text", "parts", "expected"), [
    ("CT CHEST for Smith", ["Smith"], "CT CHEST"),
    ("MRI per Smith", ["Smith"], "MRI"),
    ("CT for Smith 2014", ["Smith"], "CT 2014"),  # the glue belongs to the name
    ("Smith and Jones", ["Smith", "Jones"], ""),
    ("CT Smith and Jones HEAD", ["Smith", "Jones"], "CT HEAD"),
    ("Smith and contrast", ["Smith"], "contrast"),
    ("Smith with contrast", ["Smith"], "with contrast"),
    ("for Smith: CT", ["Smith"], "CT"),
    ("Smith, MD reviewed", ["Smith"], "reviewed"),
    ("W/O CONTRAST Smith", ["Smith"], "W/O CONTRAST"),
])
def test_glue_words_and_credentials(text, parts, expected):
    assert cut(text, *parts) == expected


def test_glue_before_a_removed_date_goes_only_when_dangling():
    assert cut("scan on 2014", "2014", category="date") == "scan"
    assert cut("compared with 2014 study", "2014", category="date") == "compared with study"


def test_shifted_spans_are_replaced_and_keep_their_label():
    text = "CT DOB 03/21/1948 for Smith"
    spans = [Span(7, 17, "date", "03/11/1948"), Span(22, 27, "name")]
    assert remove_spans(text, spans) == "CT DOB 03/11/1948"


def test_no_spans_no_change():
    assert remove_spans("  odd   spacing -- kept ", []) == "  odd   spacing -- kept "


def test_nothing_alphanumeric_left_is_empty():
    assert cut("(Smith)", "Smith") == ""
    assert cut("Smith; ", "Smith") == ""


def test_no_double_blanks_or_dangling_separators_across_the_table():
    from test_text_clean import KNOWN, PHI_VALUES
    cleaner = TextCleaner(KNOWN)
    for value, _, _ in PHI_VALUES:
        text = cleaner.clean(value).text
        assert "  " not in text, value
        assert not re.match(r"[\s,;:^|/\-]", text) and not re.search(r"[\s,;:^|/\-]$", text), value
        assert text.count("(") == text.count(")"), value


CLINICAL_WORDS = sorted({w for w in read_list("clinical_terms.txt") if w.isalpha() and len(w) > 1})


@given(st.lists(st.sampled_from(CLINICAL_WORDS), min_size=1, max_size=6),
       st.sampled_from([" ", " - ", ", ", "^", "_"]), st.sampled_from([str.upper, str.title, str.lower]))
def test_clinical_vocabulary_is_never_touched(words, separator, case):
    text = separator.join(case(w) for w in words)
    assert TextCleaner().clean(text).text == text
