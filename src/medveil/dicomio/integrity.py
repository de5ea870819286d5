"""Is the input whole?  Structural checks that pydicom does not make.

pydicom reads a truncated file without complaint: it stops at the end of
the bytes, drops an element whose header is cut, and keeps a Pixel Data value
shorter than its declared length.  Writing such a dataset out would release
a partial object (or one with no pixels at all).  So before anything is
cleaned, medveil walks the encoded elements itself and checks that every
declared length fits in the file and every undefined-length sequence is
closed, and that native Pixel Data is as long as the image description says.
"""

from __future__ import annotations

import functools
import re
import struct
import zlib
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from medveil.dicomio.vr import LONG_VR_CODES
from medveil.engine.vrs import dictionary_vr, keyword_of
from medveil.errors import QuarantineError

_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_MAX_DEPTH = 64


#: Compiled once: the walk unpacks a few fields of every element of every input.
_LAYOUTS = {fmt: struct.Struct(fmt) for order in "<>" for fmt in (order + "HH", order + "L", order + "H")}


class _Truncated(Exception):
    pass


class _Broken(Exception):
    """The lengths are inside the file but do not add up (an item or sequence overruns its parent)."""


#: Pixel Data, Float Pixel Data, Double Float Pixel Data: their encoded values are located
#: so that input and output can be compared byte for byte.
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)

#: Text value representations and the most characters one value may hold (PS3.5 Table 6.2-1);
#: None where the standard sets no limit below the length field's.
_TEXT_LIMITS: dict[bytes, int | None] = {
    b"AE": 16, b"AS": 4, b"CS": 16, b"DA": 8, b"DS": 16, b"DT": 26, b"IS": 12, b"LO": 64, b"LT": 10240,
    b"PN": 64 * 3 + 2, b"SH": 16, b"ST": 1024, b"TM": 14, b"UC": None, b"UI": 64, b"UR": None, b"UT": None,
}
#: Text VRs that hold one value (a backslash is text there, not a separator).
_SINGLE_VALUED = frozenset({b"LT", b"ST", b"UT", b"UR"})
#: Control characters a value may not hold: every one but ESC (ISO 2022 code extensions) ...
_CONTROL = re.compile(rb"[\x00-\x1a\x1c-\x1f]")
#: ... and, in the free-text VRs, also TAB, LF, FF and CR (PS3.5 6.1.3).
_CONTROL_IN_TEXT = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_FREE_TEXT = frozenset({b"LT", b"ST", b"UT"})
_UID = re.compile(rb"[0-9.]*")
BINARY_IN_TEXT = "binary bytes in a text value"
#: A short-VR value this much longer than its limit is not a sloppy export but a crafted or broken file:
#: splitting it into names and words would cost work per byte, so the file is refused unparsed.
FAR_TOO_LONG = "far longer than"
_FAR_FACTOR, _FAR_FLOOR = 16, 4096
TWICE = "appears twice (the first value is hidden)"
NOT_ITS_VR = "holds characters its VR cannot hold"
#: What numbers, dates, times and ages may be written with (PS3.5 6.2), generously: the separators
#: and spaces of old exports pass; letters do not (a name in Acquisition Number is not a number).
_ALPHABETS = {vr: re.compile(pattern) for vr, pattern in {
    b"IS": rb"[0-9+\- \\]*", b"DS": rb"[0-9+\-.eE \\]*", b"DA": rb"[0-9.\- \\]*",
    b"TM": rb"[0-9.: \-\\]*", b"DT": rb"[0-9.+\- \\]*", b"AS": rb"[0-9DWMY \\]*"}.items()}
NOT_WHOLE_VALUES = "not a whole number of values"
OTHER_VR = "written with another VR than the dictionary's"
#: Writers keep a dataset's tags ascending (PS3.5 7.1); one tag out of that order is most often a tag
#: whose bits were altered, moving a value (an address) under an attribute that is kept.
OUT_OF_ORDER = "out of ascending tag order (its tag may have been altered)"
#: A value cut back to its own bytes that still holds a whole element header: the cut was not where
#: the stretch began (a length extended to end inside an element), so elements (a Patient's Name)
#: stay hidden where nothing reads them, and the text cleaner would not know their values: the file
#: is refused.
ELEMENTS_INSIDE = "holds element headers (its length was stretched over other elements)"
#: Bytes per value of the fixed-size VRs.
_VALUE_SIZES = {b"US": 2, b"SS": 2, b"UL": 4, b"SL": 4, b"FL": 4, b"FD": 8, b"AT": 4, b"SV": 8, b"UV": 8,
                b"OW": 2, b"OF": 4, b"OD": 8, b"OL": 4, b"OV": 8}


