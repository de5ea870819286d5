"""Where real DICOM files come from, and which of them can carry a synthetic patient.

The default corpus is what any machine can install with pip: pydicom's bundled
test files and the ``pydicom-data`` and ``deid-data`` packages, read from disk
only.  (pydicom's ``get_testdata_files`` would ask the network for files the
wheel lacks once pydicom-data is installed, so it is never called.)  A
project checkout may sit next to a ``shared`` folder with more corpora; it is
found as ``../shared`` from the working directory or through ``MEDVEIL_SHARED``.

Not every file in a corpus is a good source.  A synthetic input must itself be
valid DICOM that a de-identifier can read, so a file is taken only when it
parses as Part 10, is not a DICOMDIR, names its SOP Class, SOP Instance,
Study and Series, passes medveil's completeness check, and can be written
back out.  Every file left out is reported with its reason.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.dataset import Dataset

from medveil.dicomio.integrity import check_complete
from medveil.errors import MedveilError
from medveil.pixels.burned_in import burned_in_reason
from medveil.quiet import silenced
from medveil.synth.burn import unburnable_reason

SHARED_ENV = "MEDVEIL_SHARED"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

#: Corpora whose images show real (or realistic) text in their pixels: names, IDs
#: and dates on ultrasound screens and scanned films.  Under Clean Pixel Data a
#: correct de-identifier changes those pixels, so they never get a "pixels
#: retained" check.
TEXT_IN_PIXELS_CORPORA = frozenset({"deid-data", "shared/burned_in", "shared/presidio"})

_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def pydicom_files() -> Path:
    """pydicom's bundled test files (always installed with pydicom)."""
    return Path(pydicom.data.__file__).parent / "test_files"


def pydicom_data_files() -> Path | None:
    """The ``pydicom-data`` package's files, when it is installed."""
    try:
        import data_store
    except ImportError:
        return None
    return Path(data_store.__file__).parent / "data"


def deid_data_files() -> Path | None:
    """The ``deid-data`` package's files (ultrasound screens with burned-in text)."""
    try:
        import deid_data
    except ImportError:
        return None
    return Path(deid_data.__file__).parent / "data"


def installed_corpora() -> dict[str, Path]:
    """The pip-installable corpora that are on disk here, by name."""
    found = {"pydicom": pydicom_files(), "pydicom-data": pydicom_data_files(),
             "deid-data": deid_data_files()}
    return {name: path for name, path in found.items() if path is not None and path.is_dir()}


def shared_root() -> Path | None:
    """The ``shared`` folder: ``$MEDVEIL_SHARED`` if set, else ``../shared`` from here."""
    configured = os.environ.get(SHARED_ENV)
    candidate = Path(configured) if configured else Path.cwd().parent / "shared"
    return candidate if candidate.is_dir() else None


def shared_corpora() -> dict[str, Path]:
    """Each folder of ``shared/corpora`` as a corpus named ``shared/<folder>``."""
    root = shared_root()
    corpora = root / "corpora" if root is not None else None
    if corpora is None or not corpora.is_dir():
        return {}
    return {f"shared/{path.name}": path for path in sorted(corpora.iterdir()) if path.is_dir()}


def default_corpora() -> dict[str, Path]:
    """The installed corpora plus any shared ones."""
    return {**installed_corpora(), **shared_corpora()}


def name_corpora(corpus_dirs: Mapping[str, Path] | Iterable[Path | str]) -> dict[str, Path]:
    """Corpora by name: a mapping is taken as is, a list is named by folder (or file) name."""
    if isinstance(corpus_dirs, Mapping):
        return {str(name): Path(path) for name, path in corpus_dirs.items()}
    named: dict[str, Path] = {}
    for entry in corpus_dirs:
        path = Path(entry)
        base = path.name or "corpus"
        name, n = base, 2
        while name in named:
            name, n = f"{base}-{n}", n + 1
        named[name] = path
    return named


@dataclass(frozen=True)
class Source:
    """A usable source file and the identifiers it had."""

    corpus: str
    path: Path
    relpath: str
    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    modality: str
    instance_number: int
    pixel_text: str | None  # why its pixels are presumed to show text, or None
    burnable: bool = False  # native pixels text can be drawn into, in a corpus without real text
    #: "transfer syntax/photometric interpretation" of its pixels ("" without Pixel Data): the
    #: selection takes one of each, so that every encoding gets its "pixels retained" check.
    encoding: str = ""
    #: The same instance as an earlier source, in another pixel encoding (pydicom ships
    #: MR_small as RLE, JPEG-LS, JPEG 2000 ...): written as an instance of its own.
    variant: bool = False

    @property
    def origin(self) -> str:
        """``corpus:relative/path``: where it came from, without this machine's folders."""
        return f"{self.corpus}:{self.relpath}"


@dataclass(frozen=True)
class Skipped:
    origin: str
    reason: str


