"""Decoding one scan's entropy-coded data to DCT coefficients and encoding it again.

:func:`run_scan` walks every block of a scan with the scan's own Huffman tables:
it either collects the quantised coefficients, or writes the scan again with the
blocks to mask made flat (AC zero, DC at the fill level) and every other block's
coefficients unchanged, restart markers included.  Written from ITU-T T.81
(F.1.2, F.2.2).
"""

from __future__ import annotations

import math

import numpy as np

from medveil.pixels.jpeg.parse import ZIGZAG, JpegBlockError, Parsed, Scan


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
    return win.data, starts, ends


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


def run_scan(
    parsed: Parsed,
    scan: Scan,
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
    units_x, units_y, layout = _units(parsed, scan)
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
    # Read only while re-encoding (writer set), when both are given.
    masked_blocks = masked if masked is not None else []
    fills = fill_dc if fill_dc is not None else {}
    out: list[bytes] = []
    zz = ZIGZAG
    flat_blocks: list[list[int]] = [[] for _ in comps]
    flat_pos: list[list[int]] = [[] for _ in comps]
    # The end-of-block code of each slot's AC table (None where the table has none).
    eob = [accodes.get(0x00) for *_, accodes in slots]
    unit = 0
    try:
        for iv in range(expected):
            pos = starts[iv]
            pred = [0] * len(comps)  # written-stream predictors
            opred = [0] * len(comps)  # original-stream predictors (absolute DC)
            acc = 0
            nacc = 0
            obuf = writer.out if writer is not None else bytearray()
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
                    if (by, bx) in masked_blocks[ci]:
                        newdc = fills[ci]
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
        _store_coefficients(comps, flat_blocks, flat_pos, coefs)
    return b"".join(out)


def _units(parsed: Parsed, scan: Scan) -> tuple[int, int, list[tuple[int, int, int]]]:
    """The scan's coding units across and down, and the blocks of one unit as
    (slot, row, column): a whole MCU for an interleaved scan, one block otherwise."""
    comps = scan.comps
    if len(comps) > 1:
        layout = [
            (slot, v, h)
            for slot, (c, _, _) in enumerate(comps)
            for v in range(c.v)
            for h in range(c.h)
        ]
        return parsed.mcux, parsed.mcuy, layout
    return comps[0][0].bw, comps[0][0].bh, [(0, 0, 0)]


def _store_coefficients(comps, flat_blocks: list[list[int]], flat_pos: list[list[int]],
                        coefs: list[np.ndarray]) -> None:
    """Scatter the collected blocks into the per-component arrays (padding blocks dropped)."""
    for slot, (c, _, _) in enumerate(comps):
        blocks = np.asarray(flat_blocks[slot], dtype=np.int32).reshape(-1, 8, 8)
        where = np.asarray(flat_pos[slot], dtype=np.int64)
        target = coefs[c.index]
        rows, cols = where // 65536, where % 65536
        keep = (rows < target.shape[0]) & (cols < target.shape[1])
        target[rows[keep], cols[keep]] = blocks[keep]
