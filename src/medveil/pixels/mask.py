"""Masking burned-in text: overwrite given boxes of pixels, and nothing else.

Detection (which boxes hold text) is someone else's job; this module only
makes those pixels unreadable while every other stored sample keeps its exact
bits, so the image stays diagnostically what it was.

* Native Pixel Data (Implicit/Explicit VR Little Endian, Deflated, Explicit
  VR Big Endian) is edited byte by byte in place, see
  :mod:`medveil.pixels.native`.
* RLE Lossless is decoded, masked and re-encoded under the same transfer
  syntax, then verified by decoding again, see :mod:`medveil.pixels.rle`.
* Every other encapsulated syntax is decoded (pylibjpeg's plugins), masked
  as native data and re-encoded losslessly: in its own transfer syntax where
  pydicom has an encoder for it (JPEG 2000 Lossless), otherwise as RLE
  Lossless.  Lossy syntaxes (JPEG Baseline, JPEG 2000) are stored
  uncompressed after masking: compressing them again would lose more, and
  decoding once loses nothing that was not already lost.  Either way the
  change of transfer syntax is reported in the result (``transfer_syntax_kept``
  and ``note``), never made silently.

Header attributes (Burned In Annotation, a new SOP Instance UID, ...) are left
to the caller, which knows whether the boxes covered all of the text.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from medveil.engine.vrs import dictionary_vr
from medveil.errors import InvalidValueError, safe_reason
from medveil.pixels.jpeg import (
    JpegBlockError,
    mask_jpeg_blocks,
    masked_pixel_region,
    read_coefficients,
)
from medveil.pixels.layout import MaskingNotSupported, PixelLayout
from medveil.pixels.native import Region, clear_high_bits, mask_native_bytes
from medveil.pixels.rle import mask_rle

__all__ = [
    "MaskBox",
    "MaskResult",
    "MaskingNotSupported",
    "clear_overlay_bits",
    "mask_dataset",
    "overlay_groups",
    "remove_icon",
    "remove_overlay",
    "remove_overlays",
]

_ICON_IMAGE_SEQUENCE = 0x00880200
#: Encapsulated syntaxes whose decoded pixels are exactly what was encoded.
LOSSLESS_SYNTAXES = frozenset({RLELossless, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless,
                               JPEG2000Lossless, HTJ2KLossless, HTJ2KLosslessRPCL})


@dataclass(frozen=True, slots=True)
class MaskBox:
    """A rectangle of pixels to mask; x2 and y2 are exclusive.

    *frame* is a 0-based frame index, or ``None`` for the same place in every
    frame (the usual case: text burned in by the modality repeats per frame).
    """

    x1: int
    y1: int
    x2: int
    y2: int
    frame: int | None = None


@dataclass(frozen=True, slots=True)
class MaskResult:
    """What masking did.

    *changed_bytes* counts bytes of the native sample representation whose
    value differs afterwards (for RLE, of the decoded frames); a box already
    filled with the fill value changes nothing.  *frames* is how many frames
    had at least one box applied.
    """

    changed_bytes: int
    frames: int
    transfer_syntax_kept: bool
    reencoded: bool
    note: str
    #: Pixels beyond the padded boxes that decode differently: whole JPEG blocks are
    #: masked, and chroma upsampling blends across the next block's edge.
    margin: int = 0


def mask_dataset(
    ds: Dataset,
    boxes: Sequence[MaskBox],
    *,
    padding: int = 0,
    fill: str | int = "min",
) -> MaskResult:
    """Overwrite the pixels inside *boxes* (grown by *padding*) with *fill*.

    *fill* is ``"min"`` (the darkest value for the photometric
    interpretation), ``"zero"`` or a stored value; see
    :meth:`PixelLayout.fill_values`.  Boxes are clipped to the image after
    padding.  Either the whole mask is applied or, on any error, *ds* is left
    unchanged.
    """
    if not boxes:
        return MaskResult(0, 0, True, False, "no boxes given")
    if padding < 0:
        raise InvalidValueError("padding must not be negative")
    if "PixelData" not in ds:
        for keyword in ("FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                raise MaskingNotSupported(f"masking {keyword} is not supported")
        raise MaskingNotSupported("the dataset has no (7FE0,0010) Pixel Data")

    syntax = _transfer_syntax(ds)
    if syntax in (JPEGBaseline8Bit, JPEGExtended12Bit) and fill == "min":
        try:
            return _mask_jpeg_blocks(ds, boxes, padding=padding)
        except JpegBlockError:
            pass  # this codestream cannot be masked block by block: decode it instead
    if syntax.is_encapsulated and syntax != RLELossless:
        return _mask_decoded(ds, boxes, syntax, padding=padding, fill=fill)
    layout = PixelLayout.from_dataset(ds)
    if fill == "min" and layout.photometric == "PALETTE COLOR":
        fill = _darkest_palette_index(ds)
    values = layout.fill_values(fill)
    regions = _regions(boxes, layout, padding)
    frames = len({region[0] for region in regions})

    if not regions:
        return MaskResult(0, 0, True, False, "every box fell outside the image")

    if not syntax.is_encapsulated:
        element = ds["PixelData"]
        before = bytes(element.value)
        buffer = bytearray(before)
        swap_ow = (
            not syntax.is_little_endian
            and layout.bits_allocated == 8
            and element.VR == "OW"
        )
        mask_native_bytes(
            buffer,
            layout,
            regions,
            values,
            byteorder="little" if syntax.is_little_endian else "big",
            swap_ow=swap_ow,
        )
        element.value = bytes(buffer)
        changed = _diff(before, buffer)
        return MaskResult(
            changed, frames, True, False, f"masked in place ({syntax.name})"
        )

    encoded, changed = mask_rle(ds, layout, regions, values)
    ds.PixelData = encoded
    return MaskResult(
        changed,
        frames,
        True,
        True,
        "decoded, masked and re-encoded as RLE Lossless",
    )


def _darkest_palette_index(ds: Dataset) -> int:
    """The stored value a palette maps to its darkest colour: 'min' for PALETTE COLOR."""
    from pydicom.pixels import apply_color_lut

    try:
        descriptor = ds.RedPaletteColorLookupTableDescriptor
        entries = int(descriptor[0]) or 65536
        first = int(descriptor[1])
        indices = np.arange(first, first + entries, dtype=np.uint16 if ds.BitsAllocated > 8 else np.uint8)
        colours = apply_color_lut(indices, ds).astype(np.int64).sum(axis=-1)
    except Exception as exc:  # noqa: BLE001  (missing or malformed palette)
        raise MaskingNotSupported("the palette cannot be read to find its darkest entry: "
                                  + safe_reason(exc)) from None
    return int(indices[int(np.argmin(colours))])


def _mask_jpeg_blocks(ds: Dataset, boxes: Sequence[MaskBox], *, padding: int) -> MaskResult:
    """Mask whole 8x8 blocks (MCUs) of each JPEG frame; every other block keeps its coefficients.

    The codestream is not decompressed: the masked blocks become flat black
    and the scan is Huffman-coded again with its own tables, so nothing else
    in the image loses anything more.  Proven by reading the coefficients back:
    every block outside the masked cells must be unchanged.
    """
    layout = PixelLayout.from_dataset(ds)
    if layout.bits_stored > 8 or layout.photometric == "MONOCHROME1":
        raise JpegBlockError("only 8-bit images with black as the minimum are masked block by block")
    regions = _regions(boxes, layout, padding)
    if not regions:
        return MaskResult(0, 0, True, False, "every box fell outside the image")
    frames = list(generate_frames(ds.PixelData, number_of_frames=layout.frames))
    if len(frames) != layout.frames:
        raise JpegBlockError("the fragments do not hold one frame each")
    changed = 0
    masked_frames = set()
    for index, frame in enumerate(frames):
        here = [(x1, y1, x2, y2) for f, x1, y1, x2, y2 in regions if f == index]
        if not here:
            continue
        masked = mask_jpeg_blocks(frame, here, fill=0)
        cells = masked_pixel_region(frame, here)
        _check_blocks(frame, masked, cells)
        frames[index] = masked
        changed += int(cells.sum()) * layout.samples
        masked_frames.add(index)
    ds.PixelData = encapsulate(frames, has_bot=_has_offset_table(ds.PixelData))
    ds["PixelData"].is_undefined_length = True
    return MaskResult(changed, len(masked_frames), True, False,
                      "masked whole 8x8 blocks in the JPEG codestream; every other block kept its coefficients",
                      margin=32)


def _check_blocks(before: bytes, after: bytes, cells: np.ndarray) -> None:
    """Every block outside the masked MCUs keeps its quantised coefficients.

    Masking takes whole MCUs (with chroma subsampling, an MCU holds several
    luma blocks), so a block counts as touched when its MCU holds a masked
    pixel; at the right and bottom edges an MCU also covers the codestream's
    padding beyond the image.
    """
    old, new = read_coefficients(before), read_coefficients(after)
    if len(old) != len(new):
        raise JpegBlockError("masking changed the number of components")
    mcu_rows = min(a.shape[0] for a in old)
    mcu_columns = min(a.shape[1] for a in old)
    # An MCU spans 8 pixels times the largest subsampling factor in each direction.
    mcu_y = 8 * max(a.shape[0] for a in old) // mcu_rows
    mcu_x = 8 * max(a.shape[1] for a in old) // mcu_columns
    touched_mcus = np.zeros((mcu_rows, mcu_columns), dtype=bool)
    ys, xs = np.nonzero(cells)
    touched_mcus[np.minimum(ys // mcu_y, mcu_rows - 1), np.minimum(xs // mcu_x, mcu_columns - 1)] = True
    for a, b in zip(old, new, strict=True):
        if a.shape != b.shape:
            raise JpegBlockError("masking changed the block layout")
        per_y, per_x = -(-a.shape[0] // mcu_rows), -(-a.shape[1] // mcu_columns)
        touched = np.repeat(np.repeat(touched_mcus, per_y, axis=0), per_x, axis=1)[:a.shape[0], :a.shape[1]]
        if not np.array_equal(a[~touched], b[~touched]):
            raise JpegBlockError("a block outside the masked area changed")


def _has_offset_table(value: bytes) -> bool:
    """Whether the encapsulated value's first item (the Basic Offset Table) has content."""
    return len(value) >= 8 and int.from_bytes(value[4:8], "little") > 0


