"""Finding and reading the files a validation looks at, without ever raising."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
from pydicom.dataset import FileDataset

from medveil.quiet import silenced

SKIPPED_NAMES = {"DICOMDIR", "uid_mapping.csv", "patid_mapping.csv"}


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root``, sorted, hidden files and DICOMDIRs left out."""
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or path.name in SKIPPED_NAMES:
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> FileDataset | None:
    """The dataset in ``path``, or None when it is not readable DICOM.

    Values are converted lazily by pydicom, so a file whose header parses may
    still hold an element that cannot be converted; callers that convert
    values guard each one.
    """
    try:
        with silenced():
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except Exception:
        return None
