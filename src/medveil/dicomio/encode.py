"""Encoding a de-identified dataset as a DICOM file, byte for byte as pydicom would.

pydicom's writer spends most of its time on per-element machinery: a
temporary buffer, a tag object and a dispatch for every element, and a seek
back to fill in every item's length.  After de-identification most elements
are still in the form they were read in (raw bytes), and most of the rest are
short ASCII strings; both can be encoded with a struct and a join.

:func:`encode_file` does that for the elements it can vouch for and hands
every other element to pydicom's own ``write_data_element``.  Whole files
whose encoding needs pydicom's conversions (another transfer syntax than the
one the values were read in, a changed character set, an ambiguous VR,
deflate, big endian) go to ``Dataset.save_as`` unchanged.  The output is the
same bytes either way; ``tests/test_runner_encode.py`` checks that on every
corpus file.
"""

from __future__ import annotations

import bisect
import struct
from copy import deepcopy

from pydicom.charset import convert_encodings
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from medveil.dicomio.vr import LONG_VRS

_PIXEL_DATA = 0x7FE00010
_PIXEL_DATA_TAG = BaseTag(_PIXEL_DATA)  # the key type of Dataset._dict
_UNDEFINED = 0xFFFFFFFF
#: VRs whose str values pydicom writes as text: joined by backslashes, padded to even length.
_STRING_PAD = {"AE": b" ", "AS": b" ", "CS": b" ", "DA": b" ", "DT": b" ", "TM": b" ", "UR": b" ",
               "UI": b"\0", "LO": b" ", "SH": b" ", "ST": b" ", "LT": b" ", "UT": b" ", "UC": b" "}
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQUENCE_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_DEFAULT_ENCODING = "iso8859"  # pydicom's default_encoding


class _Unsupported(Exception):
    """The file needs one of pydicom's conversions: let pydicom write all of it."""


def encode_file(ds: Dataset) -> bytes:
    """The Part 10 file pydicom's ``ds.save_as(..., enforce_file_format=True)`` would write.

    *ds* needs a file meta group with a Transfer Syntax UID.  Like pydicom,
    this sets Pixel Data's undefined-length flag from the transfer syntax.
    Unlike pydicom, the 128-byte preamble is always zeros.
    """
    encapsulated_as_ob(ds)
    try:
        return _fast(ds)
    except _Unsupported:
        buffer = Chunks()
        ds.preamble = None  # written as zeros, as above
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()


