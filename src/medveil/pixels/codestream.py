"""The image size a compressed frame declares, read from its first bytes without decoding it.

A decoder allocates what the codestream says, not what Rows and Columns
say: a 2 kB JPEG frame that declares 65535 x 65535 pixels asks for gigabytes
before a single pixel is decoded.  Reading the frame header (JPEG and
JPEG-LS start-of-frame, JPEG 2000 image and tile size) lets medveil refuse
such a frame before any decoder sees it.
"""

from __future__ import annotations

import struct

#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic) and JPEG-LS's.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
#: Markers that stand alone, without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_HEADER_LIMIT = 1 << 16  # a frame header lies in the first few kB


def frame_size(fragment: bytes | memoryview) -> tuple[int, int, int] | None:
    """(rows, columns, components) the codestream starting *fragment* declares; None if it is not one.

    Only JPEG, JPEG-LS and JPEG 2000 codestreams are recognised; RLE frames
    carry no size of their own (their decoder fills Rows x Columns).
    """
    head = bytes(fragment[:_HEADER_LIMIT])
    if head[:4] == b"\xff\x4f\xff\x51":
        return _j2k_size(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    return None


def _jpeg_size(head: bytes) -> tuple[int, int, int] | None:
    offset = 2
    while offset + 4 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in _STANDALONE:
            offset += 2
            continue
        (length,) = struct.unpack_from(">H", head, offset + 2)
        if marker in _SOF:
            if offset + 10 > len(head):
                return None
            rows, columns = struct.unpack_from(">HH", head, offset + 5)
            return rows, columns, head[offset + 9]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        offset += 2 + length
    return None


def _j2k_size(head: bytes) -> tuple[int, int, int] | None:
    # SOC, then SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
    if len(head) < 4 + 2 + 2 + 32 + 2:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", head, 8)
    (components,) = struct.unpack_from(">H", head, 40)
    return max(0, ysiz - yosiz), max(0, xsiz - xosiz), components
