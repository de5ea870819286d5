"""Finding input files and telling DICOM from everything else.

Input trees are messy: Part 10 files, files whose preamble was stripped, raw
datasets written by older software without any file meta information,
DICOMDIR indexes, and unrelated files (reports, thumbnails, zero-byte
leftovers).  Classification reads only a small header for the common cases
because a batch may hold many thousands of files; the expensive check (a real
parse with pydicom) is reserved for files that look like raw datasets, since
the cheap heuristic alone could mistake arbitrary binary data for one.

Nothing is skipped silently: every file under the root is yielded with a kind
and, when it will not be processed, a reason.  Reasons are fixed texts that
never contain the path (paths may carry patient names).  The walk is sorted,
so two runs over the same tree see the same files in the same order.  Only
medveil's own temporary files (``.medveil-tmp-*``) are left out.

An input tree is not trusted.  Devices, FIFOs and sockets are never opened
(``/dev/zero`` behind a ``.dcm`` name would be read, and copied, forever);
a symbolic link is followed only when it resolves inside the input root,
unless the caller asks for links to be followed; protected files (the key
file) are never read, whatever points at them; and :func:`read_regular`
reads a file by its resolved path without following a link planted after
discovery, refusing anything that is not a regular file of bounded size.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom

from medveil.dicomio.vr import LONG_VR_CODES
from medveil.errors import MedveilError
from medveil.store.private import TMP_PREFIX

DICOM = "dicom"
DICOMDIR = "dicomdir"
NOT_DICOM = "not-dicom"
UNREADABLE = "unreadable"
#: Never opened at all: devices, FIFOs, links leading out of the input, the key file.
SKIPPED = "skipped"
KINDS = (DICOM, DICOMDIR, NOT_DICOM, UNREADABLE, SKIPPED)

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

REASON_EMPTY = "empty file"
REASON_NOT_RECOGNISED = "no DICM prefix and not a recognizable implicit/explicit VR dataset"
REASON_NOT_REGULAR = "not a regular file (device, FIFO or socket; never opened)"
REASON_OUTSIDE = "symbolic link to a file outside the input (not followed; --follow-symlinks follows it)"
REASON_OUTSIDE_DIR = "symbolic link to a directory (not followed; --follow-symlinks follows it)"
REASON_PROTECTED = "the medveil key file (never read as input)"
REASON_LOOP = "symbolic link to a directory already walked (not followed again)"

# Groups a raw (headerless) dataset plausibly starts with.  Real data almost
# always opens with (0008,0005) or (0008,0008); the others cover group-length
# elements and unusual writers.  Anything else is treated as not DICOM.
_FIRST_GROUPS = frozenset({0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028})
_VRS = frozenset({
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
    b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
})
# Explicit VRs whose length is a 4-byte field after two reserved bytes.
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MAX_META_BYTES = 64 * 1024
_HEADER_BYTES = 132


class DiscoveryError(MedveilError):
    """The input root itself cannot be used."""


@dataclass(frozen=True)
class Discovered:
    """One file found under the input root and what it appears to be.

    ``real`` is the resolved path to read (links followed once, at discovery);
    None where the file will not be read.
    """

    path: Path
    kind: str
    reason: str | None = None
    real: Path | None = None


@dataclass(frozen=True)
class _Rules:
    root: Path  # resolved
    follow_symlinks: bool
    protected: frozenset[Path]  # resolved
    #: (device, inode) of each protected file: a hard link to it has another path but the same inode.
    protected_ids: frozenset = frozenset()


def discover(root: Path | str, *, follow_symlinks: bool = False,
             protected: tuple[Path, ...] = ()) -> Iterator[Discovered]:
    """Yield every file under *root* (or *root* itself if it is a file), classified.

    Order is deterministic: entries of each directory sorted by name, depth
    first.  A symbolic link is followed only when its target lies inside
    *root*, or everywhere with *follow_symlinks* (directories then once each,
    so a loop ends); files in *protected* (the key file) are never read.
    """
    root = Path(root)
    try:
        is_dir = root.is_dir()
        exists = is_dir or root.exists() or root.is_symlink()
    except OSError:
        raise DiscoveryError(f"the input path {root} cannot be examined") from None
    if not exists:
        raise DiscoveryError(f"the input path {root} does not exist")
    rules = _Rules(root=root.resolve(), follow_symlinks=follow_symlinks,
                   protected=frozenset(Path(p).resolve() for p in protected),
                   protected_ids=frozenset(_identity(Path(p)) for p in protected))
    if not is_dir:
        yield _classify_checked(root, root.resolve(), rules)
        return
    yield from _walk(root, rules)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(root: Path, rules: _Rules) -> Iterator[Discovered]:
    stack: list[Iterator[os.DirEntry[str]]] = []
    listing = _sorted_entries(root)
    if isinstance(listing, Discovered):
        yield listing
        return
    visited = {_identity(root)}
    stack.append(iter(listing))
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith(TMP_PREFIX):
            continue
        path = Path(entry.path)
        try:
            is_real_dir = entry.is_dir(follow_symlinks=False)
            is_link = entry.is_symlink()
        except OSError as exc:
            yield Discovered(path, UNREADABLE, _os_reason(exc))
            continue
        real = path.resolve() if is_link else path
        if is_link and _is_dir_target(path):
            if not rules.follow_symlinks:
                yield Discovered(path, SKIPPED, REASON_OUTSIDE_DIR)
                continue
            if _identity(real) in visited:
                yield Discovered(path, SKIPPED, REASON_LOOP)
                continue
            is_real_dir = True
        if is_real_dir:
            visited.add(_identity(real))
            listing = _sorted_entries(path)
            if isinstance(listing, Discovered):
                yield listing
            else:
                stack.append(iter(listing))
            continue
        if is_link and not rules.follow_symlinks and not _inside(real, rules.root):
            yield Discovered(path, SKIPPED, REASON_OUTSIDE)
            continue
        yield _classify_checked(path, real, rules)


def _identity(path: Path) -> tuple[int, int] | Path:
    try:
        info = os.stat(path)
    except OSError:
        return path
    return info.st_dev, info.st_ino


def _classify_checked(path: Path, real: Path, rules: _Rules) -> Discovered:
    if real in rules.protected or (rules.protected_ids and _identity(real) in rules.protected_ids):
        return Discovered(path, SKIPPED, REASON_PROTECTED)
    found = classify(real)
    return Discovered(path, found.kind, found.reason, real if found.kind in (DICOM, DICOMDIR) else None)


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]] | Discovered:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        return Discovered(directory, UNREADABLE, f"directory cannot be listed: {_os_reason(exc)}")


def _is_dir_target(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def classify(path: Path | str) -> Discovered:
    """Decide what *path* is, reading as little of it as possible."""
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            # Never open FIFOs or devices: reading them can block forever, or never end.
            return Discovered(path, SKIPPED, REASON_NOT_REGULAR)
        if info.st_size == 0:
            return Discovered(path, NOT_DICOM, REASON_EMPTY)
        # A FIFO swapped in since the stat must not block the walk: opened without blocking, checked again.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            opened = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            return Discovered(path, SKIPPED, REASON_NOT_REGULAR)
        with os.fdopen(fd, "rb") as handle:
            found = _classify_open(path, handle, opened.st_size)
            return Discovered(path, found.kind, found.reason, path if found.kind in (DICOM, DICOMDIR) else None)
    except OSError as exc:
        return Discovered(path, UNREADABLE, _os_reason(exc))


class InputTooLarge(MedveilError):
    """A file is larger than the caller is prepared to hold in memory."""


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of the regular file at *path*, read without following a final symbolic link.

    *path* is the resolved path discovery recorded: a link or a FIFO put in
    its place since is refused (``O_NOFOLLOW``, ``O_NONBLOCK`` and an
    ``fstat`` of what was opened), and so is a file over *limit* bytes
    (:class:`InputTooLarge`), before anything is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MedveilError("not a regular file (device, FIFO or socket; never read)")
        if limit is not None and info.st_size > limit:
            from medveil.runner.limits import human

            raise InputTooLarge(f"the file ({human(info.st_size)}) is larger than a worker's memory budget "
                                f"allows for one file ({human(limit)}); raise --memory-budget to process it")
        data = os.read(fd, info.st_size) if info.st_size else b""  # one read: no second copy
        if len(data) == info.st_size:
            return data
        chunks = [data]  # a read cut short (over 2 GiB, or a file shrinking under us)
        remaining = info.st_size - len(data)
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 30))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def classify_bytes(name: str, data: bytes) -> Discovered:
    """Classify an object already read (from object storage), as :func:`classify` would.

    *name* is only used to recognise a file called DICOMDIR.
    """
    if not data:
        return Discovered(Path(name), NOT_DICOM, REASON_EMPTY)
    return _classify_open(Path(name), io.BytesIO(data), len(data))


def _classify_open(path: Path, handle: BinaryIO, size: int) -> Discovered:
    header = handle.read(_HEADER_BYTES)
    named_dicomdir = path.name.upper() == "DICOMDIR"
    if header[128:132] == b"DICM" or header[:4] == b"DICM":
        # Part 10 (or Part 10 without preamble).  Even if the meta group is
        # damaged it is reported as DICOM: the processor will then quarantine
        # it with a reason instead of it vanishing as "not DICOM".
        handle.seek(132 if header[128:132] == b"DICM" else 4)
        meta = read_meta_group(handle)
        if meta is not None:
            sop_class = meta.get(0x00020002, b"").rstrip(b"\x00 ").decode("ascii", "replace")
            if sop_class == MEDIA_STORAGE_DIRECTORY or named_dicomdir:
                return Discovered(path, DICOMDIR)
        return Discovered(path, DICOM)
    if _looks_like_raw_dataset(header, size):
        handle.seek(0)
        groups = _dataset_groups(handle)
        if named_dicomdir and 0x0004 in groups:
            return Discovered(path, DICOMDIR)
        if 0x0008 in groups:
            return Discovered(path, DICOM)
    return Discovered(path, NOT_DICOM, REASON_NOT_RECOGNISED)


def read_meta_group(handle: BinaryIO) -> dict[int, bytes] | None:
    """Parse the explicit-VR little-endian group 0002 at the current position.

    A tiny parser of our own: pydicom cannot read a meta group that lacks the
    preamble, and a full parse would read far more than the few hundred bytes
    needed here.  Returns ``None`` when the group is malformed.
    """
    elements: dict[int, bytes] = {}
    consumed = 0
    while consumed < _MAX_META_BYTES:
        start = handle.tell()
        head = handle.read(8)
        if len(head) < 8:
            break
        group, element = struct.unpack("<HH", head[:4])
        if group != 0x0002:
            handle.seek(start)
            break
        vr = head[4:6]
        if vr not in _VRS:
            return None
        if vr in LONG_VR_CODES:
            extra = handle.read(4)
            if len(extra) < 4:
                return None
            (length,) = struct.unpack("<I", extra)
        else:
            (length,) = struct.unpack("<H", head[6:8])
        if length == _UNDEFINED_LENGTH or consumed + length > _MAX_META_BYTES:
            return None
        value = handle.read(length)
        if len(value) < length:
            return None
        elements[(group << 16) | element] = value
        consumed = handle.tell() - start + consumed
    return elements or None


def _looks_like_raw_dataset(header: bytes, size: int) -> bool:
    """Cheap, conservative test for a dataset written without preamble or meta."""
    if len(header) < 8:
        return False
    group, _element = struct.unpack("<HH", header[:4])
    if group not in _FIRST_GROUPS:
        return False
    vr = header[4:6]
    if vr in _VRS:  # explicit VR little endian
        if vr in LONG_VR_CODES:
            if len(header) < 12 or header[6:8] != b"\x00\x00":
                return False
            (length,) = struct.unpack("<I", header[8:12])
            return length == _UNDEFINED_LENGTH or length <= size - 12
        (length,) = struct.unpack("<H", header[6:8])
        return length <= size - 8
    (length,) = struct.unpack("<I", header[4:8])  # implicit VR little endian
    return length == _UNDEFINED_LENGTH or length <= size - 8


def _dataset_groups(source: BinaryIO) -> set[int]:
    """Groups present when pydicom parses *source*; empty when it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(source, force=True, stop_before_pixels=True)
            return {tag.group for tag in ds.keys()}
    except Exception:  # any parse failure just means "not a dataset we recognise"
        return set()


def _os_reason(exc: OSError) -> str:
    """Describe an OS error without its filename (which may hold PHI)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found (possibly a broken symbolic link)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    name = errno.errorcode.get(exc.errno or 0)
    return f"cannot be read ({name or type(exc).__name__})"
