"""Frames of a dataset as 8-bit greyscale images that OCR engines can read.

OCR engines take 8-bit greyscale with the usual polarity; DICOM pixel data is
anything from 1 to 16 bits, greyscale in either polarity or colour in RGB or
YBR. Burned-in text is drawn by the modality at or near the top of the stored
range, which a clinical window may clip to black (a CT label at the maximum
stored value survives a soft-tissue window, but an 8-bit screen capture stored
in a 16-bit CT object does not). :func:`display_view` shows a frame the way a
viewer would, falling back to the frame's own range where the window does not
fit (the views OCR reads are made in :mod:`medveil.pixels.detect`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.pixels import (
    apply_modality_lut,
    apply_voi_lut,
    convert_color_space,
    get_decoder,
)
from pydicom.uid import ExplicitVRLittleEndian

_YBR = ("YBR_FULL", "YBR_FULL_422")


def iter_frames(ds: Dataset) -> Iterator[np.ndarray]:
    """Each frame as decoded pixels: (rows, columns) greyscale or (rows, columns, 3) RGB.

    Frames are decoded one at a time so a long cine loop never sits in memory
    whole. pydicom returns colour interleaved whatever the Planar
    Configuration, and converts YBR to RGB itself when ``as_rgb`` is honoured;
    the decoder's own report of the photometric interpretation says whether it
    did, and the conversion is done here when it did not.
    """
    file_meta = getattr(ds, "file_meta", None)
    syntax = getattr(file_meta, "TransferSyntaxUID", None) or ExplicitVRLittleEndian
    decoder = get_decoder(syntax)
    for frame, meta in decoder.iter_array(ds, as_rgb=True):
        interpretation = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))
        if frame.ndim == 3 and interpretation in _YBR:
            frame = convert_color_space(frame, interpretation, "RGB")
        yield frame


def frame_digest(frame: np.ndarray) -> bytes:
    """A digest of a decoded frame, so repeated frames in a cine loop are read once.

    Shape and type are part of the digest: the same bytes in another shape are
    another image.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{frame.shape}{frame.dtype.str}".encode())
    digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.digest()


def is_inverted(ds: Dataset) -> bool:
    """MONOCHROME1: low values are white, so text drawn at the maximum is dark."""
    return str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"


def to_grey(frame: np.ndarray) -> np.ndarray:
    """Colour to grey (ITU-R BT.601 luma); greyscale unchanged, as float64."""
    data = np.asarray(frame)
    if data.ndim == 3:
        channels = data[..., :3].astype(np.float64)
        if channels.shape[2] < 3:
            return channels[..., 0]
        return channels @ np.array([0.299, 0.587, 0.114])
    return data.astype(np.float64)


def display_view(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """The frame as a viewer would show it, in 8 bits, MONOCHROME2 polarity.

    8-bit data and colour are shown as stored. Deeper greyscale uses the VOI
    LUT or the first Window Center/Width when the dataset has them, since that
    is what the modality meant to be seen, and otherwise a 1st-99.9th
    percentile stretch, which ignores a few extreme pixels that would
    otherwise squash the rest into a narrow band.
    """
    if frame.ndim == 3 or int(ds.get("BitsStored") or 8) <= 8:
        grey = _stretch(to_grey(frame), *_range(to_grey(frame), 0.0, 100.0))
    else:
        windowed = _windowed(frame, ds)
        if windowed is not None and (_mostly_clipped(windowed) or _too_flat(windowed)):
            windowed = None  # the window does not fit the stored values (e.g. an 8-bit capture in a 16-bit object)
        if windowed is None:
            data = frame.astype(np.float64)
            windowed = _stretch(data, *_range(data, 1.0, 99.9))
        grey = windowed
    return _polarity(grey, ds)


def _windowed(frame: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """The frame through the modality and VOI transforms, scaled to 8 bits; None without either VOI."""
    has_lut = "VOILUTSequence" in ds
    has_window = "WindowCenter" in ds and "WindowWidth" in ds
    if not (has_lut or has_window):
        return None
    try:
        values = apply_modality_lut(frame, ds).astype(np.float64)
        if has_lut:
            values = apply_voi_lut(values, ds, index=0, prefer_lut=True).astype(np.float64)
            low, high = _lut_range(ds)
            return _stretch(values, low, high)
        center = float(_first(ds.WindowCenter))
        width = float(_first(ds.WindowWidth))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    if width < 1:
        return None
    # The linear function of PS3.3 C.11.2.1.2.1: the window spans center - 0.5 +- (width - 1) / 2.
    low = center - 0.5 - (width - 1) / 2
    return _stretch(values, low, low + max(width - 1, 1))


def _mostly_clipped(grey: np.ndarray, share: float = 0.9) -> bool:
    """Whether nearly every pixel sits at black or white: a window that shows nothing."""
    return grey.size > 0 and float(np.mean((grey == 0) | (grey == 255))) > share


def _too_flat(grey: np.ndarray, levels: float = 32.0) -> bool:
    """Whether nearly all pixels fall within a few grey levels: a window far from the stored values."""
    if grey.size == 0:
        return False
    low, high = np.percentile(grey, [0.5, 99.5])
    return float(high - low) < levels


def _lut_range(ds: Dataset) -> tuple[float, float]:
    item = ds.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2]) if "LUTDescriptor" in item else 16
    return 0.0, float(2 ** bits - 1)


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0]
    return value


def _range(data: np.ndarray, low_pct: float, high_pct: float) -> tuple[float, float]:
    if data.size == 0:
        return 0.0, 0.0
    low, high = np.percentile(data, [low_pct, high_pct])
    if high <= low:  # a nearly uniform frame: fall back to the full range
        low, high = float(data.min()), float(data.max())
    return float(low), float(high)


def _stretch(data: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.clip(np.round((data - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def _polarity(grey: np.ndarray, ds: Dataset) -> np.ndarray:
    return 255 - grey if is_inverted(ds) else grey
