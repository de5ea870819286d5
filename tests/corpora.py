"""Where the real DICOM test corpora live: only files that are on disk, never downloads.

pydicom's ``get_testdata_files`` asks the network for files the wheel lacks
once the pydicom-data package is installed, so the tests list directories
themselves.
"""

from __future__ import annotations

from pathlib import Path

import pydicom.data


def pydicom_files() -> Path:
    return Path(pydicom.data.__file__).parent / "test_files"


def pydicom_data_files() -> Path | None:
    try:
        import data_store
    except ImportError:
        return None
    return Path(data_store.__file__).parent / "data"


def deid_data_files() -> Path | None:
    try:
        import deid_data
    except ImportError:
        return None
    return Path(deid_data.__file__).parent / "data"


def all_corpora() -> dict[str, Path]:
    found = {"pydicom": pydicom_files(), "pydicom-data": pydicom_data_files(), "deid-data": deid_data_files()}
    return {name: path for name, path in found.items() if path is not None and path.is_dir()}