def _mask_decoded(
    ds: Dataset,
    boxes: Sequence[MaskBox],
    syntax: UID,
    *,
    padding: int,
    fill: str | int,
) -> MaskResult:
    """Decode encapsulated Pixel Data, mask it natively, re-encode losslessly.

    Works on a copy, so *ds* is only touched once everything succeeded.
    """
    work = copy.deepcopy(ds)
    try:
        work.decompress(generate_instance_uid=False, as_rgb=True)
    except Exception as exc:  # noqa: BLE001  (codecs raise many types for bad data)
        raise MaskingNotSupported(
            f"{syntax.name} Pixel Data could not be decoded: " + safe_reason(exc)
        ) from None
    result = mask_dataset(work, boxes, padding=padding, fill=fill)
    note = _reencode(work, syntax)
    _adopt_pixels(ds, work)
    kept = _transfer_syntax(ds) == syntax
    return MaskResult(result.changed_bytes, result.frames, kept, True, note)


def _reencode(ds: Dataset, original: UID) -> str:
    """Compress masked native *ds* without further loss; say what was done."""
    if original in LOSSLESS_SYNTAXES:
        for target in (original, RLELossless):
            try:
                ds.compress(target, generate_instance_uid=False)
            except Exception:  # noqa: BLE001  (no encoder for it, or the layout is not allowed)
                continue
            if target == original:
                return f"decoded, masked and re-encoded as {original.name}"
            return (f"decoded, masked and re-encoded as RLE Lossless (no encoder for "
                    f"{original.name})")
        return f"decoded from {original.name}, masked and stored uncompressed (lossless)"
    return (f"decoded from lossy {original.name}, masked and stored uncompressed "
            "(not compressed again, so nothing more is lost)")


