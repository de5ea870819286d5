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

import struct

from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from medveil.errors import QuarantineError

_LONG_VRS = frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)  # 4-byte length fields
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_MAX_DEPTH = 64


#: Compiled once: the walk unpacks a few fields of every element of every input.
_LAYOUTS = {fmt: struct.Struct(fmt) for order in "<>" for fmt in (order + "HH", order + "L", order + "H")}


class _Truncated(Exception):
    pass


#: Pixel Data, Float Pixel Data, Double Float Pixel Data: their encoded values are located
#: so that input and output can be compared byte for byte.
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


class _Walker:
    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)
        self.regions: dict[int, tuple[int, int]] = {}

    def _unpack(self, fmt: str, offset: int) -> tuple:
        layout = _LAYOUTS[fmt]
        if offset + layout.size > self.size:
            raise _Truncated
        return layout.unpack_from(self.data, offset)

    def dataset(self, offset: int, end: int | None, implicit: bool, little: bool, depth: int,
                stop_at_item_end: bool = False) -> int:
        """Walk elements from *offset*; returns the offset after the last one."""
        if depth > _MAX_DEPTH:
            raise _Truncated
        order = "<" if little else ">"
        limit = self.size if end is None else end
        while offset < limit:
            group, element = self._unpack(order + "HH", offset)
            tag = group << 16 | element
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
                if vr in _LONG_VRS:
                    (length,) = self._unpack(order + "L", offset + 8)
                    header = 12
                else:
                    (length,) = self._unpack(order + "H", offset + 6)
                    header = 8
            offset += header
            start = offset
            if length == _UNDEFINED:
                # An undefined-length UN holds a sequence encoded implicit VR little endian.
                unknown = vr == b"UN"
                offset = self.items(offset, implicit or unknown, little or unknown, depth + 1)
            else:
                offset += length
                if offset > limit:
                    raise _Truncated
            if depth == 0 and tag in PIXEL_TAGS:
                self.regions[tag] = (start, offset)
        if stop_at_item_end:
            raise _Truncated  # the item was never closed
        return offset

    def items(self, offset: int, implicit: bool, little: bool, depth: int) -> int:
        order = "<" if little else ">"
        while True:
            group, element = self._unpack(order + "HH", offset)
            (length,) = self._unpack(order + "L", offset + 4)
            tag = group << 16 | element
            offset += 8
            if tag == _SEQ_END:
                return offset
            if tag != _ITEM:
                raise _Truncated
            if length == _UNDEFINED:
                offset = self.dataset(offset, None, implicit, little, depth + 1, stop_at_item_end=True)
            else:
                offset += length
                if offset > self.size:
                    raise _Truncated


def _dataset_start(data: bytes) -> int:
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
        if vr in _LONG_VRS:
            (length,) = walker._unpack("<L", offset + 8)
            offset += 12 + length
        else:
            (length,) = walker._unpack("<H", offset + 6)
            offset += 8 + length
    if offset > len(data):
        raise _Truncated
    return offset


def check_complete(data: bytes, ds: Dataset) -> dict[int, memoryview]:
    """Raise QuarantineError if the encoded file is cut short or Pixel Data is incomplete.

    Returns the encoded values of the pixel data elements (tag -> a view into
    *data*), so the caller can prove that writing left them as they were.
    Views, not copies: on a 50 MB image a copy would be one more 50 MB held
    while the file is cleaned and written.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    try:
        start = _dataset_start(data)
        walker = _Walker(data)
        if syntax == DeflatedExplicitVRLittleEndian:
            pass  # a cut deflate stream already fails to inflate while reading
        else:
            implicit, little = ds.original_encoding
            if implicit is None or little is None:
                implicit = syntax.is_implicit_VR if syntax.is_transfer_syntax else True
                little = syntax.is_little_endian if syntax.is_transfer_syntax else True
            # Some writers declare explicit VR and write implicit (or the reverse); pydicom
            # follows the bytes of the first element, and so does this check.
            vr = data[start + 4:start + 6]
            implicit = not (len(vr) == 2 and vr.isalpha() and vr.isupper())
            walker.dataset(start, None, implicit, little, 0)
    except (_Truncated, struct.error):
        raise QuarantineError("file is truncated or its element lengths do not fit the file") from None
    _check_native_pixels(ds, syntax)
    view = memoryview(data)
    return {tag: view[begin:end] for tag, (begin, end) in walker.regions.items()}


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
