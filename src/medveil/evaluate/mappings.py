"""Old-to-new identifier mappings: read from a tool's files or inferred by pairing.

MIDI-B matches an answer row to an output file through the new SOP Instance
UID that the tool's ``uid_mapping.csv`` gives for the original one, and checks
consistency against the same files.  Tools that write no mapping files can
still be scored: given the input they were run on, input and output files are
paired (same relative path first, then identical Pixel Data when that is
unique on both sides) and every UID and Patient ID at the same attribute path
gives an old -> new pair.  An inferred mapping is only as good as the pairing;
the validator says which it used.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.multival import MultiValue

from medveil.errors import MedveilError
from medveil.evaluate.files import iter_files, read_dataset
from medveil.evaluate.flatten import PIXEL_DATA, walk
from medveil.evaluate.paths import format_path
from medveil.store.mappings import MappingFileError, read_pairs

UID_FILE, PATID_FILE = "uid_mapping.csv", "patid_mapping.csv"


class MappingReadError(MedveilError):
    """A mapping file that is not a CSV with header ``id_old,id_new``."""


@dataclass
class Mappings:
    uids: dict[str, str] = field(default_factory=dict)
    patids: dict[str, str] = field(default_factory=dict)
    source: str = "none"
    conflicts: int = 0
    paired_files: int = 0
    unpaired_outputs: list[Path] = field(default_factory=list)
    pairs: dict[Path, Path] = field(default_factory=dict)
    """Output file -> original file, when the mapping was inferred."""


def read_mapping_csv(path: Path) -> dict[str, str]:
    """``id_old -> id_new`` from ``path``; the first row for an old value wins."""
    try:
        pairs = read_pairs(path, skip_blank=True)  # other tools' files may end in a blank line
    except MappingFileError as exc:
        raise MappingReadError(str(exc)) from None
    mapping: dict[str, str] = {}
    for old, new in pairs:
        mapping.setdefault(old.strip(), new.strip())
    return mapping


def load_mappings(directory: Path | None) -> Mappings | None:
    """The mapping files in ``directory``, or None when it holds neither."""
    if directory is None:
        return None
    uid_path, patid_path = directory / UID_FILE, directory / PATID_FILE
    if not uid_path.is_file() and not patid_path.is_file():
        return None
    return Mappings(
        uids=read_mapping_csv(uid_path) if uid_path.is_file() else {},
        patids=read_mapping_csv(patid_path) if patid_path.is_file() else {},
        source="files",
    )


def infer_mappings(original_dir: Path, output_dir: Path) -> Mappings:
    """Mappings read off pairs of input and output files (see module docstring)."""
    originals = {path.relative_to(original_dir): path for path in iter_files(original_dir)}
    outputs = {path.relative_to(output_dir): path for path in iter_files(output_dir)}
    pairs: dict[Path, Path] = {}
    for relative, path in outputs.items():
        if relative in originals:
            pairs[path] = originals[relative]
    unpaired_out = [path for path in outputs.values() if path not in pairs]
    if unpaired_out:
        used = set(pairs.values())
        by_digest_in = _unique_by_digest([p for p in originals.values() if p not in used])
        by_digest_out = _unique_by_digest(unpaired_out)
        for digest, path in by_digest_out.items():
            if digest in by_digest_in:
                pairs[path] = by_digest_in[digest]
    result = Mappings(source="inferred", pairs=pairs)
    uid_votes: dict[str, Counter] = {}
    patid_votes: dict[str, Counter] = {}
    for out_path, in_path in sorted(pairs.items()):
        # Only UIDs and the Patient ID are compared: the pixels need not be read.
        old_ds = read_dataset(in_path, stop_before_pixels=True)
        new_ds = read_dataset(out_path, stop_before_pixels=True)
        if old_ds is None or new_ds is None:
            continue
        result.paired_files += 1
        new_values = {format_path(steps): element for steps, element in walk(new_ds, ())
                      if element.VR == "UI" or element.tag == 0x00100020}
        for steps, element in walk(old_ds, ()):
            if element.VR != "UI" and element.tag != 0x00100020:
                continue
            counterpart = new_values.get(format_path(steps))
            if counterpart is None:
                continue
            old_values, new_list = _strings(element.value), _strings(counterpart.value)
            if len(old_values) != len(new_list):
                continue
            votes = patid_votes if element.tag == 0x00100020 else uid_votes
            for old, new in zip(old_values, new_list, strict=True):
                if old:
                    votes.setdefault(old, Counter())[new] += 1
        old_meta = _media_uid(old_ds)
        new_meta = _media_uid(new_ds)
        if old_meta and new_meta:
            uid_votes.setdefault(old_meta, Counter())[new_meta] += 1
    result.uids, conflicts_u = _decide(uid_votes)
    result.patids, conflicts_p = _decide(patid_votes)
    result.conflicts = conflicts_u + conflicts_p
    result.unpaired_outputs = sorted(path for path in outputs.values() if path not in pairs)
    return result


def _media_uid(ds) -> str | None:
    meta = getattr(ds, "file_meta", None)
    value = getattr(meta, "MediaStorageSOPInstanceUID", None) if meta is not None else None
    return str(value).strip() if value else None


def _strings(value: object) -> list[str]:
    if value is None:
        return [""]
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v).strip() for v in value]
    return [str(value).strip()]


def _decide(votes: dict[str, Counter]) -> tuple[dict[str, str], int]:
    mapping: dict[str, str] = {}
    conflicts = 0
    for old, counter in votes.items():
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        mapping[old] = ranked[0][0]
        conflicts += len(ranked) > 1
    return mapping, conflicts


def _unique_by_digest(paths: list[Path]) -> dict[str, Path]:
    seen: dict[str, Path | None] = {}
    for path in paths:
        ds = read_dataset(path)
        if ds is None:
            continue
        raw = ds.get_item(PIXEL_DATA)
        if raw is None or not isinstance(raw.value, (bytes, bytearray)):
            continue
        digest = hashlib.md5(bytes(raw.value)).hexdigest()
        seen[digest] = None if digest in seen else path
    return {digest: path for digest, path in seen.items() if path is not None}
