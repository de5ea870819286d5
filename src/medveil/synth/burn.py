"""Burned-in text: the patient's name, ID and birth date drawn into the pixels.

Screens photographed by a modality, scanned films and secondary captures
carry identifying text in the image itself, where no header rule reaches it.
A test set needs such images with the text's position known, so the text is
drawn here and its box recorded in pixel coordinates of the first frame
(``top_left`` = (x1, y1), ``bottom_right`` = (x2, y2), inclusive), the
format of MIDI-B's ``pixels_hidden`` checks.

Only native (uncompressed) little-endian pixel data is touched, so that no
codec is needed and nothing but the drawn pixels changes.  The text must be
legible to OCR after any windowing, so each line sits on a box of the
frame's darkest value and is drawn in its brightest (reversed for
MONOCHROME1, where low values are bright), with a size that scales with the
image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import UID

MIN_SIDE = 128
_IGNORED_KEYS = ("age", "sex", "gender")


@dataclass(frozen=True)
class Box:
    """Burned-in text and where it is on frame 0 (pixel coordinates, corners inclusive)."""

    text: str
    top_left: tuple[int, int]
    bottom_right: tuple[int, int]

    def to_json(self) -> str:
        """The ``pixels_hidden`` check's action text."""
        return json.dumps({"text": self.text, "top_left": list(self.top_left),
                           "bottom_right": list(self.bottom_right)}, ensure_ascii=False)


