"""The text cleaner as the engine's C action: one attribute value (a string or a list) at a time.

The de-identification walker calls :func:`clean_element_value` for every
attribute whose decision is C (Clean Descriptors, Clean Structured Content,
Clean Graphics).  String values are cleaned span by span with the file's own
identifiers (collected before the walk changed anything) and, when dates are
retained modified, with the patient's date offset, so a date inside a
description moves with the file's other dates.  What was removed is recorded
as events naming the attribute and the span's category, never the text.

Values of other representations (person names, numbers, binary) are not
text to clean: returning None makes the walker fall back to the Basic
Profile action.
"""

from __future__ import annotations

from typing import Any, Protocol

CLEANABLE_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
#: Longer text is not cleaned span by span (the cleaner reads well under a megabyte a second, and
#: no report needs more than 64 K characters): the Basic Profile action for the attribute applies.
MAX_CLEANED_CHARACTERS = 1 << 16


class _CleaningContext(Protocol):
    def text_cleaner(self) -> Any: ...

    def event(self, category: str, detail: str) -> None: ...


def clean_element_value(keyword: str, vr: str, value: Any, ctx: _CleaningContext) -> Any:
    """The cleaned value (same shape: one string or a list), or None when not cleanable."""
    if vr not in CLEANABLE_VRS:
        return None
    if value is None or value == "":
        return value
    # pydicom's MultiValue by name: this package reads strings, not datasets.
    multiple = isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
    values = list(value) if multiple else [value]
    if sum(len(str(item)) for item in values) > MAX_CLEANED_CHARACTERS:
        ctx.event("text-too-long-to-clean", keyword or vr)
        return None
    cleaner = ctx.text_cleaner()
    cleaned: list[str] = []
    for item in values:
        result = cleaner.clean(str(item))
        for category in result.categories:
            ctx.event("text-span-cleaned", f"{keyword or vr}: {category}")
        cleaned.append(result.text)
    if multiple:
        kept = [item for item in cleaned if item]
        return kept
    return cleaned[0]