@dataclass(frozen=True)
class Nonconformity:
    """A value that breaks its VR in a way that can hide other data.

    ``path`` leads to the element: tags, with the item index after each
    sequence tag (``(seq_tag, item, tag)``); ``what`` names the rule broken.
    Both are safe to show: neither quotes the value.
    """

    path: tuple[int, ...]
    what: str

    @property
    def hides_data(self) -> bool:
        """True for the breach a value stretched over other elements always shows."""
        return self.what in (BINARY_IN_TEXT, NOT_WHOLE_VALUES, NOT_ITS_VR, OTHER_VR, OUT_OF_ORDER)

    @property
    def refuses_file(self) -> bool:
        """True for a value so far beyond its VR that the file is refused before it is parsed further,
        an attribute that appears twice (the first value is invisible to everything after), and a value
        that still holds element headers after the elements at its end were put back."""
        return self.what.startswith(FAR_TOO_LONG) or self.what in (TWICE, ELEMENTS_INSIDE)

    def where(self) -> str:
        """The element's name: keywords (or tags), with item indices, e.g. ``ContentSequence[2].TextValue``."""
        parts: list[str] = []
        for position, step in enumerate(self.path):
            if position % 2:
                parts[-1] += f"[{step}]"
            else:
                parts.append(keyword_of(step) or f"({step >> 16:04X},{step & 0xFFFF:04X})")
        return ".".join(parts)

    def describe(self) -> str:
        return f"{self.where()}: {self.what}"


@dataclass(frozen=True)
class Swallowed:
    """A value whose length covered the elements after it, and where those elements really are.

    ``path`` leads to the element, as in :class:`Nonconformity`; its own value
    is the first ``keep`` bytes at ``value_start``; the bytes from ``start``
    to ``end`` are whole elements of the same encoding, which belong beside it.
    """

    path: tuple[int, ...]
    value_start: int
    keep: int
    start: int
    end: int
    implicit: bool
    little: bool


#: Streams up to this size are searched for whole elements at their end; candidates tried at most.
_SCANNED_STREAM, _MAX_SPLITS = 16 << 20, 8
#: The groups where identifying attributes live, as the first bytes of an element header.
_GROUPS = bytes([0x08, 0x10, 0x18, 0x20, 0x28, 0x32, 0x38, 0x40])
_VR_NAMES = b"|".join(re.escape(name) for name in sorted(_TEXT_LIMITS) + sorted(_VALUE_SIZES) + [b"SQ", b"UN", b"OB"])


@functools.lru_cache(maxsize=4)
def _header_pattern(implicit: bool, little: bool) -> re.Pattern:
    """Where an element of a standard group may start inside a value (cheap to search, then verified)."""
    group = b"[" + re.escape(_GROUPS) + b"]\x00" if little else b"\x00[" + re.escape(_GROUPS) + b"]"
    if implicit:
        return re.compile(group + b"..(?:..\x00\x00)" if little else group + b"..\x00\x00..", re.DOTALL)
    return re.compile(group + b"..(?:" + _VR_NAMES + b")", re.DOTALL)


def _fixed_multiplicity(tag: int) -> int | None:
    """The dictionary's Value Multiplicity of *tag* when it is one number ("1", "3"); else None."""
    from pydicom.datadict import dictionary_VM

    try:
        vm = dictionary_VM(tag)
    except KeyError:
        return None
    return int(vm) if vm.isdigit() else None


def _starts_with_element(data: bytes, offset: int, implicit: bool, little: bool) -> bool:
    """A plausible element header at *offset*: a known public tag (and, explicit, its VR's letters)."""
    group, element = struct.unpack_from("<HH" if little else ">HH", data, offset)
    if group & 1 or group == 0:
        return group & 1 == 1 and element >= 0x0010  # a private creator or element
    if dictionary_vr(group << 16 | element) is None:
        return False
    return implicit or data[offset + 4:offset + 6].isalpha()


