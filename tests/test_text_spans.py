"""Overlapping findings become one span, named after the longest."""

from __future__ import annotations

import pytest

from medveil.text.spans import CATEGORIES, Span, merge


def test_disjoint_and_touching_spans_stay_apart():
    spans = [Span(5, 8, "id"), Span(0, 5, "name")]
    assert merge(spans) == [Span(0, 5, "name"), Span(5, 8, "id")]


def test_overlaps_merge_into_their_union_named_after_the_longest():
    assert merge([Span(0, 5, "name"), Span(3, 20, "institution")]) == [Span(0, 20, "institution")]
    assert merge([Span(0, 8, "date"), Span(0, 8, "id")]) == [Span(0, 8, "date")]
    assert merge([Span(0, 10, "id"), Span(2, 4, "name"), Span(9, 12, "phone")]) == [Span(0, 12, "id")]


def test_ties_go_to_the_more_specific_category():
    assert merge([Span(0, 10, "id"), Span(0, 10, "timestamp")]) == [Span(0, 10, "timestamp")]
    assert CATEGORIES.index("date") < CATEGORIES.index("id")


def test_a_merged_span_loses_its_replacement_but_a_lone_one_keeps_it():
    assert merge([Span(0, 8, "date", "20140311")]) == [Span(0, 8, "date", "20140311")]
    assert merge([Span(0, 8, "date", "20140311"), Span(4, 12, "id")]) == [Span(0, 12, "date")]


def test_merge_of_nothing():
    assert merge([]) == []


@pytest.mark.parametrize(("start", "end", "category"), [(3, 3, "name"), (5, 2, "name"), (-1, 2, "id"),
                                                         (0, 1, "person")])
def test_invalid_spans_are_refused(start, end, category):
    with pytest.raises(ValueError):
        Span(start, end, category)


def test_the_text_package_reads_strings_and_imports_nothing_of_dicom():
    """text/ is str in, spans out: no imports of pydicom or of medveil's other packages."""
    import ast
    from pathlib import Path

    import medveil.text

    for path in Path(medveil.text.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("pydicom"), path.name
                assert not name.startswith("medveil.") or name.startswith("medveil.text"), (path.name, name)
