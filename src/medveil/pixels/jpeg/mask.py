"""Masking a JPEG Baseline codestream block by block: the public entry points.

:func:`mask_jpeg_blocks` parses the codestream (:mod:`medveil.pixels.jpeg.parse`),
chooses the MCU cells that touch a box, and has every scan re-encoded with those
cells flat (:mod:`medveil.pixels.jpeg.scan`); the bytes between scans are copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from medveil.pixels.jpeg.parse import JpegBlockError, Parsed, parse
from medveil.pixels.jpeg.scan import run_scan


def read_coefficients(codestream: bytes) -> list[np.ndarray]:
    """Quantised DCT coefficients of every block, one array per frame component.

    Each array has shape ``(block_rows, block_cols, 8, 8)`` (natural row-major order
    inside a block, not dequantised, DC absolute).  The grid is the one the scan codes:
    padded to whole MCUs for interleaved scans.
    """
    parsed = parse(codestream)
    coefs = [np.zeros((c.bh, c.bw, 8, 8), dtype=np.int32) for c in parsed.comps]
    for scan in parsed.scans:
        run_scan(parsed, scan, None, None, coefs)
    return coefs


def _masked_cells(
    parsed: Parsed, boxes: Sequence[tuple[int, int, int, int]]
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
    parsed = parse(codestream)
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
    parsed = parse(codestream)
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
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
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
        ecs = run_scan(parsed, scan, masked, fill_dc, None)
        out.append(data[last : scan.data_start])
        out.append(ecs)
        last = scan.data_end
    out.append(data[last:])
    return b"".join(out)