def _nonconformity(vr: bytes, value: bytes) -> str | None:
    """What makes *value* unfit for its text *vr*, judged on its bytes; None when it conforms.

    The checks are the ones a value that swallowed the elements after it
    cannot pass: those elements' headers are binary (a tag's high byte is
    zero for every standard group), and a value stretched over them is
    longer than its VR allows.  Trailing NUL and space padding is allowed.
    """
    body = value.rstrip(b"\x00 ")
    if not body:
        return None
    control = _CONTROL_IN_TEXT if vr in _FREE_TEXT else _CONTROL
    if control.search(body):
        return BINARY_IN_TEXT
    if vr == b"UI":
        if not _UID.fullmatch(body) or any(len(v) > 64 for v in body.split(b"\\")):
            return "not a UID"
        return None
    alphabet = _ALPHABETS.get(vr)
    if alphabet is not None and not alphabet.fullmatch(body):
        return NOT_ITS_VR
    limit = _TEXT_LIMITS.get(vr)
    if limit is None:
        return None
    values = [body] if vr in _SINGLE_VALUED else body.split(b"\\")
    # Limits count characters; a multi-byte character set spends up to four bytes on one.
    slack = 1 if body.isascii() else 4
    longest = max(len(v) for v in values)
    if longest > max(_FAR_FLOOR, _FAR_FACTOR * limit):
        return f"{FAR_TOO_LONG} {vr.decode()} allows"
    if longest > limit * slack:
        return f"longer than {vr.decode()} allows"
    return None


