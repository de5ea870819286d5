"""MIDI-B style mapping files: ``uid_mapping.csv`` and ``patid_mapping.csv``.

Each file pairs an original identifier (``id_old``) with its pseudonym
(``id_new``).  They let an authorised party re-link results to the source data
and let evaluators check that the same original always became the same
pseudonym, so they contain original identifiers and are kept in a private
directory (mode 0700) next to, never inside, the released output.

Design choices, and why:

* The pairing must be a bijection.  Two originals sharing one pseudonym would
  silently merge two studies or patients in the output; one original with two
  pseudonyms would split one.  Both are reported as
  :class:`MappingCollisionError`, whose message names the kind of identifier
  but never a value (see :mod:`medveil.errors`).
* Rows are sorted by ``id_old`` and written with ``\\n`` endings through the
  :mod:`csv` module, so writing the same pairs again gives byte-identical files
  (easy to diff, checksum and compare across runs).
* :meth:`MappingTable.write` merges with what is already on disk, because a
  resumed or repeated run only sees part of the data; the file accumulates.
* Files are replaced atomically (temporary file in the same directory, then
  :func:`os.replace`) so a crash never leaves a truncated mapping behind.  The
  temporary name starts with ``.medveil-tmp-`` so input discovery ignores it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from medveil.errors import MedveilError
from medveil.store.private import private_dir, write_durably

HEADER = ("id_old", "id_new")
UID_FILE = "uid_mapping.csv"
PATID_FILE = "patid_mapping.csv"
KINDS = {"uid": "UID", "patid": "patient ID"}

Pairs = Iterable[tuple[str, str]] | Mapping[str, str]


class MappingCollisionError(MedveilError):
    """The old→new pairing would stop being one-to-one."""


class MappingFileError(MedveilError):
    """A mapping file is missing, unreadable or not in the expected format."""


class MappingTable:
    """One-to-one pairs of original identifier → pseudonym, for one kind.

    *kind* is ``"uid"`` or ``"patid"``; it only shapes error messages and the
    default file name, the pairing rules are the same for both.
    """

    def __init__(self, kind: str = "uid") -> None:
        if kind not in KINDS:
            raise MappingFileError(f"unknown mapping kind; expected one of {sorted(KINDS)}")
        self.kind = kind
        self._forward: dict[str, str] = {}
        self._reverse: dict[str, str] = {}

    # -- building ---------------------------------------------------------------

    def add(self, old: str, new: str) -> None:
        """Record that *old* became *new*; repeating a known pair is a no-op."""
        self.update([(old, new)])

    def update(self, pairs: Pairs) -> None:
        """Add many pairs, all or nothing.

        The batch is checked completely before anything is stored, so a
        collision leaves the table exactly as it was (the caller can then
        quarantine the offending file and carry on with a consistent table).
        """
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        staged_fwd: dict[str, str] = {}
        staged_rev: dict[str, str] = {}
        label = KINDS[self.kind]
        for old, new in items:
            if not isinstance(old, str) or not isinstance(new, str):
                raise MappingFileError(f"{label} mapping values must be strings")
            known_new = staged_fwd.get(old, self._forward.get(old))
            if known_new is not None:
                if known_new != new:
                    raise MappingCollisionError(
                        f"one original {label} maps to two different pseudonyms")
                continue
            known_old = staged_rev.get(new, self._reverse.get(new))
            if known_old is not None and known_old != old:
                raise MappingCollisionError(
                    f"two different original {label}s map to the same pseudonym")
            staged_fwd[old] = new
            staged_rev[new] = old
        self._forward.update(staged_fwd)
        self._reverse.update(staged_rev)

    # -- reading ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._forward)

    def __contains__(self, old: object) -> bool:
        return old in self._forward

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def get(self, old: str) -> str | None:
        """The pseudonym of *old*, or ``None`` when it has not been seen."""
        return self._forward.get(old)

    def items(self) -> list[tuple[str, str]]:
        """All pairs sorted by original identifier (the file's row order)."""
        return sorted(self._forward.items())

    def copy(self) -> MappingTable:
        clone = MappingTable(self.kind)
        clone._forward = dict(self._forward)
        clone._reverse = dict(self._reverse)
        return clone

    # -- files ------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, kind: str | None = None) -> MappingTable:
        """Read a mapping file written by :meth:`write` (or by hand, same format).

        *kind* defaults to ``"patid"`` for files whose name starts with
        ``patid`` and ``"uid"`` otherwise.
        """
        path = Path(path)
        table = cls(kind or _kind_for(path))
        try:
            for old, new in read_pairs(path):
                table.add(old, new)
        except MappingCollisionError as exc:
            raise MappingCollisionError(f"mapping file {path.name}: {exc}") from None
        return table

    def merged_with_file(self, path: Path | str) -> MappingTable:
        """This table plus whatever an existing file at *path* already holds."""
        path = Path(path)
        if not path.exists():
            return self.copy()
        merged = MappingTable.load(path, self.kind)
        merged.update(self._forward)
        return merged

    def write(self, path: Path | str) -> MappingTable:
        """Merge with the file at *path* (if any) and atomically replace it.

        Returns the merged table.  On a collision nothing is written.
        """
        merged = self.merged_with_file(path)
        merged._dump(Path(path))
        return merged

    def to_csv(self) -> str:
        """The exact file content: header, then rows sorted by ``id_old``."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(self.items())
        return buffer.getvalue()

    def _dump(self, path: Path) -> None:
        write_durably(path, self.to_csv().encode("utf-8"))


def read_pairs(path: Path | str, *, skip_blank: bool = False) -> list[tuple[str, str]]:
    """The (id_old, id_new) rows of a mapping file, after checking its header and shape.

    Shared by medveil's own strict loading and by the validator, which reads other
    tools' files and tolerates what a strict table would refuse (one old ID, two new).
    """
    path = Path(path)
    try:
        # newline="" keeps line breaks inside quoted values exactly as written.
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise MappingFileError(f"mapping file {path.name} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingFileError(f"cannot read mapping file {path.name} ({type(exc).__name__})") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    pairs: list[tuple[str, str]] = []
    try:
        header = next(rows, None)
        if header is None or tuple(header) != HEADER:
            raise MappingFileError(f"mapping file {path.name} must start with the header 'id_old,id_new'")
        for number, row in enumerate(rows, start=2):
            if skip_blank and not row:
                continue
            if len(row) != 2:
                raise MappingFileError(f"mapping file {path.name} row {number} does not have two columns")
            pairs.append((row[0], row[1]))
    except csv.Error:
        raise MappingFileError(f"mapping file {path.name} is not valid CSV") from None
    return pairs


def load(path: Path | str, kind: str | None = None) -> MappingTable:
    """Module-level shortcut for :meth:`MappingTable.load`."""
    return MappingTable.load(path, kind)


def write_mappings(directory: Path | str, uid_pairs: Pairs,
                   patid_pairs: Pairs, notices: list[str] | None = None) -> tuple[Path, Path]:
    """Merge *uid_pairs* and *patid_pairs* into the two files in *directory*.

    The directory is made private (0700; an existing one open to others is
    tightened, with a line added to *notices*) because the files hold original
    identifiers.  Both merges
    are checked before either file is replaced, so a collision in one kind does
    not leave the other half-updated.  Returns the two file paths.
    """
    directory = Path(directory)
    private_dir(directory, "mappings directory", notices)
    uid_path, patid_path = directory / UID_FILE, directory / PATID_FILE
    uid_table, patid_table = MappingTable("uid"), MappingTable("patid")
    uid_table.update(uid_pairs)
    patid_table.update(patid_pairs)
    uid_merged = uid_table.merged_with_file(uid_path)
    patid_merged = patid_table.merged_with_file(patid_path)
    uid_merged._dump(uid_path)
    patid_merged._dump(patid_path)
    return uid_path, patid_path


def _kind_for(path: Path) -> str:
    return "patid" if path.name.lower().startswith("patid") else "uid"
