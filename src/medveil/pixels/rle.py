"""Masking RLE Lossless Pixel Data: decode, mask, re-encode, prove it.

RLE segments cannot be edited in place (a run may span the box edge), but RLE
is lossless and pydicom both decodes and encodes it without extra packages.
So the frames are decoded to an array, masked, encoded again under the same
transfer syntax and then decoded once more: the result is only accepted if
every sample outside the boxes equals the original and every sample inside
equals the fill.  Until that check passes the dataset is not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.pixels.encoders import RLELosslessEncoder
from pydicom.uid import RLELossless

from medveil.errors import safe_reason
from medveil.pixels.layout import MaskingNotSupported, PixelLayout
from medveil.pixels.native import Region

#: Image Pixel module attributes a bare dataset needs for pydicom to decode it.
_PIXEL_MODULE = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)


def _decode(ds: Dataset, layout: PixelLayout) -> np.ndarray:
    """Decode to (frames, rows, columns, samples) with no colour conversion.

    ``raw=True`` keeps YBR_FULL samples as YBR, so what is masked and
    re-encoded is what was stored.
    """
    try:
        arr = pixel_array(ds, raw=True)
    except Exception as exc:  # noqa: BLE001  (pydicom raises several types for bad data)
        raise MaskingNotSupported(
            "RLE Pixel Data could not be decoded: " + safe_reason(exc)
        ) from exc
    return arr.reshape(layout.frames, layout.rows, layout.columns, layout.samples)


def _encode(arr: np.ndarray, ds: Dataset, layout: PixelLayout) -> bytes:
    """Encode each (rows, columns, samples) frame and encapsulate them with a basic offset table.

    pydicom's validation is off because it only admits the 8/16-bit profiles
    of PS3.5 Table 8.2.2-1, while 32-bit RLE files exist (RT Dose); the
    round-trip check in :func:`mask_rle` is the real validation.
    """
    options: dict[str, Any] = {
        "rows": layout.rows,
        "columns": layout.columns,
        "number_of_frames": 1,
        "samples_per_pixel": layout.samples,
        "bits_allocated": layout.bits_allocated,
        "bits_stored": layout.bits_stored,
        "pixel_representation": int(layout.signed),
        "photometric_interpretation": str(ds.PhotometricInterpretation),
        # The decoded array is (rows, columns, samples) whatever the header
        # says; RLE segments are per sample either way.
        "planar_configuration": 0,
    }
    frames = []
    for frame in arr:
        frame = frame[..., 0] if layout.samples == 1 else frame
        frames.append(
            RLELosslessEncoder.encode(
                np.ascontiguousarray(frame),
                encoding_plugin="pydicom",
                validate=False,
                **options,
            )
        )
    return encapsulate(frames)


def mask_rle(
    ds: Dataset, layout: PixelLayout, regions: Iterable[Region], fill: tuple[int, ...]
) -> tuple[bytes, int]:
    """Return new encapsulated RLE Pixel Data with *regions* masked, and bytes changed.

    The count is of bytes in the decoded (native) representation, so it can
    be compared with the native path.  *ds* itself is not modified.
    """
    original = _decode(ds, layout)
    masked = original.copy()
    inside = np.zeros(original.shape[:3], dtype=bool)
    for frame, x1, y1, x2, y2 in regions:
        masked[frame, y1:y2, x1:x2, :] = fill
        inside[frame, y1:y2, x1:x2] = True

    try:
        encoded = _encode(masked, ds, layout)
    except Exception as exc:  # noqa: BLE001  (the encoder refuses with several types)
        raise MaskingNotSupported("RLE re-encoding failed: " + safe_reason(exc)) from exc

    check = Dataset()
    check.file_meta = FileMetaDataset()
    check.file_meta.TransferSyntaxUID = RLELossless
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            setattr(check, keyword, ds[keyword].value)
    check.PixelData = encoded
    check["PixelData"].VR = "OB"
    check["PixelData"].is_undefined_length = True
    decoded = _decode(check, layout)
    if not (
        np.array_equal(decoded[~inside], original[~inside])
        and np.array_equal(decoded[inside], masked[inside])
    ):
        raise MaskingNotSupported(
            "re-encoded RLE Pixel Data did not round-trip exactly"
        )

    changed_samples = original != masked
    bps = layout.bytes_per_sample
    changed = sum(
        int(
            np.count_nonzero(changed_samples & (_byte(original, i) != _byte(masked, i)))
        )
        for i in range(bps)
    )
    return encoded, changed


def _byte(arr: np.ndarray, index: int) -> np.ndarray:
    """Byte *index* (0 = least significant) of every sample, as unsigned."""
    unsigned = arr.astype(arr.dtype.newbyteorder("=")).view(
        arr.dtype.str.replace("i", "u")
    )
    return (unsigned >> (8 * index)) & 0xFF