class _Walker:
    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)
        self.regions: dict[int, tuple[int, int]] = {}
        self.findings: list[Nonconformity] = []
        #: Where trailing zero padding begins, if the file ends with some (see :func:`zero_padding_start`).
        self.padding: int | None = None
        #: Values that swallowed the elements after them, with where those elements are.
        self.swallowed: list[Swallowed] = []

    def _unpack(self, fmt: str, offset: int) -> tuple:
        layout = _LAYOUTS[fmt]
        if offset + layout.size > self.size:
            raise _Truncated
        return layout.unpack_from(self.data, offset)

    def dataset(self, offset: int, end: int | None, implicit: bool, little: bool, depth: int,
                stop_at_item_end: bool = False, path: tuple[int, ...] = ()) -> int:
        """Walk elements from *offset* up to *end* (which they must fill exactly); returns the offset after them."""
        if depth > _MAX_DEPTH:
            raise _Truncated
        order = "<" if little else ">"
        limit = self.size if end is None else end
        seen: set[int] = set()
        tags: list[int] = []
        while offset < limit:
            group, element = self._unpack(order + "HH", offset)
            tag = group << 16 | element
            if tag in seen and group != 0xFFFE:
                self.findings.append(Nonconformity(path + (tag,), TWICE))
            seen.add(tag)
            if group != 0xFFFE:
                tags.append(tag)
            if tag == 0 and depth == 0 and self.data.count(0, offset) == self.size - offset:
                self.padding = offset  # nothing but zeros to the end: padding, not elements
                return offset
            if tag == _ITEM_END and stop_at_item_end:
                return offset + 8
            if group == 0xFFFE:
                raise _Truncated  # a delimiter where an element should be
            if implicit:
                (length,) = self._unpack(order + "L", offset + 4)
                vr, header = None, 8
            else:
                vr = self.data[offset + 4:offset + 6]
                if len(vr) < 2:
                    raise _Truncated
                if vr in LONG_VR_CODES:
                    (length,) = self._unpack(order + "L", offset + 8)
                    header = 12
                else:
                    (length,) = self._unpack(order + "H", offset + 6)
                    header = 8
            offset += header
            start = offset
            here = path + (tag,)
            if length == _UNDEFINED:
                if vr in (b"OB", b"OW") or (implicit and tag in PIXEL_TAGS):
                    offset = self.fragments(offset, little)  # encapsulated pixel data
                else:
                    # A sequence; an undefined-length UN holds one encoded implicit VR little endian.
                    unknown = vr == b"UN"
                    offset = self.items(offset, None, implicit or unknown, little or unknown, depth + 1, here)
            else:
                offset += length
                if offset > limit:
                    raise _Broken if end is not None and offset <= self.size else _Truncated
                self.value(tag, vr, start, offset, implicit, little, depth, here)
            if depth == 0 and tag in PIXEL_TAGS:
                self.regions[tag] = (start, offset)
        if stop_at_item_end:
            raise _Truncated  # the item was never closed
        if end is not None and offset != end:
            raise _Broken
        self.findings.extend(Nonconformity(path + (tag,), OUT_OF_ORDER) for tag in out_of_order(tags))
        return offset

    def value(self, tag: int, vr: bytes | None, start: int, end: int, implicit: bool, little: bool,
              depth: int, path: tuple[int, ...]) -> None:
        """Check one defined-length value: descend into a sequence, hold text to its VR."""
        known = dictionary_vr(tag) if not tag >> 16 & 1 else None
        if vr == b"SQ" or (known == "SQ" and vr in (None, b"UN")):
            # UN with a dictionary VR of SQ holds an implicit VR little endian sequence.
            as_implicit = implicit or vr == b"UN"
            self.items(start, end, as_implicit, little or vr == b"UN", depth + 1, path)
            return
        if vr is None:
            vr = known.encode("ascii") if known and len(known) == 2 else None
        elif known and len(known) == 2 and vr != b"UN" and known != "UN" and vr != known.encode("ascii"):
            # Real exports agree with the dictionary (285 explicit VR files, not one mismatch); a
            # flipped bit in a tag moves a value (a name) under another attribute's tag, and shows so.
            self.findings.append(Nonconformity(path, OTHER_VR))
        size = _VALUE_SIZES.get(vr) if vr is not None else None
        if vr in _TEXT_LIMITS:
            what = _nonconformity(vr, self.data[start:end])
            if what == BINARY_IN_TEXT:
                body = self.data[start:end]
                control = _CONTROL.search(body)
                assert control is not None  # BINARY_IN_TEXT means a control byte was found
                first = control.start()
                if self.recover(path, start, end, range(max(0, first - 3), first + 1), implicit, little, depth):
                    return
            if what is not None:
                self.findings.append(Nonconformity(path, what))
        elif size is not None:
            assert vr is not None  # only a known VR has a value size
            length = end - start
            # A value of an O* VR is one stream of any length; the numeric VRs hold VM values.
            count = _fixed_multiplicity(tag) if not tag >> 16 & 1 and not vr.startswith(b"O") else None
            if count is not None and length > count * size and \
                    self.recover(path, start, end, (count * size,), implicit, little, depth):
                return
            if length % size or (count is not None and length > count * size):
                self.findings.append(Nonconformity(path, NOT_WHOLE_VALUES if length % size else BINARY_IN_TEXT))
            elif count is None and tag not in PIXEL_TAGS and length <= _SCANNED_STREAM:
                # A stream (a lookup table, an overlay) holds any bytes, so only whole elements at its
                # end give away that its length was stretched over them.
                splits = [m.start() - start for m in _header_pattern(implicit, little).finditer(
                    self.data, start + 2, end)][:_MAX_SPLITS]
                self.recover(path, start, end, splits, implicit, little, depth)

    def recover(self, path: tuple[int, ...], start: int, end: int, splits, implicit: bool, little: bool,
                depth: int) -> bool:
        """Find whole elements after the value's own bytes (at one of *splits*); record them if found.

        A length stretched over the elements after it leaves them intact
        inside the value: read from the right offset they are elements again,
        filling the value to its end.  Found, they are walked (their own
        values checked) and noted, so that the caller can put them back.
        """
        for keep in splits:
            if keep < 0 or start + keep >= end:
                continue
            trial = _Walker(self.data)
            try:
                trial.dataset(start + keep, end, implicit, little, depth)
            except (_Truncated, _Broken, struct.error):
                continue
            if not _starts_with_element(self.data, start + keep, implicit, little):
                continue
            parent = path[:-1]
            if self._holds_element(start, start + keep, implicit, little):
                self.findings.append(Nonconformity(path, ELEMENTS_INSIDE))
            self.findings.extend(Nonconformity(parent + f.path, f.what) for f in trial.findings)
            self.swallowed.append(Swallowed(path, start, keep, start + keep, end, implicit, little))
            self.swallowed.extend(Swallowed(parent + inner.path, inner.value_start, inner.keep, inner.start,
                                            inner.end, inner.implicit, inner.little) for inner in trial.swallowed)
            if depth == 0:
                self.regions.update(trial.regions)
            return True
        return False

    def _holds_element(self, start: int, end: int, implicit: bool, little: bool) -> bool:
        """Whether the bytes from *start* to *end* hold a plausible whole element header."""
        for match in _header_pattern(implicit, little).finditer(self.data, start + 2, end):
            if match.start() + 8 <= end and _starts_with_element(self.data, match.start(), implicit, little):
                return True
        return False

    def items(self, offset: int, end: int | None, implicit: bool, little: bool, depth: int,
              path: tuple[int, ...]) -> int:
        """Walk a sequence's items: up to its delimiter (*end* None) or filling exactly *end*."""
        order = "<" if little else ">"
        index = 0
        while end is None or offset < end:
            group, element = self._unpack(order + "HH", offset)
            (length,) = self._unpack(order + "L", offset + 4)
            tag = group << 16 | element
            offset += 8
            if tag == _SEQ_END and end is None:
                return offset
            if tag != _ITEM:
                raise _Broken if end is not None else _Truncated
            if length == _UNDEFINED:
                offset = self.dataset(offset, None, implicit, little, depth + 1, stop_at_item_end=True,
                                      path=path + (index,))
            else:
                if offset + length > self.size:
                    raise _Truncated
                if end is not None and offset + length > end:
                    raise _Broken
                offset = self.dataset(offset, offset + length, implicit, little, depth + 1,
                                      path=path + (index,))
            index += 1
        if offset != end:
            raise _Broken
        return offset

    def fragments(self, offset: int, little: bool) -> int:
        """Skip encapsulated pixel data: items of opaque bytes up to the sequence delimiter."""
        order = "<" if little else ">"
        while True:
            group, element = self._unpack(order + "HH", offset)
            (length,) = self._unpack(order + "L", offset + 4)
            tag = group << 16 | element
            offset += 8
            if tag == _SEQ_END:
                return offset
            if tag != _ITEM or length == _UNDEFINED:
                raise _Truncated
            offset += length
            if offset > self.size:
                raise _Truncated


