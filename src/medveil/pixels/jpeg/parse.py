"""Reading a JPEG codestream into what block-level masking needs: frame, tables, scans.

Only 8-bit Huffman sequential DCT (SOF0/SOF1) is accepted; every other process,
a missing table or corrupt structure raises :class:`JpegBlockError` with a reason
that never contains pixel content.  The entropy-coded data of each scan is split
into its restart intervals (unstuffed) here; :mod:`medveil.pixels.jpeg.scan`
decodes and re-encodes it.  Written from ITU-T T.81 (sections B, C; Annex K).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medveil.errors import MedveilError


class JpegBlockError(MedveilError):
    """The codestream cannot be masked at block level (message names the reason only)."""


#: Zig-zag scan position k -> natural (row-major) index in the 8x8 block (T.81 Figure A.6).
ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10,
    17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34,
    27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46,
    53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip

_SOF_HANDLED = {0xC0, 0xC1}
_SOF_REFUSED = {
    0xC2: "progressive DCT (SOF2)",
    0xC3: "lossless (SOF3)",
    0xC5: "hierarchical (SOF5)",
    0xC6: "hierarchical progressive (SOF6)",
    0xC7: "hierarchical lossless (SOF7)",
    0xC9: "arithmetic coding (SOF9)",
    0xCA: "arithmetic progressive (SOF10)",
    0xCB: "arithmetic lossless (SOF11)",
    0xCD: "arithmetic hierarchical (SOF13)",
    0xCE: "arithmetic hierarchical progressive (SOF14)",
    0xCF: "arithmetic hierarchical lossless (SOF15)",
    0xCC: "arithmetic coding conditioning (DAC)",
    0xDC: "number of lines defined after the scan (DNL)",
    0xDE: "hierarchical progression (DHP)",
    0xDF: "hierarchical expansion (EXP)",
    0xF7: "JPEG-LS (SOF55)",
    0xC8: "reserved JPG marker",
}


class Huffman:
    """One Huffman table: a 16-bit lookup for decoding and a symbol map for encoding."""

    __slots__ = ("codes", "lut")

    def __init__(self, counts: Sequence[int], symbols: bytes) -> None:
        # T.81 C.2: code lengths in order, canonical code assignment.
        lut = np.zeros(1 << 16, dtype=np.int32)
        codes: dict[int, tuple[int, int]] = {}
        code = 0
        i = 0
        for length in range(1, 17):
            for _ in range(counts[length - 1]):
                if code >= 1 << length:
                    raise JpegBlockError("invalid Huffman table (code space overflow)")
                sym = symbols[i]
                i += 1
                shift = 16 - length
                lut[code << shift : (code + 1) << shift] = (length << 8) | sym
                codes.setdefault(sym, (code, length))
                code += 1
            code <<= 1
        self.lut: list[int] = lut.tolist()
        self.codes = codes


@dataclass
class Component:
    cid: int
    h: int
    v: int
    tq: int
    index: int
    bw: int = 0  # blocks per row that the scan codes
    bh: int = 0  # block rows that the scan codes


@dataclass
class Scan:
    comps: list[tuple[Component, Huffman, Huffman]]
    restart: int
    q0: dict[int, int]  # frame component index -> DC quantiser (T.81 Q[0])
    data_start: int = 0
    data_end: int = 0  # offset of the marker that ends the scan
    intervals: list[bytes] = field(default_factory=list)


@dataclass
class Parsed:
    width: int
    height: int
    comps: list[Component]
    hmax: int
    vmax: int
    mcux: int
    mcuy: int
    scans: list[Scan]
    ycbcr: bool


def _u16(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise JpegBlockError("codestream truncated")
    return (data[pos] << 8) | data[pos + 1]


def _entropy_segment(data: bytes, pos: int) -> tuple[list[bytes], list[int], int]:
    """Split the entropy-coded data from ``pos`` into restart intervals (unstuffed).

    Returns the intervals, the RSTn numbers that followed each interval but the last,
    and the offset of the marker that ends the scan.
    """
    intervals: list[bytes] = []
    rst: list[int] = []
    pieces: list[bytes] = []
    n = len(data)
    start = pos
    while True:
        ff = data.find(b"\xff", pos)
        if ff < 0 or ff + 1 >= n:
            raise JpegBlockError("entropy-coded data not terminated by a marker")
        nxt = data[ff + 1]
        if nxt == 0x00:  # stuffed byte
            pieces.append(data[start : ff + 1])
            pos = start = ff + 2
            continue
        if nxt == 0xFF:  # fill byte before a marker: drop it
            pieces.append(data[start:ff])
            pos = start = ff + 1
            continue
        pieces.append(data[start:ff])
        intervals.append(b"".join(pieces))
        pieces = []
        if 0xD0 <= nxt <= 0xD7:
            rst.append(nxt - 0xD0)
            pos = start = ff + 2
            continue
        return intervals, rst, ff


def parse(codestream: bytes) -> Parsed:
    """The frame, tables and scans of *codestream*, marker segment by marker segment."""
    data = bytes(codestream)
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise JpegBlockError("not a JPEG codestream (no SOI marker)")
    pos = 2
    qtables: dict[int, int] = {}
    htables: dict[tuple[int, int], Huffman] = {}
    restart = 0
    frame: tuple[int, int, list[Component]] | None = None
    scans: list[Scan] = []
    seen_jfif = False
    adobe: int | None = None
    coded: set[int] = set()
    while True:
        if pos + 2 > len(data):
            raise JpegBlockError("codestream ends without an EOI marker")
        if data[pos] != 0xFF:
            raise JpegBlockError("marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker in (0x01, 0x00):
            raise JpegBlockError("unexpected marker in the header")
        if marker in _SOF_REFUSED:
            raise JpegBlockError(f"not handled: {_SOF_REFUSED[marker]}")
        length = _u16(data, pos + 2)
        seg_start, seg_end = pos + 4, pos + 2 + length
        if length < 2 or seg_end > len(data):
            raise JpegBlockError("marker segment truncated")
        seg = data[seg_start:seg_end]
        if marker == 0xDB:  # DQT
            _read_quantisers(seg, qtables)
        elif marker == 0xC4:  # DHT
            _read_huffman_tables(seg, htables)
        elif marker == 0xDD:  # DRI
            if length != 4:
                raise JpegBlockError("invalid restart interval segment")
            restart = _u16(seg, 0)
        elif marker in _SOF_HANDLED:
            if frame is not None:
                raise JpegBlockError("more than one frame header")
            frame = _read_frame(seg)
        elif marker == 0xDA:  # SOS
            if frame is None:
                raise JpegBlockError("scan before the frame header")
            scan = _read_scan_header(seg, frame, htables, qtables, restart, coded)
            scan.data_start = seg_end
            intervals, rst, end = _entropy_segment(data, seg_end)
            scan.data_end = end
            for k, r in enumerate(rst):
                if r != k % 8:
                    raise JpegBlockError("restart markers out of sequence")
            scan.intervals = intervals
            scans.append(scan)
            pos = end
            continue
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn, COM: copied through
            if marker == 0xE0 and seg[:5] == b"JFIF\x00":
                seen_jfif = True
            elif marker == 0xEE and seg[:5] == b"Adobe" and len(seg) >= 12:
                adobe = seg[11]
        elif 0xF0 <= marker <= 0xFD or 0x02 <= marker <= 0xBF:
            raise JpegBlockError("not handled: reserved or extension marker")
        else:
            raise JpegBlockError("not handled: unknown marker")
        pos = seg_end
    if frame is None:
        raise JpegBlockError("no frame header (SOF0/SOF1) found")
    width, height, fcomps = frame
    if not scans or len(coded) != len(fcomps):
        raise JpegBlockError("not every component is coded in a scan")
    hmax = max(c.h for c in fcomps)
    vmax = max(c.v for c in fcomps)
    ycbcr = _is_ycbcr(fcomps, seen_jfif, adobe)
    return Parsed(
        width,
        height,
        fcomps,
        hmax,
        vmax,
        math.ceil(width / (8 * hmax)),
        math.ceil(height / (8 * vmax)),
        scans,
        ycbcr,
    )


def _read_quantisers(seg: bytes, qtables: dict[int, int]) -> None:
    """DQT: each table's DC quantiser, by table number (the only value masking needs)."""
    i = 0
    while i < len(seg):
        pq, tq = seg[i] >> 4, seg[i] & 15
        size = 128 if pq else 64
        if pq > 1 or tq > 3 or i + 1 + size > len(seg):
            raise JpegBlockError("invalid quantisation table segment")
        q0 = _u16(seg, i + 1) if pq else seg[i + 1]
        if q0 == 0:
            raise JpegBlockError(
                "invalid quantisation table (zero DC quantiser)"
            )
        qtables[tq] = q0
        i += 1 + size


