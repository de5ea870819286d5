"""Turning a real instance into one of a synthetic patient's, with PHI where exports carry it.

The order matters.  First everything that ties the file to its source is
rewritten consistently: UIDs (every attribute Table E.1-1 marks U, at any
depth, through one mapping so references still resolve), dates (shifted by
the distance between the source's study date and the synthetic one, so
intervals survive), person names, and any copy of the source's own
identifiers left in other attributes (deid-data's private tags repeat the
patient's name).  Then the synthetic PHI is planted: the patient, study and
series attributes a real export fills, descriptions with identifying text
next to clinical words, dates hidden in IDs and short strings, and nested
sequences.  Each planted value is recorded as an :class:`Expect`.

The rewriting is :mod:`medveil.synth.rewrite`, the planting :mod:`medveil.synth.plant`;
this module runs them in that order.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from medveil.evaluate.flatten import walk
from medveil.synth import precision
from medveil.synth.expect import Expect
from medveil.synth.plant import image_comments, patient_module, series_module, study_module
from medveil.synth.rewrite import (
    date_offset,
    holds,
    remap_uids,
    replace_copies,
    replace_person_names,
    set_character_set,
    shift_dates,
    source_identifiers,
)
from medveil.synth.target import InjectionTarget


def inject(ds: Dataset, ctx: InjectionTarget) -> list[Expect]:
    """Rewrite ``ds`` (already fully decoded) as ``ctx``'s instance; return what was planted."""
    copies: list[Expect] = []
    expects: list[Expect] = []
    originals = source_identifiers(ds, ctx)
    offset = date_offset(ds, ctx.study.date)
    remap_uids(ds, ctx.uid)
    shift_dates(ds, offset, ctx.study.date)
    replace_copies(ds, originals, copies)
    replace_person_names(ds, ctx, copies)
    patient_module(ds, ctx, expects)
    study_module(ds, ctx, expects)
    series_module(ds, ctx, expects)
    if "PixelData" in ds:
        image_comments(ds, ctx, expects)
    precision.plant(ds, ctx, expects)
    ds.SOPInstanceUID = ctx.uid(str(ds.SOPInstanceUID))
    ds.StudyInstanceUID = ctx.study.uid
    ds.SeriesInstanceUID = ctx.series.uid
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    set_character_set(ds, ctx.patient)
    # A value planted later replaces a copy found earlier: its own checks are the ones that hold.
    planted = {e.path for e in expects}
    current = {path: element for path, element in walk(ds, ())}
    return [e for e in copies if e.path not in planted and holds(current.get(e.path), e.action_text)] + expects
