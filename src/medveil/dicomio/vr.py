"""Value Representation families (PS3.5 Table 6.2-1), defined once for every module that reads or writes.

The reader's structural walk and the writer need the VRs whose explicit-VR
header has a 4-byte length; the engine, the review capture and the dry run
need which VRs hold text and which hold bytes.
"""

from __future__ import annotations

from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

#: VRs whose explicit-VR element header has two reserved bytes and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
#: The same, as the two bytes a file holds (what the structural walks compare).
LONG_VR_CODES = frozenset(vr.encode("ascii") for vr in LONG_VRS)
#: VRs whose values are character strings.
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
                      "UC", "UI", "UR", "UT"})
#: VRs whose values are opaque bytes (or words) to medveil.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: The VRs of PS3.5 Table 6.2-1 (and pydicom's names for not yet resolved ambiguous ones,
#: such as "US or SS"); anything else in a file cannot be interpreted.
KNOWN_VRS = frozenset(vr.value for vr in VR)