def _read_huffman_tables(seg: bytes, htables: dict[tuple[int, int], Huffman]) -> None:
    """DHT: each table by (class, number); a later definition replaces an earlier one."""
    i = 0
    while i < len(seg):
        if i + 17 > len(seg):
            raise JpegBlockError("invalid Huffman table segment")
        tc, th = seg[i] >> 4, seg[i] & 15
        counts = list(seg[i + 1 : i + 17])
        total = sum(counts)
        if tc > 1 or th > 3 or total > 256 or i + 17 + total > len(seg):
            raise JpegBlockError("invalid Huffman table segment")
        htables[(tc, th)] = Huffman(counts, seg[i + 17 : i + 17 + total])
        i += 17 + total


def _read_frame(seg: bytes) -> tuple[int, int, list[Component]]:
    """SOF0/SOF1: (width, height, components) of an 8-bit frame."""
    if len(seg) < 6:
        raise JpegBlockError("invalid frame header")
    precision, height, width, nf = seg[0], _u16(seg, 1), _u16(seg, 3), seg[5]
    if precision != 8:
        raise JpegBlockError(f"not handled: {precision}-bit sample precision")
    if height == 0:
        raise JpegBlockError(
            "not handled: number of lines defined after the scan (DNL)"
        )
    if width == 0 or nf == 0 or len(seg) != 6 + 3 * nf:
        raise JpegBlockError("invalid frame header")
    comps: list[Component] = []
    for k in range(nf):
        cid, hv, tq = seg[6 + 3 * k : 9 + 3 * k]
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
            raise JpegBlockError(
                "invalid frame header (sampling factors or table)"
            )
        if any(c.cid == cid for c in comps):
            raise JpegBlockError("invalid frame header (duplicate component)")
        comps.append(Component(cid, h, v, tq, k))
    # A single component is never interleaved: its sampling factors are irrelevant.
    if nf == 1:
        comps[0].h = comps[0].v = 1
    return width, height, comps


