"""How much memory one file may cost a worker, checked before the bytes that would cost it exist.

A 1 MB deflated file can inflate to gigabytes, and a few kB of JPEG can
declare an image of gigabytes; the process that inflates or decodes it is
killed by the kernel, and with it (before medveil replaced dead workers)
the whole batch.  So each worker has a memory budget, and a file is refused
with a reason, before anything is inflated, read or decoded, when the
sizes it declares would need more than that:

* the file itself (the input, pydicom's copy of its values and the output
  are held together: about :data:`FILE_FACTOR` times its size),
* a deflated dataset's inflated size (measured by inflating it in small
  pieces that are thrown away, so the measurement itself costs no memory),
* the decoded pixels, when a pixel step (Clean Pixel Data, Clean
  Recognizable Visual Features) will decode them, and every compressed
  frame's own declared size, which may not exceed Rows x Columns.

The default budget is the machine's available memory shared by the workers,
kept to a safe fraction of it.
"""

from __future__ import annotations

import os
import re
import zlib

from pydicom.dataset import Dataset

from medveil.errors import QuarantineError

#: Peak memory of the header path, as a multiple of the file's size (measured: 3.2 on a 60 MB image).
FILE_FACTOR = 4
#: Peak memory while a deflated dataset is parsed and cleaned, per inflated byte.
INFLATED_FACTOR = 5
#: Peak memory of a pixel step per decoded byte (decoded frames, a masked copy, the re-encoded output).
DECODED_FACTOR = 4
#: The least budget a worker gets, whatever the machine says (pydicom and numpy alone need this much).
MINIMUM = 256 << 20
_FRACTION = 0.8
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in "512M", "4G", "1.5GiB" or a plain number of bytes."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 4G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_memory() -> int:
    """Memory the machine can give without swapping (MemAvailable), or its physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def default_memory_budget(workers: int) -> int:
    """Each worker's share of the memory available now, kept to 80% of it."""
    return max(MINIMUM, int(available_memory() * _FRACTION) // max(1, workers))


def human(size: int) -> str:
    """A byte count for people: "512 KiB", "3.2 GiB"."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):,.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"


def _refuse(what: str, need: int, budget: int) -> QuarantineError:
    return QuarantineError(f"{what} needs about {human(need)}, more than a worker's memory budget "
                           f"({human(budget)}); raise --memory-budget to process it")


def file_limit(budget: int) -> int:
    """The largest file a worker with *budget* may read."""
    return budget // FILE_FACTOR


def check_inflated_size(deflated: bytes | memoryview, budget: int) -> None:
    """Refuse a deflated dataset whose inflated size would not fit *budget*; nothing is kept."""
    limit = budget // INFLATED_FACTOR
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    view = memoryview(deflated)
    for start in range(0, len(view), 1 << 16):
        chunk: memoryview | bytes = view[start:start + (1 << 16)]
        while chunk:
            piece = inflater.decompress(chunk, 1 << 20)
            total += len(piece)
            if total > limit:
                raise _refuse("the inflated dataset", total * INFLATED_FACTOR, budget)
            chunk = inflater.unconsumed_tail
        if inflater.eof:
            break


def decoded_size(ds: Dataset) -> int:
    """Bytes the decoded pixels of *ds* occupy, by its Image Pixel description (0 if it has none)."""
    try:
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 8)
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        raise QuarantineError("the image pixel description is not numeric") from None
    return rows * columns * samples * frames * max(1, (bits + 7) // 8)


def check_decode(ds: Dataset, budget: int) -> None:
    """Refuse pixels whose decoding would not fit *budget*, or whose frames claim more than Rows x Columns."""
    need = decoded_size(ds) * DECODED_FACTOR
    if need > budget:
        raise _refuse("decoding the pixels", need, budget)
    element = ds["PixelData"] if "PixelData" in ds else None
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    encapsulated = bool(getattr(syntax, "is_encapsulated", False)) or getattr(element, "is_undefined_length", False)
    if element is None or not encapsulated:
        return
    from pydicom.encaps import generate_fragments

    from medveil.pixels.codestream import frame_size

    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    try:
        for fragment in generate_fragments(element.value):
            declared = frame_size(fragment)
            if declared is not None and (declared[0] > rows or declared[1] > columns):
                raise QuarantineError("a compressed frame declares a larger image than Rows x Columns; "
                                      "it is not decoded")
    except QuarantineError:
        raise
    except Exception:
        raise QuarantineError("the encapsulated pixel data cannot be split into fragments") from None
