"""The file's own identifiers, collected once, before anything changes them.

Three steps of one file need the values of its identifying attributes: the pixel
step (burned-in text that repeats them is PHI), the text cleaner behind the C
actions (descriptions that repeat them) and, at the end, the verification gate
(values the policy keeps on purpose are no finding).  The values are read from
the dataset as it came in, so they must be collected before the walk changes it,
and collecting them walks every element at every depth: a step that collected
them again would repeat the walk with the same result.  :func:`known_once`
collects them on first use and hands every later caller the same
:class:`~medveil.text.KnownIdentifiers`.

This is where DICOM meets :mod:`medveil.text`, which knows nothing of datasets:
:func:`collect_known` reads the values (by dictionary VR for person names and
dates, by :func:`medveil.policy.identifying.identifying_kinds` for the rest) and
hands the text package plain strings.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import fields
from functools import cache

from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException
from pydicom.multival import MultiValue

from medveil.engine.vrs import dictionary_vr, keyword_of, stored
from medveil.policy import Policy
from medveil.policy.identifying import identifying_kinds, kept_identifying
from medveil.text import KnownIdentifiers
from medveil.text.forms import PLACEHOLDERS

#: A file's identifiers, or a function that collects them on first use.
KnownSource = KnownIdentifiers | Callable[[], KnownIdentifiers]


def collect_known(ds: Dataset, policy: Policy | None = None) -> KnownIdentifiers:
    """Collect from the dataset and every nested sequence item: every person name (by
    dictionary VR PN, whatever VR the file declares), date (DA) and date-time (DT), and
    the values of the ID, institution, address and telephone attributes of
    :func:`medveil.policy.identifying.identifying_kinds`.  With a *policy*, the attributes it
    keeps on purpose go to ``kept`` instead.  Empty values and placeholders are left out;
    values that cannot be read are skipped (the residual check still sees them)."""
    found: dict[str, dict[str, None]] = {f.name: {} for f in fields(KnownIdentifiers)}
    keeps = _kept_keywords(ds, policy)
    for kind, value, keyword in _walk(ds):
        value = value.strip(" \x00")
        if value.upper() not in PLACEHOLDERS:
            found["kept" if keyword in keeps else kind][value] = None
    return KnownIdentifiers(**{kind: tuple(values) for kind, values in found.items()})


def known_once(ds: Dataset, policy: Policy | None) -> Callable[[], KnownIdentifiers]:
    """A function returning *ds*'s identifiers, collected at its first call (most files
    never need them: no burned-in text, no C action) and remembered for the next."""
    return cache(lambda: collect_known(ds, policy))


def resolve_known(known: KnownSource | None, ds: Dataset, policy: Policy | None) -> KnownIdentifiers:
    """The identifiers *known* stands for, collected from *ds* when the caller gave none."""
    if known is None:
        return collect_known(ds, policy)
    return known() if callable(known) else known


def _kept_keywords(ds: Dataset, policy: Policy | None) -> frozenset[str]:
    if policy is None:
        return frozenset()
    sop_class = str(ds.get("SOPClassUID", "") or "").strip().rstrip("\x00")
    return frozenset(kept_identifying(policy, sop_class))


#: PN, DA and DT values are found by VR; the rest by keyword (identifying_kinds()).
_VR_KINDS = {"PN": "names", "DA": "dates", "DT": "dates"}
#: What converting a broken raw element raises in pydicom (bad lengths, bad encodings, ...).
_UNREADABLE = (BytesLengthException, struct.error, ValueError, TypeError, KeyError, AttributeError,
               UnicodeError, OverflowError, LookupError)


def _values(value) -> Iterator[str]:
    if value is None:
        return
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("latin-1")
        text = str(item)
        yield from (part for part in text.split("\\") if part.strip(" \x00"))


_INTERESTING_VRS = frozenset(_VR_KINDS) | {"SQ"}


def _walk(ds: Dataset) -> Iterator[tuple[str, str, str]]:
    keyword_kinds = identifying_kinds()
    for tag in list(ds.keys()):
        # Decide from the raw element's VR (or the dictionary's) and the keyword before
        # converting: most elements hold nothing to collect, and converting every value
        # of every file would cost more than the rest of the de-identification.
        raw = stored(ds, tag)
        vr = (raw.VR if raw is not None else None) or dictionary_vr(int(tag)) or "UN"
        keyword = keyword_of(int(tag))
        if vr not in _INTERESTING_VRS and keyword not in keyword_kinds and dictionary_vr(int(tag)) != "PN":
            continue
        try:
            elem = ds[tag]
        except _UNREADABLE:  # a value pydicom cannot convert: nothing to collect from it
            continue
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _walk(item)
            continue
        # A person name stored under another VR (LO, SH, LT in some exports) is still a name.
        by_dictionary = "names" if dictionary_vr(int(tag)) == "PN" else None
        kind = _VR_KINDS.get(elem.VR) or by_dictionary or keyword_kinds.get(keyword)
        if kind is None:
            continue
        try:
            values = list(_values(elem.value))
        except _UNREADABLE:
            continue
        for value in values:
            yield kind, value, keyword
