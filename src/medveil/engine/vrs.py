"""Cached data-dictionary lookups the engine uses, and the VR families (defined in :mod:`medveil.dicomio.vr`)."""

from functools import lru_cache

from pydicom.datadict import dictionary_VR, get_entry, keyword_for_tag

from medveil.dicomio.vr import BINARY_VRS, KNOWN_VRS, TEXT_VRS  # noqa: F401  (the engine's VR families)


@lru_cache(maxsize=8192)
def keyword_of(tag: int) -> str:
    """The dictionary keyword of *tag*, or "" (cached: the walker asks for every element)."""
    return keyword_for_tag(tag)


@lru_cache(maxsize=8192)
def is_known(tag: int) -> bool:
    """True when the data dictionary (including repeating groups) knows *tag*."""
    try:
        get_entry(tag)
    except KeyError:
        return False
    return True


@lru_cache(maxsize=8192)
def dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def stored(ds, tag: int):
    """The element under *tag* as the dataset holds it (raw or converted), or None.

    What ``ds.get_item(tag)`` returns for a dataset read in full (medveil
    never defers values), without its per-call tag normalisation: the walker,
    the identifier collector and the residual scan each ask for every element
    of every item, and that normalisation cost more than the asking.
    """
    return ds._dict.get(tag)