def encapsulated_as_ob(ds: Dataset) -> bool:
    """Give encapsulated Pixel Data the VR OB (PS3.5 A.4); returns whether it was OW.

    Some writers store compressed Pixel Data as OW; readers keep the VR they
    read, and pydicom writes it back unchanged. Strict receivers (Orthanc)
    refuse such a file. Only the element's VR changes: its value, the
    fragments and their bytes, stay exactly as they were. Native Pixel Data
    keeps OW, where it is right for 16-bit samples.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    pixel = ds._dict.get(_PIXEL_DATA_TAG)
    if pixel is None or pixel.VR != "OW" or syntax is None or not syntax.is_encapsulated:
        return False
    if isinstance(pixel, RawDataElement):
        ds._dict[_PIXEL_DATA_TAG] = pixel._replace(VR="OB")
    else:
        pixel.VR = "OB"
    return True


def _fast(ds: Dataset) -> bytes:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if (syntax is None or syntax.is_private or not syntax.is_transfer_syntax or not syntax.is_little_endian
            or syntax == DeflatedExplicitVRLittleEndian):
        raise _Unsupported
    if any(tag >> 16 in (0, 2) for tag in ds._dict):
        raise _Unsupported  # pydicom refuses these; let it say so
    implicit = syntax.is_implicit_VR
    # The preamble is written as zeros whatever the input held: it is outside the data set,
    # nothing reads it as DICOM, and a dual-format file keeps another header (TIFF...) there.
    parts: list = [bytes(128), b"DICM", _meta_bytes(ds, meta)]
    pixel = ds._dict.get(_PIXEL_DATA_TAG)
    if pixel is not None and not isinstance(pixel, RawDataElement):
        pixel.is_undefined_length = syntax.is_compressed  # what dcmwrite does
    _dataset(parts, ds, implicit, _DEFAULT_ENCODING, top=syntax.is_compressed)
    return b"".join(parts)


#: The meta group medveil writes (engine.deidentify keeps these and no other).
_META_TAGS = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)


def _meta_bytes(ds: Dataset, meta) -> bytes:
    """The File Meta Information group as dcmwrite writes it, group length first."""
    tags = sorted(int(tag) for tag in meta.keys() if tag != 0x00020000)
    if tuple(tags) != _META_TAGS or meta.get("MediaStorageSOPClassUID") != ds.get("SOPClassUID") \
            or meta.get("MediaStorageSOPInstanceUID") != ds.get("SOPInstanceUID"):
        return _pydicom_meta_bytes(ds, meta)
    parts: list = []
    size = 0
    for tag in tags:
        elem = meta[tag]
        value = elem.value if tag == 0x00020001 else _string_value(elem, elem.VR)
        if not isinstance(value, bytes) or not value or elem.VR not in ("OB", "UI", "SH"):
            return _pydicom_meta_bytes(ds, meta)  # empty, non-ASCII or unusual: pydicom decides
        if len(value) % 2:
            value += b"\0"
        parts.append(_header(tag, elem.VR, len(value), False))
        parts.append(value)
        size += _header_size(elem.VR, False) + len(value)
    return struct.pack("<HH2sHI", 2, 0, b"UL", 4, size) + b"".join(parts)


def _pydicom_meta_bytes(ds: Dataset, meta) -> bytes:
    """The meta group prepared and written as dcmwrite does it (copy, fill in, validate)."""
    meta = deepcopy(meta)
    sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    current = meta.get("MediaStorageSOPClassUID")
    if current is None or (sop_class and sop_class != current):
        meta.MediaStorageSOPClassUID = sop_class
    current = meta.get("MediaStorageSOPInstanceUID")
    if current is None or (sop_instance and sop_instance != current):
        meta.MediaStorageSOPInstanceUID = sop_instance
    validate_file_meta(meta, enforce_standard=True)
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return buffer.getvalue()


def _dataset(parts: list, ds: Dataset, implicit: bool, parent_encoding, top: bool | None = None) -> int:
    """Append *ds*'s encoded elements to *parts*; returns their length in bytes.

    *top* is None for sequence items and, for the top-level dataset, whether
    the transfer syntax is compressed (Pixel Data's length is then undefined).
    """
    converts = ds.original_encoding != (implicit, True) or ds.original_character_set != ds._character_set
    encoding = None  # the dataset's character set, looked up only when an element needs pydicom
    length = 0
    elements = ds._dict
    for key in sorted(elements):
        elem = elements[key]  # looked up by the key object itself: no BaseTag.__eq__ call
        tag = int(key)  # and compared as a plain int from here on, for the same reason
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths are not written
        if isinstance(elem, RawDataElement) and elem.value is None:
            elem = ds[key]  # pydicom converts an empty raw value before writing (its VR may change)
        if isinstance(elem, RawDataElement):
            if converts:
                raise _Unsupported  # pydicom would re-encode it in the new encoding or character set
            length += _raw(parts, tag, elem, implicit, top)
            continue
        vr = elem.VR
        if vr is None or len(vr) != 2 or elem.is_buffered:
            raise _Unsupported  # an ambiguous VR is pydicom's to resolve
        if vr == "SQ":
            if encoding is None:
                encoding = _encoding_of(ds, parent_encoding)
            length += _sequence(parts, tag, elem, implicit, convert_encodings(encoding))
            continue
        value = _string_value(elem, vr) if tag != _PIXEL_DATA else None
        if value is not None:
            if not implicit and vr not in LONG_VRS and len(value) > 0xFFFF:
                raise _Unsupported  # pydicom writes it as UN, with a warning
            parts.append(_header(tag, vr, len(value), implicit))
            parts.append(value)
            length += _header_size(vr, implicit) + len(value)
            continue
        if encoding is None:
            encoding = _encoding_of(ds, parent_encoding)
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = implicit, True
        write_data_element(buffer, elem, encoding)
        encoded = buffer.getvalue()
        parts.append(encoded)
        length += len(encoded)
    return length


def _encoding_of(ds: Dataset, parent_encoding):
    return ds.get("SpecificCharacterSet", parent_encoding)


def _raw(parts: list, tag: int, elem: RawDataElement, implicit: bool, top: bool | None) -> int:
    value = elem.value
    assert value is not None  # read from bytes in memory: a raw value is never deferred
    undefined = elem.length == _UNDEFINED
    # dcmwrite gives Pixel Data an undefined length exactly when the syntax is compressed.
    if tag == _PIXEL_DATA and top is not None and (
            undefined != top or len(value) % 2 or (undefined and bytes(value[:4]) != _ITEM)):
        raise _Unsupported
    vr = elem.VR
    if not implicit and (vr is None or len(vr) != 2):
        raise _Unsupported
    size = len(value)
    if not implicit and not undefined and vr not in LONG_VRS and size > 0xFFFF:
        raise _Unsupported
    parts.append(_header(tag, vr, _UNDEFINED if undefined else size, implicit))
    parts.append(value)
    length = _header_size(vr, implicit) + size
    if undefined:
        parts.append(_SEQUENCE_END)
        length += len(_SEQUENCE_END)
    return length


def _sequence(parts: list, tag: int, elem, implicit: bool, encoding) -> int:
    undefined = elem.is_undefined_length
    at = len(parts)
    parts.append(None)  # the element's header, once the items' length is known
    size = 0
    for item in elem.value or ():
        item_at = len(parts)
        parts.append(None)
        item_size = _dataset(parts, item, implicit, encoding)
        if getattr(item, "is_undefined_length_sequence_item", False):
            parts[item_at] = _ITEM + b"\xff\xff\xff\xff"
            parts.append(_ITEM_END)
            item_size += len(_ITEM_END)
        else:
            parts[item_at] = _ITEM + struct.pack("<I", item_size)
        size += 8 + item_size
    parts[at] = _header(tag, "SQ", _UNDEFINED if undefined else size, implicit)
    if undefined:
        parts.append(_SEQUENCE_END)
        size += len(_SEQUENCE_END)
    return _header_size("SQ", implicit) + size


def _string_value(elem, vr: str) -> bytes | None:
    """The encoded value of an ASCII string element, or None when pydicom must encode it."""
    pad = _STRING_PAD.get(vr)
    if pad is None:
        return None
    value = elem.value
    if value is None or value == "":
        return b""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (MultiValue, list, tuple)):
        if not value:
            return b""
        if not all(isinstance(v, str) for v in value):
            return None
        text = "\\".join(value)
    else:
        return None
    if not text.isascii():
        return None  # the character set decides: pydicom's encoder
    encoded = text.encode("ascii")
    return encoded + pad if len(encoded) % 2 else encoded


def _header(tag: int, vr: str | None, length: int, implicit: bool) -> bytes:
    if implicit:
        return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)
    assert vr is not None  # explicit VR: callers refuse an element without one
    if vr in LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode("ascii"), length)


def _header_size(vr: str | None, implicit: bool) -> int:
    return 8 if implicit or vr not in LONG_VRS else 12


class Chunks:
    """A file in memory that keeps what it is given as a list of parts, joined once at the end.

    pydicom writes Pixel Data with one ``write`` of the dataset's own bytes
    object; keeping a reference to it, instead of copying it into a BytesIO
    that copies everything again whenever it grows, saves one to two copies
    of the image, which is what bounds memory on 50 MB+ files.  pydicom seeks
    back only to fill in the length of a sequence item it has just written, so
    an overwrite touches a few bytes of recent parts.
    """

    def __init__(self) -> None:
        self._parts: list[bytes | bytearray] = []
        self._starts: list[int] = []
        self._size = 0
        self._pos = 0

    def write(self, data) -> int:
        data = data if type(data) is bytes else bytes(data)  # bytearray/memoryview may change later
        if self._pos == self._size:
            self._starts.append(self._size)
            self._parts.append(data)
            self._size += len(data)
        else:
            self._overwrite(data)
        self._pos += len(data)
        return len(data)

    def _overwrite(self, data: bytes) -> None:
        if self._pos + len(data) > self._size:
            raise OSError("write across the end of the buffer after a seek")
        index = bisect.bisect_right(self._starts, self._pos) - 1
        offset, done = self._pos - self._starts[index], 0
        while done < len(data):
            part = self._parts[index]
            if not isinstance(part, bytearray):  # bytes: copy once into a writable part
                part = self._parts[index] = bytearray(part)
            n = min(len(part) - offset, len(data) - done)
            part[offset:offset + n] = data[done:done + n]
            done, index, offset = done + n, index + 1, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._pos + pos if whence == 1 else self._size + pos
        if not 0 <= self._pos <= self._size:
            raise OSError("seek outside the written data")
        return self._pos

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        out = b"".join(self._parts)
        self._parts, self._starts = [out], [0]
        return out
