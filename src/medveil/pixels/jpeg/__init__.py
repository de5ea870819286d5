"""
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

The package reads the codestream (``parse``), decodes and re-encodes scans
(``scan``) and chooses and masks the blocks (``mask``).  Public API:
:func:`mask_jpeg_blocks`, :func:`read_coefficients`, :func:`masked_pixel_region`,
:class:`JpegBlockError`.
"""

from medveil.pixels.jpeg.mask import mask_jpeg_blocks, masked_pixel_region, read_coefficients
from medveil.pixels.jpeg.parse import JpegBlockError

__all__ = [
    "JpegBlockError",
    "mask_jpeg_blocks",
    "masked_pixel_region",
    "read_coefficients",
]