def _adopt_pixels(ds: Dataset, work: Dataset) -> None:
    """Copy the re-encoded Pixel Data and every attribute decoding changed into *ds*."""
    for keyword in ("PixelData", "PhotometricInterpretation", "PlanarConfiguration",
                    "LossyImageCompression", "LossyImageCompressionRatio",
                    "LossyImageCompressionMethod", "BitsAllocated", "BitsStored", "HighBit",
                    "SamplesPerPixel", "PixelRepresentation"):
        if keyword in work:
            ds[keyword] = work[keyword]
        elif keyword in ds:
            del ds[keyword]
    # Encapsulated-only attributes describe fragments that no longer exist.
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds and keyword not in work:
            del ds[keyword]
    ds.file_meta.TransferSyntaxUID = work.file_meta.TransferSyntaxUID
    ds["PixelData"].is_undefined_length = work["PixelData"].is_undefined_length


def _diff(before: bytes, after: bytes | bytearray) -> int:
    """Count differing bytes of two equal-length buffers."""
    return int(
        np.count_nonzero(
            np.frombuffer(before, dtype=np.uint8)
            != np.frombuffer(after, dtype=np.uint8)
        )
    )


def _transfer_syntax(ds: Dataset) -> UID:
    """Return the transfer syntax the Pixel Data is encoded with, or refuse."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if not uid:
        raise MaskingNotSupported("no (0002,0010) Transfer Syntax UID in the file meta")
    uid = UID(str(uid))
    if not uid.is_transfer_syntax:
        raise MaskingNotSupported(f"unknown transfer syntax {uid}")
    return uid


def _regions(
    boxes: Sequence[MaskBox], layout: PixelLayout, padding: int
) -> list[Region]:
    """Expand, clip and expand each box to one region per frame it applies to.

    For YBR_FULL_422 a box is widened to whole pixel pairs, since two pixels
    share one chroma pair and masking half a pair would leave its colour.
    """
    regions: list[Region] = []
    for box in boxes:
        if box.x2 < box.x1 or box.y2 < box.y1:
            raise InvalidValueError("a mask box has x2 < x1 or y2 < y1")
        if box.frame is not None and not 0 <= box.frame < layout.frames:
            raise InvalidValueError(
                f"mask box frame {box.frame} is outside 0..{layout.frames - 1}"
            )
        x1 = max(0, box.x1 - padding)
        y1 = max(0, box.y1 - padding)
        x2 = min(layout.columns, box.x2 + padding)
        y2 = min(layout.rows, box.y2 + padding)
        if layout.is_ybr_422:
            if layout.columns % 2:
                raise MaskingNotSupported("YBR_FULL_422 with an odd number of Columns")
            x1 -= x1 % 2
            x2 += x2 % 2
        if x1 >= x2 or y1 >= y2:
            continue
        targets = range(layout.frames) if box.frame is None else (box.frame,)
        regions.extend((frame, x1, y1, x2, y2) for frame in targets)
    return regions


def remove_overlays(ds: Dataset) -> int:
    """Delete every overlay group (60xx, even xx 00..1E); return how many were removed.

    Overlays are graphics a viewer draws over the image, and often carry the
    same annotations as burned-in text.  The whole group goes, not only
    (60xx,3000) Overlay Data, so no description of a removed overlay is left.
    Overlays stored in Pixel Data's unused high bits have no (60xx,3000); their
    group is removed too, and :func:`clear_overlay_bits` removes the bits.
    """
    groups = overlay_groups(ds)
    for group in groups:
        remove_overlay(ds, group)
    return len(groups)


def overlay_groups(ds: Dataset) -> list[int]:
    """The overlay groups (60xx, even xx 00..1E) present in *ds*, in order."""
    return sorted({tag.group for tag in ds.keys() if 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0})


def remove_overlay(ds: Dataset, group: int) -> None:
    """Delete every element of one overlay group."""
    for tag in [t for t in ds.keys() if t.group == group]:
        del ds[tag]


def clear_overlay_bits(ds: Dataset) -> int:
    """Zero the bits above HighBit (and below the stored bits) of native Pixel Data.

    Old files hide overlays in those bits, out of sight of most viewers.  This
    changes bytes *outside* any box (every pixel whose unused bits were set),
    which is why it is a separate step from :func:`mask_dataset` rather than
    part of it.  Returns the number of bytes changed; 0 when BitsStored equals
    BitsAllocated.  Encapsulated Pixel Data raises :class:`MaskingNotSupported`.
    """
    if "PixelData" not in ds:
        return 0
    layout = PixelLayout.from_dataset(ds)
    if layout.bits_stored == layout.bits_allocated:
        return 0
    syntax = _transfer_syntax(ds)
    if syntax.is_encapsulated:
        raise MaskingNotSupported(
            f"clearing unused bits in {syntax.name} ({syntax}) is not supported"
        )
    buffer = bytearray(ds.PixelData)
    changed = clear_high_bits(
        buffer, layout, byteorder="little" if syntax.is_little_endian else "big"
    )
    if changed:
        ds.PixelData = bytes(buffer)
    return changed


def remove_icon(ds: Dataset) -> bool:
    """Delete every (0088,0200) Icon Image Sequence, at top level and nested.

    An icon is a small copy of the image, burned-in text included, that
    masking the main Pixel Data would not reach.  Returns whether any was found.
    """
    removed = False
    if _ICON_IMAGE_SEQUENCE in ds:
        del ds[_ICON_IMAGE_SEQUENCE]
        removed = True
    for tag, element in list(ds._dict.items()):
        if not _may_be_sequence(int(tag), element.VR):
            continue  # left as read: converting every element would cost more than the walk itself
        value = ds[tag].value
        if isinstance(value, DicomSequence):
            for item in value:
                removed = remove_icon(item) or removed
    return removed


def _may_be_sequence(tag: int, vr: str | None) -> bool:
    """Whether an element (raw or converted) can hold items, judged without converting it.

    An element read without its VR (implicit VR) is a sequence when the
    dictionary says so, or when the dictionary does not know it (a private
    element: pydicom decides on conversion); UN can turn out to be one too.
    """
    if vr in ("SQ", "UN"):
        return True
    if vr is not None:
        return False
    known = dictionary_vr(tag)
    return known is None or known == "SQ"
