"""Masking JPEG Baseline images block by block, without recompressing the rest.

A sequential (SOF0/SOF1, Huffman, 8-bit) JPEG stores every 8x8 block as quantised
DCT coefficients.  To hide a region we decode the entropy-coded data down to those
coefficients, replace the blocks that touch a box by flat blocks (AC all zero, DC
chosen so the block decodes to ``fill``) and Huffman-encode the scan again with the
*same* tables.  Every header byte is copied unchanged and every other block keeps its
exact coefficients, so a decoder produces the same pixels outside the masked area
(apart from chroma upsampling, which may blend across a block edge).

The unit that is masked is the frame's MCU cell (8*Hmax x 8*Vmax pixels, i.e. one
8x8 block for greyscale and 4:4:4, 16x16 for 4:2:0): a cell that intersects a box is
masked in every component, so the masked area is flat in luminance *and* colour.

Written from ITU-T T.81 (sections B, C, F.1.2, F.2.2, Annex K for the conventions).
Anything else (progressive, lossless, hierarchical, arithmetic coding, 12-bit, DNL,
missing tables, a Huffman symbol the existing tables cannot code, corrupt data)
raises :class:`JpegBlockError`, whose message names the reason and never contains
pixel content, so the caller can fall back to decoding and storing uncompressed.

Public API: :func:`mask_jpeg_blocks`, :func:`read_coefficients`,
:func:`masked_pixel_region`, :class:`JpegBlockError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medveil.errors import MedveilError

__all__ = [
    "JpegBlockError",
    "mask_jpeg_blocks",
    "masked_pixel_region",
    "read_coefficients",
]


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


# --------------------------------------------------------------------------- tables


class _Huffman:
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
class _Component:
    cid: int
    h: int
    v: int
    tq: int
    index: int
    bw: int = 0  # blocks per row that the scan codes
    bh: int = 0  # block rows that the scan codes


@dataclass
class _Scan:
    comps: list[tuple[_Component, _Huffman, _Huffman]]
    restart: int
    q0: dict[int, int]  # frame component index -> DC quantiser (T.81 Q[0])
    data_start: int = 0
    data_end: int = 0  # offset of the marker that ends the scan
    intervals: list[bytes] = field(default_factory=list)


@dataclass
class _Parsed:
    width: int
    height: int
    comps: list[_Component]
    hmax: int
    vmax: int
    mcux: int
    mcuy: int
    scans: list[_Scan]
    ycbcr: bool


# --------------------------------------------------------------------------- parsing


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


def _parse(codestream: bytes) -> _Parsed:
    data = bytes(codestream)
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise JpegBlockError("not a JPEG codestream (no SOI marker)")
    pos = 2
    qtables: dict[int, int] = {}
    htables: dict[tuple[int, int], _Huffman] = {}
    restart = 0
    frame: tuple[int, int, list[_Component]] | None = None
    scans: list[_Scan] = []
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
        elif marker == 0xC4:  # DHT
            i = 0
            while i < len(seg):
                if i + 17 > len(seg):
                    raise JpegBlockError("invalid Huffman table segment")
                tc, th = seg[i] >> 4, seg[i] & 15
                counts = list(seg[i + 1 : i + 17])
                total = sum(counts)
                if tc > 1 or th > 3 or total > 256 or i + 17 + total > len(seg):
                    raise JpegBlockError("invalid Huffman table segment")
                htables[(tc, th)] = _Huffman(counts, seg[i + 17 : i + 17 + total])
                i += 17 + total
        elif marker == 0xDD:  # DRI
            if length != 4:
                raise JpegBlockError("invalid restart interval segment")
            restart = _u16(seg, 0)
        elif marker in _SOF_HANDLED:
            if frame is not None:
                raise JpegBlockError("more than one frame header")
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
            comps = []
            for k in range(nf):
                cid, hv, tq = seg[6 + 3 * k : 9 + 3 * k]
                h, v = hv >> 4, hv & 15
                if not (1 <= h <= 4 and 1 <= v <= 4) or tq > 3:
                    raise JpegBlockError(
                        "invalid frame header (sampling factors or table)"
                    )
                if any(c.cid == cid for c in comps):
                    raise JpegBlockError("invalid frame header (duplicate component)")
                comps.append(_Component(cid, h, v, tq, k))
            # A single component is never interleaved: its sampling factors are irrelevant.
            if nf == 1:
                comps[0].h = comps[0].v = 1
            frame = (width, height, comps)
        elif marker == 0xDA:  # SOS
            if frame is None:
                raise JpegBlockError("scan before the frame header")
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
            scan = _Scan(
                scomps, restart, {c.index: qtables[c.tq] for c, _, _ in scomps}
            )
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
    if len(fcomps) == 3:
        # libjpeg's rule: JFIF -> YCbCr; Adobe transform 0 -> RGB; ids 'R','G','B' -> RGB.
        if seen_jfif:
            ycbcr = True
        elif adobe is not None:
            ycbcr = adobe != 0
        else:
            ycbcr = tuple(c.cid for c in fcomps) != (82, 71, 66)
    else:
        ycbcr = False
    return _Parsed(
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


# --------------------------------------------------------------------------- entropy coding


def _windows(intervals: list[bytes]) -> tuple[memoryview, list[int], list[int]]:
    """16-bit big-endian windows at every bit position of the joined intervals."""
    starts, ends = [], []
    off = 0
    for iv in intervals:
        starts.append(off * 8)
        off += len(iv)
        ends.append(off * 8)
    # Padding with 1-bits: reading past the end finds no valid code (all-ones is never one).
    buf = np.frombuffer(b"".join(intervals) + b"\xff" * 8, dtype=np.uint8).astype(
        np.uint32
    )
    v24 = (buf[:-2] << 16) | (buf[1:-1] << 8) | buf[2:]
    del buf
    win = np.empty(len(v24) * 8, dtype=np.uint16)
    for bit in range(8):
        win[bit::8] = (v24 >> (8 - bit)) & 0xFFFF
    return memoryview(win), starts, ends


class _BitWriter:
    __slots__ = ("acc", "n", "out")

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def flush(self) -> bytes:
        """Pad with 1-bits to a byte boundary, stuff 0xFF bytes, return and reset."""
        pad = -self.n % 8
        acc = (self.acc << pad) | ((1 << pad) - 1)
        n = self.n + pad
        if n:
            self.out += acc.to_bytes(n // 8, "big")
        result = bytes(self.out).replace(b"\xff", b"\xff\x00")
        self.out = bytearray()
        self.acc = self.n = 0
        return result


def _padding_only(win: memoryview, start: int, end: int) -> bool:
    """Whether the bits from *start* to *end* are all ones or all zeros: fill bytes some
    encoders leave after the last block (a stuffed 0xFF00, a zero pad), not data."""
    for p in range(start, end, 16):
        n = min(16, end - p)
        if (win[p] >> (16 - n)) not in (0, (1 << n) - 1):
            return False
    return True


def _category(value: int) -> int:
    return abs(value).bit_length()


def _run_scan(
    parsed: _Parsed,
    scan: _Scan,
    masked: list[set[tuple[int, int]]] | None,
    fill_dc: dict[int, int] | None,
    coefs: list[np.ndarray] | None,
) -> bytes:
    """Decode one scan; re-encode it with masked blocks flattened, or collect coefficients.

    With ``masked`` (per frame component, a set of (block row, block col)) the new
    entropy-coded data, RST markers included, is returned.  With ``coefs`` the
    quantised coefficients are written into those arrays (natural order).
    """
    win, starts, ends = _windows(scan.intervals)
    comps = scan.comps
    interleaved = len(comps) > 1
    if interleaved:
        units_x, units_y = parsed.mcux, parsed.mcuy
        layout = [
            (slot, v, h)
            for slot, (c, _, _) in enumerate(comps)
            for v in range(c.v)
            for h in range(c.h)
        ]
    else:
        units_x, units_y = comps[0][0].bw, comps[0][0].bh
        layout = [(0, 0, 0)]
    total = units_x * units_y
    ri = scan.restart or total
    expected = math.ceil(total / ri)
    if len(scan.intervals) != expected:
        raise JpegBlockError("restart interval count does not match the image size")
    # Per slot: (frame index, H, V, dc lut, ac lut, dc codes)
    slots = [
        (c.index, c.h, c.v, dc.lut, ac.lut, dc.codes, ac.codes) for c, dc, ac in comps
    ]
    writer = _BitWriter() if masked is not None else None
    out: list[bytes] = []
    zz = ZIGZAG
    flat_blocks: list[list[int]] = [[] for _ in comps]
    flat_pos: list[list[int]] = [[] for _ in comps]
    if masked is not None:
        eob = []
        for _, _, _, _, _, _, accodes in slots:
            if 0x00 not in accodes:
                eob.append(None)
            else:
                eob.append(accodes[0x00])
    unit = 0
    try:
        for iv in range(expected):
            pos = starts[iv]
            pred = [0] * len(comps)  # written-stream predictors
            opred = [0] * len(comps)  # original-stream predictors (absolute DC)
            acc = 0
            nacc = 0
            obuf = writer.out if writer is not None else None
            for _ in range(min(ri, total - unit)):
                my, mx = divmod(unit, units_x)
                unit += 1
                for slot, v, h in layout:
                    ci, ch, cv, dclut, aclut, dccodes, _ = slots[slot]
                    by = my * cv + v if interleaved else my
                    bx = mx * ch + h if interleaved else mx
                    # DC (F.2.2.1)
                    e = dclut[win[pos]]
                    if not e:
                        raise JpegBlockError("invalid Huffman code in DC data")
                    pos += e >> 8
                    s = e & 0xFF
                    if s:
                        if s > 11:
                            raise JpegBlockError("invalid DC difference category")
                        diff = win[pos] >> (16 - s)
                        pos += s
                        if diff < (1 << (s - 1)):
                            diff -= (1 << s) - 1
                    else:
                        diff = 0
                    dc = opred[slot] + diff
                    opred[slot] = dc
                    acstart = pos
                    # AC (F.2.2.2)
                    if coefs is not None:
                        blk = [0] * 64
                        blk[0] = dc
                    k = 1
                    while k < 64:
                        e = aclut[win[pos]]
                        if not e:
                            raise JpegBlockError("invalid Huffman code in AC data")
                        pos += e >> 8
                        rs = e & 0xFF
                        s = rs & 15
                        if s:
                            k += rs >> 4
                            if k > 63:
                                raise JpegBlockError(
                                    "AC coefficient run past the block end"
                                )
                            if coefs is not None:
                                val = win[pos] >> (16 - s)
                                if val < (1 << (s - 1)):
                                    val -= (1 << s) - 1
                                blk[zz[k]] = val
                            pos += s
                            k += 1
                        elif rs == 0xF0:
                            k += 16
                            if k > 64:
                                raise JpegBlockError("AC zero run past the block end")
                        elif rs == 0:
                            break
                        else:
                            raise JpegBlockError("invalid AC symbol")
                    if coefs is not None:
                        flat_blocks[slot].extend(blk)
                        flat_pos[slot].append(by * 65536 + bx)
                    if writer is None:
                        continue
                    # Re-encode: DC difference against the written predictor, then AC.
                    if (by, bx) in masked[ci]:
                        newdc = fill_dc[ci]
                        flat = True
                    else:
                        newdc = dc
                        flat = False
                    d = newdc - pred[slot]
                    pred[slot] = newdc
                    s = _category(d)
                    hc = dccodes.get(s)
                    if hc is None:
                        raise JpegBlockError(
                            "DC difference category has no code in the Huffman table"
                        )
                    code, length = hc
                    if s:
                        code = (code << s) | (d if d > 0 else d + (1 << s) - 1)
                        length += s
                    acc = (acc << length) | code
                    nacc += length
                    if flat:
                        eb = eob[slot]
                        if eb is None:
                            raise JpegBlockError(
                                "end-of-block has no code in the AC Huffman table"
                            )
                        acc = (acc << eb[1]) | eb[0]
                        nacc += eb[1]
                    else:
                        # Copy the block's AC bits verbatim (same table, same coefficients).
                        p = acstart
                        while p < pos:
                            n = pos - p
                            n = min(n, 16)
                            acc = (acc << n) | (win[p] >> (16 - n))
                            nacc += n
                            p += n
                            if nacc >= 64:
                                rem = nacc & 7
                                obuf += (acc >> rem).to_bytes(nacc >> 3, "big")
                                acc &= (1 << rem) - 1
                                nacc = rem
                    if nacc >= 64:
                        rem = nacc & 7
                        obuf += (acc >> rem).to_bytes(nacc >> 3, "big")
                        acc &= (1 << rem) - 1
                        nacc = rem
            if pos > ends[iv] or (ends[iv] - pos >= 8 and not _padding_only(win, pos, ends[iv])):
                raise JpegBlockError(
                    "entropy-coded data length does not match the image size"
                )
            if writer is not None:
                writer.acc, writer.n = acc, nacc
                out.append(writer.flush())
                if iv + 1 < expected:
                    out.append(bytes((0xFF, 0xD0 + iv % 8)))
    except IndexError:
        raise JpegBlockError("entropy-coded data truncated") from None
    if coefs is not None:
        for slot, (c, _, _) in enumerate(comps):
            blocks = np.asarray(flat_blocks[slot], dtype=np.int32).reshape(-1, 8, 8)
            where = np.asarray(flat_pos[slot], dtype=np.int64)
            target = coefs[c.index]
            rows, cols = where // 65536, where % 65536
            keep = (rows < target.shape[0]) & (cols < target.shape[1])
            target[rows[keep], cols[keep]] = blocks[keep]
    return b"".join(out)


# --------------------------------------------------------------------------- public API


def read_coefficients(codestream: bytes) -> list[np.ndarray]:
    """Quantised DCT coefficients of every block, one array per frame component.

    Each array has shape ``(block_rows, block_cols, 8, 8)`` (natural row-major order
    inside a block, not dequantised, DC absolute).  The grid is the one the scan codes:
    padded to whole MCUs for interleaved scans.
    """
    parsed = _parse(codestream)
    coefs = [np.zeros((c.bh, c.bw, 8, 8), dtype=np.int32) for c in parsed.comps]
    for scan in parsed.scans:
        _run_scan(parsed, scan, None, None, coefs)
    return coefs


def _masked_cells(
    parsed: _Parsed, boxes: Sequence[tuple[int, int, int, int]]
) -> np.ndarray:
    cells = np.zeros((parsed.mcuy, parsed.mcux), dtype=bool)
    cw, ch = 8 * parsed.hmax, 8 * parsed.vmax
    for box in boxes:
        try:
            x1, y1, x2, y2 = (int(b) for b in box)
        except (TypeError, ValueError):
            raise ValueError("a box must be four integers (x1, y1, x2, y2)") from None
        x1, x2 = max(x1, 0), min(x2, parsed.width)
        y1, y2 = max(y1, 0), min(y2, parsed.height)
        if x1 >= x2 or y1 >= y2:
            continue
        cells[y1 // ch : (y2 - 1) // ch + 1, x1 // cw : (x2 - 1) // cw + 1] = True
    return cells


def masked_pixel_region(
    codestream: bytes, boxes: Sequence[tuple[int, int, int, int]]
) -> np.ndarray:
    """Boolean ``(rows, columns)`` array: the pixels :func:`mask_jpeg_blocks` flattens.

    That is the union of the MCU cells (8*Hmax x 8*Vmax pixels) that intersect a box,
    clipped to the image.
    """
    parsed = _parse(codestream)
    cells = _masked_cells(parsed, boxes)
    region = np.repeat(
        np.repeat(cells, 8 * parsed.vmax, axis=0), 8 * parsed.hmax, axis=1
    )
    return region[: parsed.height, : parsed.width].copy()


def mask_jpeg_blocks(
    codestream: bytes,
    boxes: Sequence[tuple[int, int, int, int]],
    *,
    fill: int = 0,
    ycbcr: bool | None = None,
) -> bytes:
    """Return a new JPEG codestream where every 8x8 block that intersects a box is flat.

    Boxes are ``(x1, y1, x2, y2)`` in pixel coordinates, ``x2``/``y2`` exclusive, clipped
    to the image.  The unit masked is the MCU cell (8*Hmax x 8*Vmax pixels) in every
    component, so with chroma subsampling whole MCUs are masked.  Masked blocks get all
    AC coefficients 0 and a DC such that luminance decodes to ``fill`` (0..255) and
    chroma to the neutral 128; for an RGB-coded 3-component JPEG every component decodes
    to ``fill``.  Every other block keeps its exact quantised DCT coefficients; headers
    (APPn, COM, tables) are copied unchanged, and the scans are re-encoded with the same
    Huffman tables and restart intervals.

    ``ycbcr`` says whether a 3-component JPEG is YCbCr-coded; ``None`` decides as libjpeg
    does (JFIF marker, Adobe transform flag, component ids 'R','G','B').

    Raises :class:`JpegBlockError` for anything other than 8-bit Huffman sequential DCT
    (SOF0/SOF1) with 1 or 3 components, for missing tables, for a symbol the existing
    Huffman tables cannot code, and for corrupt data.
    """
    if (
        isinstance(fill, bool)
        or not isinstance(fill, (int, np.integer))
        or not 0 <= fill <= 255
    ):
        raise ValueError("fill must be an integer 0..255")
    parsed = _parse(codestream)
    if len(parsed.comps) not in (1, 3):
        raise JpegBlockError(f"not handled: {len(parsed.comps)} colour components")
    if ycbcr is None:
        ycbcr = parsed.ycbcr
    cells = _masked_cells(parsed, boxes)
    data = bytes(codestream)
    if not cells.any():
        return data
    rows, cols = np.nonzero(cells)
    masked: list[set[tuple[int, int]]] = []
    for comp in parsed.comps:
        blocks = set()
        for r, c in zip(rows.tolist(), cols.tolist()):
            for v in range(comp.v):
                for h in range(comp.h):
                    blocks.add((r * comp.v + v, c * comp.h + h))
        masked.append(blocks)
    out = []
    last = 0
    for scan in parsed.scans:
        fill_dc = {}
        for comp, _, _ in scan.comps:
            level = (
                128 if (ycbcr and len(parsed.comps) == 3 and comp.index > 0) else fill
            )
            fill_dc[comp.index] = math.floor(
                (level - 128) * 8 / scan.q0[comp.index] + 0.5
            )
        ecs = _run_scan(parsed, scan, masked, fill_dc, None)
        out.append(data[last : scan.data_start])
        out.append(ecs)
        last = scan.data_end
    out.append(data[last:])
    return b"".join(out)
