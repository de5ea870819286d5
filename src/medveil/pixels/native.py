"""Masking native (uncompressed) Pixel Data by writing bytes in place.

Decoding a whole image to an array and encoding it back is where surprises
live: padding bytes, bits above HighBit, byte order of 8-bit OW data.  A mask
needs none of that, because the byte offset of every sample is fixed by the
Image Pixel module.  So this module computes, for each row of each box, the
span of bytes its pixels occupy and overwrites exactly that span; every other
byte of the value, padding included, is left as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np

from medveil.pixels.layout import MaskingNotSupported, PixelLayout

#: A box already clipped to the image: (frame, x1, y1, x2, y2), x2/y2 exclusive.
Region = tuple[int, int, int, int, int]

ByteOrder = Literal["little", "big"]


def frame_length(layout: PixelLayout) -> int:
    """Return the bytes one native frame occupies (YBR_FULL_422 keeps 2 samples/pixel)."""
    per_pixel = 2 if layout.is_ybr_422 else layout.samples
    return layout.rows * layout.columns * per_pixel * layout.bytes_per_sample


def row_segments(layout: PixelLayout, region: Region) -> Iterator[tuple[int, int, int]]:
    """Yield ``(byte offset, units, plane)`` for every row span that *region* covers.

    A *unit* is what one fill pattern covers: a whole pixel when samples are
    interleaved, one sample of one plane when PlanarConfiguration is 1, and a
    pair of pixels (Y Y Cb Cr) for YBR_FULL_422.  *plane* picks the pattern;
    it is 0 except for planar data.
    """
    frame, x1, y1, x2, y2 = region
    bps = layout.bytes_per_sample
    cols = layout.columns
    base = frame * frame_length(layout)
    if layout.is_ybr_422:
        unit = 4 * bps
        pairs_per_row = cols // 2
        for y in range(y1, y2):
            yield base + (y * pairs_per_row + x1 // 2) * unit, (x2 - x1) // 2, 0
    elif layout.planar:
        plane_length = layout.rows * cols * bps
        for plane in range(layout.samples):
            plane_base = base + plane * plane_length
            for y in range(y1, y2):
                yield plane_base + (y * cols + x1) * bps, x2 - x1, plane
    else:
        unit = layout.samples * bps
        for y in range(y1, y2):
            yield base + (y * cols + x1) * unit, x2 - x1, 0


def unit_patterns(
    layout: PixelLayout, fill: tuple[int, ...], byteorder: ByteOrder
) -> list[bytes]:
    """Return the bytes of one unit (see :func:`row_segments`) for each plane."""
    bps = layout.bytes_per_sample

    def encode(value: int) -> bytes:
        return layout.stored_pattern(value).to_bytes(bps, byteorder)

    if layout.is_ybr_422:
        luma, cb, cr = fill
        return [encode(luma) * 2 + encode(cb) + encode(cr)]
    if layout.planar:
        return [encode(value) for value in fill]
    return [b"".join(encode(value) for value in fill)]


def mask_native_bytes(
    buffer: bytearray,
    layout: PixelLayout,
    regions: Iterable[Region],
    fill: tuple[int, ...],
    *,
    byteorder: ByteOrder,
    swap_ow: bool = False,
) -> None:
    """Overwrite the bytes of every region's pixels in *buffer*, nothing else.

    *swap_ow* is for 8-bit data stored as OW in Explicit VR Big Endian: there
    each 16-bit word is byte-swapped, so logical byte ``i`` sits at ``i ^ 1``.
    The buffer is swapped to logical order, masked and swapped back, which
    moves no byte outside the regions.
    """
    needed = layout.frames * frame_length(layout)
    if len(buffer) < needed:
        raise MaskingNotSupported(
            f"Pixel Data holds {len(buffer)} bytes but the Image Pixel module "
            f"describes {needed}"
        )
    if swap_ow:
        if len(buffer) % 2:
            raise MaskingNotSupported("OW Pixel Data has an odd length")
        logical = bytearray(np.frombuffer(buffer, dtype="<u2").byteswap().tobytes())
        mask_native_bytes(logical, layout, regions, fill, byteorder=byteorder)
        buffer[:] = np.frombuffer(logical, dtype="<u2").byteswap().tobytes()
        return
    patterns = unit_patterns(layout, fill, byteorder)
    for region in regions:
        for offset, units, plane in row_segments(layout, region):
            span = patterns[plane] * units
            buffer[offset : offset + len(span)] = span


def clear_high_bits(
    buffer: bytearray, layout: PixelLayout, *, byteorder: ByteOrder
) -> int:
    """Zero every bit outside HighBit-BitsStored+1 .. HighBit; return bytes changed.

    Works per byte after building the keep-mask in the buffer's byte order, so
    it is indifferent to OW byte swapping.
    """
    needed = layout.frames * frame_length(layout)
    if len(buffer) < needed:
        raise MaskingNotSupported(
            f"Pixel Data holds {len(buffer)} bytes but the Image Pixel module "
            f"describes {needed}"
        )
    keep = layout.stored_pattern(-1)  # every stored bit set
    bps = layout.bytes_per_sample
    keep_bytes = np.frombuffer(keep.to_bytes(bps, byteorder), dtype=np.uint8)
    view = np.frombuffer(buffer, dtype=np.uint8, count=needed).reshape(-1, bps)
    cleared = view & keep_bytes
    changed = int(np.count_nonzero(cleared != view))
    view[...] = cleared
    return changed
