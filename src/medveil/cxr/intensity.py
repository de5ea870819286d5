"""One intensity normalisation for every way an image reaches the anonymiser: stored values -> a [0, 1] display view.

Why one function: the networks were trained on 8-bit display images (``../shared/cxr`` PNGs divided by 255).  A
12-bit radiograph stored in 16 bits and divided by 65535 looks almost black to them, and a DICOM image shown
without its VOI LUT or window is not what a reader (or the training data) saw, so the field they compute would not
be the one measured in ``docs/cxr.md``.  Both the PNG path (``medveil cxr anonymize``) and the DICOM path
(``deidentify --clean-visual-features cxr``) therefore go through :func:`display_window`, with the same rules:

1. a VOI LUT Sequence (PS3.3 C.11.2) or a Window Center/Width (with its VOI LUT Function: LINEAR, LINEAR_EXACT or
   SIGMOID), after the Modality LUT (Rescale Slope/Intercept), maps the values to [0, 1];
2. otherwise, data of at most 8 bits are already display values: [0, 255] -> [0, 1];
3. otherwise (12- or 16-bit data without a window, e.g. a 16-bit PNG), the 0.5th-99.5th percentile of the image is
   the window (a robust min-max: a burned-in marker at full scale does not darken the image);
4. MONOCHROME1 is inverted, so the view is always "bone bright".

The view only decides the *field*: the deformation is geometric, so it is applied to the stored values themselves
(``apply.warp_values``), and no value is ever mapped through the window and back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Window:
    """How stored values become the [0, 1] view; ``kind`` says which rule above decided it (for the audit)."""

    kind: str  # "voi-lut" | "window" | "8-bit" | "percentile"
    center: float = 0.0
    width: float = 1.0
    function: str = "LINEAR"
    slope: float = 1.0
    intercept: float = 0.0
    invert: bool = False
    lut: np.ndarray | None = None  # VOI LUT Sequence data
    lut_first: int = 0
    lut_bits: int = 16

    def describe(self) -> dict:
        return {"window": self.kind, "invert": self.invert}


def window_value(x: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """PS3.3 C.11.2.1.2-3 windowing onto [0, 1] (the standard's ``y_min = 0``, ``y_max = 1``)."""
    x = np.asarray(x, dtype=np.float64)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-12)))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / max(width, 1e-12) + 0.5, 0.0, 1.0)
    if width < 1:  # LINEAR requires width >= 1; treat a bad value like the narrowest legal window
        width = 1.0
    if width == 1:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def display_window(values: np.ndarray, *, bits: int, ds=None) -> Window:
    """The window for ``values`` (stored values of one frame) with ``bits`` bits stored; ``ds`` a DICOM dataset (or
    ``None`` for a PNG).  Rules 1-4 of the module docstring."""
    slope, intercept, invert = 1.0, 0.0, False
    if ds is not None:
        invert = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
        slope = _float(ds.get("RescaleSlope"), 1.0) or 1.0
        intercept = _float(ds.get("RescaleIntercept"), 0.0)
        seq = ds.get("VOILUTSequence")
        if seq:
            lut = _voi_lut(seq[0])
            if lut is not None:
                data, first, lut_bits = lut
                return Window("voi-lut", slope=slope, intercept=intercept, invert=invert, lut=data, lut_first=first,
                              lut_bits=lut_bits)
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is not None and width is not None and width > 0:
            function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
            return Window("window", center, width, function, slope, intercept, invert)
    if bits <= 8:
        return Window("8-bit", 127.5, 255.0, "LINEAR_EXACT", 1.0, 0.0, invert)
    lo, hi = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
    if hi <= lo:
        hi = lo + 1.0
    # percentiles of the stored values: the window applies to stored values (slope 1) for this rule
    return Window("percentile", (lo + hi) / 2, hi - lo, "LINEAR_EXACT", 1.0, 0.0, invert)


def to_view(values: np.ndarray, window: Window) -> np.ndarray:
    """Stored values -> float32 view in [0, 1], MONOCHROME2 sense (bright = dense)."""
    x = np.asarray(values, dtype=np.float64)
    if window.kind == "voi-lut":
        assert window.lut is not None  # a "voi-lut" window carries its LUT
        idx = np.clip(np.rint(x * window.slope + window.intercept) - window.lut_first, 0, len(window.lut) - 1)
        view = window.lut[idx.astype(np.int64)] / float(2 ** window.lut_bits - 1)
    else:
        view = window_value(x * window.slope + window.intercept, window.center, window.width, window.function)
    view = np.clip(view, 0.0, 1.0)
    if window.invert:
        view = 1.0 - view
    return view.astype(np.float32)


def from_view(view: np.ndarray, window: Window, lo: float, hi: float) -> np.ndarray:
    """The (linear) inverse of :func:`to_view` for generators that output intensities (not a field), clipped to the
    stored range ``[lo, hi]``.  A non-linear LUT is inverted only through its end points."""
    v = np.asarray(view, dtype=np.float64)
    if window.invert:
        v = 1.0 - v
    if window.kind == "voi-lut":
        modality = lo + v * (hi - lo)
        return np.clip(modality, lo, hi)
    centre, width = window.center, window.width
    modality = centre - width / 2 + v * width
    stored = (modality - window.intercept) / window.slope
    return np.clip(stored, lo, hi)


def _voi_lut(item) -> tuple[np.ndarray, int, int] | None:
    desc = item.get("LUTDescriptor")
    data = item.get("LUTData")
    if desc is None or data is None or len(desc) < 3:
        return None
    count = int(desc[0]) or 65536
    first = int(desc[1])
    bits = int(desc[2])
    if isinstance(data, bytes | bytearray):
        table = np.frombuffer(data, dtype="<u2" if bits > 8 else np.uint8)
    elif isinstance(data, int | float):
        table = np.asarray([data], dtype=np.float64)
    else:
        table = np.asarray(list(data), dtype=np.float64)
    table = np.asarray(table, dtype=np.float64).ravel()[:count]
    if not len(table) or not 1 <= bits <= 16:
        return None
    return table, first, bits


def _first(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or hasattr(value, "__getitem__") and not isinstance(value, str | bytes):
        try:
            value = value[0]
        except (IndexError, TypeError):
            return None
    return _float(value, None)


def _float(value, default):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
