"""How a dataset's pixels are laid out, and what "masked" means for them.

Masking writes one fill value per sample into a rectangle of pixels.  Both the
in-place writer for native Pixel Data (:mod:`medveil.pixels.native`) and the
decode/re-encode path for RLE (:mod:`medveil.pixels.rle`) need the same facts
from the Image Pixel module, and the same answer to "which value hides text on
this image?".  Gathering them here once keeps the two paths from disagreeing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from medveil.errors import InvalidValueError, MedveilError

#: Photometric interpretations whose samples are luminance.
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")

#: Colour interpretations with one luma and two chroma samples, where black
#: is luma 0 and both chroma samples at their mid-point (no colour).
YBR_FULL = ("YBR_FULL", "YBR_FULL_422")

#: Named fills accepted by :meth:`PixelLayout.fill_values`.
FILLS = ("min", "zero")


class MaskingNotSupported(MedveilError):
    """These pixels cannot be masked safely; the message says why.

    Raised *before* anything is changed, so a caller can quarantine the file
    rather than release pixels that still carry burned-in text.
    """


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """The Image Pixel module attributes that decide where each sample lives."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    signed: bool
    planar: bool
    photometric: str

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PixelLayout:
        """Read the layout of *ds*'s Pixel Data, refusing what masking cannot handle.

        Every attribute is required rather than defaulted: guessing a layout
        would put the mask in the wrong place and leave the text readable.
        """
        required = (
            "Rows",
            "Columns",
            "SamplesPerPixel",
            "BitsAllocated",
            "BitsStored",
            "PixelRepresentation",
            "PhotometricInterpretation",
        )
        missing = [kw for kw in required if ds.get(kw) in (None, "")]
        if missing:
            raise MaskingNotSupported(
                "Image Pixel module incomplete, missing: " + ", ".join(missing)
            )
        bits_allocated = int(ds.BitsAllocated)
        if bits_allocated == 1:
            raise MaskingNotSupported(
                "BitsAllocated 1 (bit-packed, e.g. binary segmentation) cannot be "
                "masked by pixel box"
            )
        if bits_allocated not in (8, 16, 32):
            raise MaskingNotSupported(
                f"BitsAllocated {bits_allocated} is not supported (8, 16 or 32)"
            )
        bits_stored = int(ds.BitsStored)
        high_bit = int(ds.get("HighBit", bits_stored - 1))
        if not 1 <= bits_stored <= high_bit + 1 <= bits_allocated:
            raise MaskingNotSupported(
                "inconsistent BitsStored/HighBit/BitsAllocated "
                f"({bits_stored}/{high_bit}/{bits_allocated})"
            )
        samples = int(ds.SamplesPerPixel)
        if samples not in (1, 3):
            raise MaskingNotSupported(
                f"SamplesPerPixel {samples} is not supported (1 or 3)"
            )
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        if rows < 1 or columns < 1 or frames < 1:
            raise MaskingNotSupported(
                "Rows, Columns and NumberOfFrames must be positive"
            )
        photometric = str(ds.PhotometricInterpretation).strip().upper()
        return cls(
            rows=rows,
            columns=columns,
            frames=frames,
            samples=samples,
            bits_allocated=bits_allocated,
            bits_stored=bits_stored,
            high_bit=high_bit,
            signed=int(ds.PixelRepresentation) == 1,
            planar=samples > 1 and int(ds.get("PlanarConfiguration") or 0) == 1,
            photometric=photometric,
        )

    @property
    def bytes_per_sample(self) -> int:
        return self.bits_allocated // 8

    @property
    def is_ybr_422(self) -> bool:
        """Native YBR_FULL_422 stores two luma and one shared chroma pair per two pixels."""
        return self.photometric == "YBR_FULL_422"

    @property
    def stored_min(self) -> int:
        return -(1 << (self.bits_stored - 1)) if self.signed else 0

    @property
    def stored_max(self) -> int:
        return (
            (1 << (self.bits_stored - 1)) - 1
            if self.signed
            else (1 << self.bits_stored) - 1
        )

    def fill_values(self, fill: str | int) -> tuple[int, ...]:
        """Return the stored value to write into each sample of a masked pixel.

        ``"min"`` is the value that displays darkest, because burned-in text
        sits on a dark background far more often than on a light one and a
        black box draws no attention to itself:

        * MONOCHROME2: the smallest stored value (0, or ``-2**(BitsStored-1)``
          when signed);
        * MONOCHROME1: the largest, since that interpretation shows high
          values dark;
        * RGB: (0, 0, 0); YBR_FULL / YBR_FULL_422: luma 0 with mid-range
          chroma, which is black rather than the dark green that literal
          zeros would give.

        ``"zero"`` writes literal 0 to every sample, and an ``int`` writes that
        stored value to every sample (it must fit BitsStored and the sign).
        PALETTE COLOR and other interpretations only accept those two, because
        their darkest value depends on a lookup table.
        """
        if isinstance(fill, bool) or not isinstance(fill, (str, int)):
            raise InvalidValueError("fill must be 'min', 'zero' or an int")
        if isinstance(fill, int):
            if not self.stored_min <= fill <= self.stored_max:
                raise InvalidValueError(
                    f"fill {fill} is outside the stored range "
                    f"{self.stored_min}..{self.stored_max}"
                )
            return (fill,) * self.samples
        if fill == "zero":
            return (0,) * self.samples
        if fill != "min":
            raise InvalidValueError(f"fill must be one of {FILLS} or an int")
        if self.photometric == "MONOCHROME2":
            return (self.stored_min,)
        if self.photometric == "MONOCHROME1":
            return (self.stored_max,)
        if self.photometric == "RGB" and self.samples == 3:
            return (0, 0, 0)
        if self.photometric in YBR_FULL and self.samples == 3 and not self.signed:
            mid = 1 << (self.bits_stored - 1)
            return (0, mid, mid)
        raise MaskingNotSupported(
            f"no 'min' fill is defined for PhotometricInterpretation "
            f"{self.photometric}; pass fill='zero' or an int"
        )

    def stored_pattern(self, value: int) -> int:
        """Return *value* as the unsigned bit pattern it has inside one sample.

        Only bits HighBit-BitsStored+1 .. HighBit are set, so a masked sample
        never keeps (or gains) bits above HighBit, where old files hide overlays.
        """
        width_mask = (1 << self.bits_stored) - 1
        return (value & width_mask) << (self.high_bit + 1 - self.bits_stored)