def out_of_order(tags: list[int]) -> list[int]:
    """The tags that break a dataset's ascending order: at each descent, the one whose removal restores
    the order around it (both where neither or both would; the file is then repaired more than needed,
    never less)."""
    culprits: list[int] = []
    for i in range(1, len(tags)):
        if tags[i] > tags[i - 1]:
            continue
        too_high = i < 2 or tags[i - 2] < tags[i]  # dropping tags[i-1] leaves tags[i-2] < tags[i]
        too_low = i + 1 >= len(tags) or tags[i - 1] < tags[i + 1]  # dropping tags[i] leaves order
        if too_high or not too_low:
            culprits.append(tags[i - 1])
        if too_low or not too_high:
            culprits.append(tags[i])
    return list(dict.fromkeys(t for t in culprits if tags.count(t) == 1))


def dataset_start(data: bytes) -> int:
    """Offset of the first element after the preamble and the (explicit LE) meta group."""
    if data[128:132] == b"DICM":
        offset = 132
    elif data[:4] == b"DICM":
        offset = 4
    else:
        return 0
    walker = _Walker(data)
    while offset + 8 <= len(data):
        group, _ = struct.unpack_from("<HH", data, offset)
        if group != 0x0002:
            break
        vr = data[offset + 4:offset + 6]
        if vr in LONG_VR_CODES:
            (length,) = walker._unpack("<L", offset + 8)
            offset += 12 + length
        else:
            (length,) = walker._unpack("<H", offset + 6)
            offset += 8 + length
    if offset > len(data):
        raise _Truncated
    return offset


@dataclass
class Inspection:
    """What the structural walk learnt about an input."""

    #: Encoded values of the pixel data elements (tag -> a view into the file's bytes).
    pixels: dict[int, memoryview] = field(default_factory=dict)
    #: Values that break their VR in a way that can hide other data (see :class:`Nonconformity`).
    nonconforming: list[Nonconformity] = field(default_factory=list)
    #: Values whose length covered whole elements after them (see :class:`Swallowed`).
    swallowed: list[Swallowed] = field(default_factory=list)
    #: The bytes those offsets refer to: the file, or its inflated dataset when it is deflated.
    source: bytes = b""


