"""Value Representation families and cached data-dictionary lookups the engine uses."""

from functools import lru_cache

from pydicom.datadict import dictionary_VR, get_entry, keyword_for_tag
from pydicom.valuerep import VR

TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
                      "UC", "UI", "UR", "UT"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: The VRs of PS3.5 Table 6.2-1 (and pydicom's names for not yet resolved ambiguous ones,
#: such as "US or SS"); anything else in a file cannot be interpreted.
KNOWN_VRS = frozenset(vr.value for vr in VR)


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