class CorpusError(MedveilError):
    """A corpus that cannot be used at all."""


def iter_files(corpora: Mapping[str, Path]) -> Iterator[tuple[str, Path, str]]:
    """(corpus, path, relative path) for every regular file, corpora and paths sorted."""
    for name in sorted(corpora):
        root = corpora[name]
        if root.is_file():
            yield name, root, root.name
            continue
        if not root.is_dir():
            raise CorpusError(f"corpus {name!r} is not a folder or file: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if filename.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                yield name, path, path.relative_to(root).as_posix()


def scan(corpora: Mapping[str, Path], *,
         max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[list[Source], list[Skipped]]:
    """All usable sources (the first of each SOP Instance UID, and each other pixel encoding of
    it as a variant) and every file left out, with why."""
    sources: list[Source] = []
    skipped: list[Skipped] = []
    first: dict[str, str] = {}
    encodings: dict[str, set[str]] = {}
    for corpus, path, relpath in iter_files(corpora):
        origin = f"{corpus}:{relpath}"
        try:
            source = examine(corpus, path, relpath, max_file_bytes=max_file_bytes)
        except _Unusable as exc:
            skipped.append(Skipped(origin, str(exc)))
            continue
        earlier = first.get(source.sop_instance_uid)
        if earlier is not None:
            if source.encoding and source.encoding not in encodings[source.sop_instance_uid]:
                encodings[source.sop_instance_uid].add(source.encoding)
                sources.append(replace(source, variant=True))
                continue
            skipped.append(Skipped(origin, f"duplicate SOP Instance UID (kept {earlier})"))
            continue
        first[source.sop_instance_uid] = origin
        encodings[source.sop_instance_uid] = {source.encoding}
        sources.append(source)
    return sources, skipped


class _Unusable(Exception):
    """Why one file cannot be a source (the message is the manifest's reason)."""


def examine(corpus: str, path: Path, relpath: str, *,
            max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Source:
    """The :class:`Source` for ``path``; raises ``_Unusable`` with the reason otherwise."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Unusable(f"cannot be read ({type(exc).__name__})") from None
    if size == 0:
        raise _Unusable("empty file")
    if size > max_file_bytes:
        raise _Unusable(f"larger than {max_file_bytes // (1024 * 1024)} MiB")
    ds = read_source(path)
    if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY:
        raise _Unusable("DICOMDIR (an index, not an instance)")
    for keyword in _REQUIRED:
        if not str(ds.get(keyword, "") or "").strip():
            raise _Unusable(f"no {keyword}")
    return Source(
        corpus=corpus,
        path=path,
        relpath=relpath,
        sop_instance_uid=str(ds.SOPInstanceUID).strip(),
        sop_class_uid=str(ds.SOPClassUID).strip(),
        study_uid=str(ds.StudyInstanceUID).strip(),
        series_uid=str(ds.SeriesInstanceUID).strip(),
        modality=str(ds.get("Modality", "") or "").strip().upper(),
        instance_number=_int(ds.get("InstanceNumber")),
        pixel_text=_pixel_text(corpus, ds),
        burnable=corpus not in TEXT_IN_PIXELS_CORPORA and unburnable_reason(ds) is None,
        encoding=_encoding(ds),
    )


def _encoding(ds: Dataset) -> str:
    if "PixelData" not in ds:
        return ""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "").strip()
    return f"{syntax}/{str(ds.get('PhotometricInterpretation', '') or '').strip()}"


def read_source(path: Path) -> Dataset:
    """Read, check and convert every value of ``path``; raise ``_Unusable`` with the reason."""
    data = path.read_bytes()
    try:
        with silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except pydicom.errors.InvalidDicomError:
        raise _Unusable("not a DICOM Part 10 file") from None
    except Exception as exc:  # noqa: BLE001  (any reader failure is a reason to skip)
        raise _Unusable(f"unreadable ({type(exc).__name__})") from None
    if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY:
        return ds
    try:
        check_complete(data, ds)
    except MedveilError as exc:
        raise _Unusable(str(exc)) from None
    try:
        with silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _convert_all(ds)
            ds.save_as(io.BytesIO(), enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001  (any decoder or writer failure likewise)
        raise _Unusable(f"cannot be decoded and written back ({type(exc).__name__})") from None
    return ds


def _convert_all(ds: Dataset) -> None:
    """Convert every raw element now, while the original character set is in force."""
    for element in ds:
        if element.VR == "SQ" and element.value is not None:
            for item in element.value:
                _convert_all(item)


def _pixel_text(corpus: str, ds: Dataset) -> str | None:
    if corpus in TEXT_IN_PIXELS_CORPORA and "PixelData" in ds:
        return f"corpus {corpus} shows text in its pixels"
    return burned_in_reason(ds)


def _int(value: object) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0