def inspect(data: bytes, ds: Dataset) -> Inspection:
    """Raise QuarantineError if the encoded file is cut short, its lengths do not add up, or
    Pixel Data is incomplete; otherwise say where the pixels are and which values break their VR.

    Every element is walked, inside sequences and items of either length
    form: each item must fill its declared length exactly and each sequence
    its own.  Pixel values are views, not copies: on a 50 MB image a copy
    would be one more 50 MB held while the file is cleaned and written.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    try:
        start = dataset_start(data)
        if syntax == DeflatedExplicitVRLittleEndian:
            # Walk the inflated dataset (the caller checked its size against its budget);
            # its pixels are compared by value elsewhere, so no regions are kept.
            walker = _Walker(_inflate(data[start:]))
            walker.dataset(0, None, False, True, 0)
            walker.regions.clear()
        else:
            walker = _Walker(data)
            implicit, little = ds.original_encoding
            if implicit is None or little is None:
                implicit = syntax.is_implicit_VR if syntax.is_transfer_syntax else True
                little = syntax.is_little_endian if syntax.is_transfer_syntax else True
            # Some writers declare explicit VR and write implicit (or the reverse); pydicom
            # follows the bytes of the first element, and so does this check.
            vr = data[start + 4:start + 6]
            implicit = not (len(vr) == 2 and vr.isalpha() and vr.isupper())
            walker.dataset(start, None, implicit, little, 0)
    except (_Truncated, struct.error, zlib.error):
        raise QuarantineError("file is truncated or its element lengths do not fit the file") from None
    except _Broken:
        raise QuarantineError("element lengths do not add up: an item or sequence overruns its "
                              "declared length (a value may have swallowed the elements after it)") from None
    _check_native_pixels(ds, syntax)
    view = memoryview(data)
    return Inspection({tag: view[begin:end] for tag, (begin, end) in walker.regions.items()},
                      walker.findings, walker.swallowed, walker.data)


def zero_padding_start(data: bytes) -> int | None:
    """Where zero bytes that fill the file to its end begin, at a top-level element boundary.

    Some writers (and disk images) pad files with zeros.  Read as elements,
    every 8 zero bytes are an empty (0000,0000) element: 200 MB of padding
    would be 25 million of them, and parsing took minutes.  The padding
    carries nothing (group 0000 is not part of a stored dataset), so it is
    cut off before parsing.  None when the file does not end in padding, or
    its structure cannot be walked (:func:`inspect` then says why).
    """
    if len(data) < 16 or data[-8:] != bytes(8):
        return None
    try:
        start = dataset_start(data)
        meta = data[132:start] if data[128:132] == b"DICM" else b""
        little = _EXPLICIT_BIG_ENDIAN not in meta
        vr = data[start + 4:start + 6]
        implicit = not (len(vr) == 2 and vr.isalpha() and vr.isupper())
        if _DEFLATED in meta:
            return None
        walker = _Walker(data)
        walker.dataset(start, None, implicit, little, 0)
    except (_Truncated, _Broken, struct.error):
        return None
    return walker.padding


_EXPLICIT_BIG_ENDIAN = b"1.2.840.10008.1.2.2\x00"
_DEFLATED = b"1.2.840.10008.1.2.1.99"


def check_complete(data: bytes, ds: Dataset) -> dict[int, memoryview]:
    """:func:`inspect`'s pixel values, for callers that only need the structural verdict."""
    return inspect(data, ds).pixels


def _inflate(data: bytes) -> bytes:
    return zlib.decompress(data, -zlib.MAX_WBITS)


def _check_native_pixels(ds: Dataset, syntax: UID) -> None:
    if not any(tag in ds for tag in PIXEL_TAGS):
        # A cut exactly between two elements leaves a well-formed dataset; an image
        # description with no pixels after it is what such a cut looks like.
        if "Rows" in ds and "Columns" in ds and "BitsAllocated" in ds:
            raise QuarantineError("image description present but no Pixel Data (the file may be truncated)")
        return
    if "PixelData" not in ds or (syntax.is_transfer_syntax and syntax.is_compressed):
        return
    from pydicom.pixels.utils import get_expected_length

    try:
        expected = int(get_expected_length(ds, "bytes"))
    except Exception:
        raise QuarantineError("Pixel Data present but the image pixel description is incomplete") from None
    if len(ds.get_item(0x7FE00010).value or b"") < expected:
        raise QuarantineError("Pixel Data is shorter than the image description requires (truncated)")