def _read_scan_header(seg: bytes, frame: tuple[int, int, list[Component]],
                      htables: dict[tuple[int, int], Huffman], qtables: dict[int, int],
                      restart: int, coded: set[int]) -> Scan:
    """SOS: the scan's components with their tables and block grid (*coded* gains them)."""
    width, height, fcomps = frame
    hmax = max(c.h for c in fcomps)
    vmax = max(c.v for c in fcomps)
    ns = seg[0] if seg else 0
    if not 1 <= ns <= 4 or len(seg) != 4 + 2 * ns:
        raise JpegBlockError("invalid scan header")
    ss, se, ahal = seg[1 + 2 * ns], seg[2 + 2 * ns], seg[3 + 2 * ns]
    if ss != 0 or se != 63 or ahal != 0:
        raise JpegBlockError("invalid scan header for a sequential DCT frame")
    scomps = []
    for k in range(ns):
        cs, tdta = seg[1 + 2 * k], seg[2 + 2 * k]
        comp = next((c for c in fcomps if c.cid == cs), None)
        if comp is None or comp.index in coded:
            raise JpegBlockError(
                "invalid scan header (unknown or repeated component)"
            )
        coded.add(comp.index)
        dc, ac = htables.get((0, tdta >> 4)), htables.get((1, tdta & 15))
        if dc is None or ac is None:
            raise JpegBlockError("missing Huffman table")
        if comp.tq not in qtables:
            raise JpegBlockError("missing quantisation table")
        if ns == 1:
            comp.bw = math.ceil(math.ceil(width * comp.h / hmax) / 8)
            comp.bh = math.ceil(math.ceil(height * comp.v / vmax) / 8)
        else:
            comp.bw = math.ceil(width / (8 * hmax)) * comp.h
            comp.bh = math.ceil(height / (8 * vmax)) * comp.v
        scomps.append((comp, dc, ac))
    if ns > 1 and sum(c.h * c.v for c, _, _ in scomps) > 10:
        raise JpegBlockError(
            "invalid scan header (more than 10 blocks per MCU)"
        )
    return Scan(
        scomps, restart, {c.index: qtables[c.tq] for c, _, _ in scomps}
    )


def _is_ycbcr(fcomps: list[Component], seen_jfif: bool, adobe: int | None) -> bool:
    """libjpeg's rule for 3 components: JFIF -> YCbCr; Adobe transform 0 -> RGB; ids 'R','G','B' -> RGB."""
    if len(fcomps) != 3:
        return False
    if seen_jfif:
        return True
    if adobe is not None:
        return adobe != 0
    return tuple(c.cid for c in fcomps) != (82, 71, 66)