def unburnable_reason(ds: Dataset) -> str | None:
    """Why text cannot be drawn into ``ds``'s pixels here, or None when it can."""
    if "PixelData" not in ds:
        return "no Pixel Data"
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if not syntax.is_transfer_syntax or syntax.is_compressed or syntax.is_deflated or not syntax.is_little_endian:
        return "pixel data is not native little endian"
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    bits = int(ds.get("BitsAllocated", 0) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if samples != 1 or bits not in (8, 16):
            return "monochrome pixels that are not 8 or 16 bits, one sample"
    elif photometric == "RGB":
        if samples != 3 or bits != 8:
            return "RGB pixels that are not 8 bits, three samples"
    else:
        return f"photometric interpretation {photometric or 'missing'}"
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if min(rows, columns) < MIN_SIDE:
        return f"smaller than {MIN_SIDE} pixels"
    frame = rows * columns * samples * (bits // 8)
    if len(ds.PixelData) < frame:
        return "Pixel Data shorter than one frame"
    return None


def burn(ds: Dataset, lines: list[tuple[str, str]]) -> list[Box]:
    """Draw ``(label, value)`` lines into frame 0 of ``ds``; return the value boxes.

    The label ("DOB: ") is drawn but not part of the box: it identifies no
    one, and a check that it is gone would fail a de-identifier that
    (rightly) left it.
    """
    reason = unburnable_reason(ds)
    if reason is not None:
        raise ValueError(f"cannot burn text: {reason}")
    rows, columns = int(ds.Rows), int(ds.Columns)
    coverage, back_mask, boxes = _layout(rows, columns, lines)
    if not boxes:
        return []
    photometric = str(ds.PhotometricInterpretation).strip()
    bits = int(ds.BitsAllocated)
    data = bytearray(ds.PixelData)
    if photometric == "RGB":
        _paint_rgb(ds, data, rows, columns, coverage, back_mask)
    else:
        _paint_mono(ds, data, rows, columns, bits, photometric, coverage, back_mask)
    ds.PixelData = bytes(data)
    return boxes


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _layout(rows: int, columns: int, lines: list[tuple[str, str]]):
    """Masks of text and background pixels, and the value boxes, for lines in the top-left corner."""
    size = max(18, min(48, round(min(rows, columns) / 16)))
    while size > 9:
        font = _font(size)
        widest = max(font.getlength(label + value) for label, value in lines)
        if widest <= columns * 0.9:
            break
        size -= 1
    font = _font(size)
    text = Image.new("L", (columns, rows), 0)
    back = Image.new("L", (columns, rows), 0)
    draw_text, draw_back = ImageDraw.Draw(text), ImageDraw.Draw(back)
    margin = max(4, size // 2)
    pad = max(2, size // 6)
    y = margin
    boxes: list[Box] = []
    for label, value in lines:
        whole = label + value
        if font.getlength(whole) > columns - 2 * margin:
            continue
        _, top, right, bottom = (int(v) for v in font.getbbox(whole))  # whole pixels (typed float)
        if y + bottom + pad >= rows - margin:
            break
        draw_back.rectangle((margin - pad, y + top - pad, margin + right + pad, y + bottom + pad), fill=255)
        draw_text.text((margin, y), whole, font=font, fill=255)
        offset = font.getlength(label)
        v_left, v_top, v_right, v_bottom = (int(v) for v in font.getbbox(value))
        x1 = max(0, int(margin + offset + v_left) - pad)
        y1 = max(0, y + v_top - pad)
        x2 = min(columns - 1, int(margin + offset + v_right) + pad)
        y2 = min(rows - 1, y + v_bottom + pad)
        boxes.append(Box(value, (x1, y1), (x2, y2)))
        y += bottom + 2 * pad + size // 3
    # Glyph coverage, not a hard threshold: anti-aliased edges keep small text readable to OCR.
    alpha = np.asarray(text).astype(np.float64) / 255.0
    back_mask = np.asarray(back) >= 128
    return alpha, back_mask, boxes


def _paint_mono(ds: Dataset, data: bytearray, rows: int, columns: int, bits: int, photometric: str,
                coverage: np.ndarray, back_mask: np.ndarray) -> None:
    dtype = np.dtype("<u2") if bits == 16 else np.dtype("u1")
    count = rows * columns
    frame = np.frombuffer(data, dtype=dtype, count=count).reshape(rows, columns).copy()
    stored = int(ds.get("BitsStored", bits) or bits)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    values = _stored_values(frame, stored, signed)
    low, high = int(values.min()), int(values.max())
    if high - low < 16:  # a flat frame: use the whole stored range
        low, high = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    bright, dark = (low, high) if photometric == "MONOCHROME1" else (high, low)
    limit = (1 << bits) - 1
    blended = np.rint(dark + coverage * (bright - dark)).astype(np.int64)
    drawn = back_mask | (coverage > 0)
    frame[drawn] = blended[drawn] & limit
    data[:count * dtype.itemsize] = frame.astype(dtype).tobytes()


def _stored_values(frame: np.ndarray, stored: int, signed: bool) -> np.ndarray:
    """The frame's values as the image means them (BitsStored, two's complement if signed)."""
    values = frame.astype(np.int64) & ((1 << stored) - 1)
    if signed:
        sign = 1 << (stored - 1)
        values = np.where(values & sign, values - (1 << stored), values)
    return values


def _paint_rgb(ds: Dataset, data: bytearray, rows: int, columns: int,
               coverage: np.ndarray, back_mask: np.ndarray) -> None:
    count = rows * columns * 3
    planar = int(ds.get("PlanarConfiguration", 0) or 0) == 1
    flat = np.frombuffer(data, dtype=np.uint8, count=count).copy()
    drawn = back_mask | (coverage > 0)
    grey = np.rint(coverage * 255).astype(np.uint8)
    if planar:
        planes = flat.reshape(3, rows, columns)
        for plane in planes:
            plane[drawn] = grey[drawn]
        out = planes
    else:
        pixels = flat.reshape(rows, columns, 3)
        pixels[drawn] = grey[drawn][:, None]
        out = pixels
    data[:count] = out.tobytes()


def sidecar_boxes(path: Path) -> list[Box]:
    """Ground-truth boxes from a ``NAME.json`` beside ``NAME.dcm`` (the shared burned_in corpus).

    The file lists burned-in key/value pairs with pixel boxes; the values are
    the identifying text (age and sex are patient characteristics, not PHI,
    and are left out).
    """
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return []
    try:
        data = json.loads(sidecar.read_text("utf-8"))
        boxes = []
        for pair in data.get("annotation", []):
            key = str(pair.get("key", {}).get("text", "")).strip().lower()
            value = pair.get("value", {})
            text = str(value.get("text", "")).strip()
            x1, y1, x2, y2 = (int(v) for v in value["bbox"])
            if text and not any(word in key for word in _IGNORED_KEYS):
                boxes.append(Box(text, (x1, y1), (x2, y2)))
        return boxes
    except (OSError, ValueError, KeyError, TypeError):
        return []
