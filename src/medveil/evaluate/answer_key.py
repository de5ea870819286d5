"""Answer keys in the MIDI-B schema: one SQLite table, one row per instance.

The MICCAI 2024 MIDI-B challenge published its answer keys as SQLite files with
a table ``answer_data`` whose columns describe the *original* instance (its
UIDs, Patient ID, Pixel Data digest) and whose ``AnswerData`` column holds a
JSON object of checks, keyed by a running number.  Every textual field of a
check is wrapped in angle brackets (``<text_removed>``, ``<Instance>``,
``<(0010,0010)>``), so an empty value is ``<>`` and never confused with a
missing one.  This module reads and writes that schema and nothing else, so the
validator and the synthetic-set generator cannot drift apart.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medveil.errors import MedveilError

ACTIONS = (
    "tag_retained", "text_notnull", "text_retained", "text_removed", "date_shifted",
    "uid_changed", "uid_consistent", "patid_consistent", "pixels_retained", "pixels_hidden",
)
"""The ten check actions of the MIDI-B validation script."""

COLUMNS = ("index", "group", "Modality", "SOPClassUID", "PatientID", "StudyInstanceUID",
           "SeriesInstanceUID", "SOPInstanceUID", "Digest", "AnswerData")


class AnswerKeyError(MedveilError):
    """An answer key that cannot be read as the MIDI-B schema."""


def wrap(value: object) -> str | None:
    """``value`` in the key's angle brackets; None stays None (JSON null: no value)."""
    return None if value is None else f"<{value}>"


def unwrap(value: object) -> str | None:
    """Strip one pair of enclosing angle brackets; None and NaN stay None."""
    if value is None:
        return None
    if isinstance(value, float):  # pandas writes NaN for an absent field
        return None if value != value else str(value)
    text = str(value)
    if len(text) >= 2 and text[0] == "<" and text[-1] == ">":
        return text[1:-1]
    return text


def category_to_key(category: object) -> object:
    """``answer_category_v2`` in the MIDI-B keys' own shape, from medveil's list form.

    The organisers' keys hold an object with the families as keys (``hipaa``: ``z``, ``m``;
    ``dicom``: ``p15``, ``iod``, ``safe``; ``tcia``: ``ptkb``, ``p15``, ``rev``) and
    ``prev_cat``; their validation script flattens exactly those.  medveil's
    ``["HIPAA", "date", "hidden"]`` fills the family's field its rule belongs to and keeps
    the whole path as text under ``medveil`` (read back by :func:`category_from_key`).
    Anything that is not a list of strings is written as it is.
    """
    if not isinstance(category, (list, tuple)) or not category or \
            not all(isinstance(part, str) for part in category):
        return category
    family = category[0].upper()
    rule = "/".join(category[1:]) or family.lower()
    path = "/".join(category)
    return {
        "hipaa": {"z": rule if family == "HIPAA" else None, "m": None},
        "dicom": {"p15": rule if family == "DICOM" and rule != "iod" else None,
                  "iod": rule if family == "DICOM" and rule == "iod" else None, "safe": None},
        "tcia": {"ptkb": rule if family == "TCIA" and "private" in rule else None,
                 "p15": rule if family == "TCIA" and "private" not in rule else None, "rev": None},
        "prev_cat": path,
        "medveil": path,
    }


def category_from_key(value: object) -> object:
    """The category as medveil uses it: its own list back from :func:`category_to_key`'s
    object, any other key's value unchanged (:func:`medveil.evaluate.score.family` reads both)."""
    if isinstance(value, dict) and isinstance(value.get("medveil"), str):
        return value["medveil"].split("/")
    return value


def multi_value(text: str | None) -> str | None:
    """A value written as a Python list repr, ``['A', 'B']``, as ``A\\B``; anything else as is."""
    if text is None or len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return text
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if not isinstance(parsed, list) or not all(isinstance(v, (str, int, float)) for v in parsed):
        return text
    return "\\".join(str(v) for v in parsed)


@dataclass(frozen=True, slots=True)
class Check:
    """One required action on one attribute (or on the pixels) of an instance.

    ``value`` is the original value the action is about (a UID, a date, a
    name); ``action_text`` is what the action compares with: the text that must
    survive or vanish, the Pixel Data digest, or the JSON box of burned-in text.
    Both are PHI-bearing and never printed.
    """

    action: str
    tag_ds: str
    tag: str = ""
    tag_name: str = ""
    value: str | None = None
    action_text: str | None = None
    scope: str = "Instance"
    category: object = None

    def to_json(self) -> dict[str, object]:
        return {
            "scope": wrap(self.scope),
            "tag": wrap(self.tag),
            "tag_ds": self.tag_ds,  # already in path notation, brackets included
            "tag_name": wrap(self.tag_name),
            "value": wrap(self.value),
            "action": wrap(self.action),
            "action_text": wrap(self.action_text),
            "answer_category_v2": category_to_key(self.category),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Check:
        """One check as a key stores it; multi-valued texts written as a Python list repr
        (``['ORIGINAL', 'PRIMARY']``, as the MIDI-B script's ``str(value)`` writes them)
        are read as DICOM writes them, joined by backslashes."""
        action = unwrap(data.get("action")) or ""
        return cls(
            action=action.strip(),
            tag_ds=str(data.get("tag_ds") or "").strip(),
            tag=unwrap(data.get("tag")) or "",
            tag_name=unwrap(data.get("tag_name")) or "",
            value=multi_value(unwrap(data.get("value"))),
            action_text=multi_value(unwrap(data.get("action_text"))),
            scope=(unwrap(data.get("scope")) or "Instance").strip(),
            category=category_from_key(data.get("answer_category_v2")),
        )


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """The checks for one original instance, with the identifiers it had."""

    index: int
    sop_instance_uid: str
    series_instance_uid: str = ""
    study_instance_uid: str = ""
    patient_id: str = ""
    sop_class_uid: str = ""
    modality: str = ""
    group: str = ""
    digest: str = ""
    checks: tuple[Check, ...] = field(default_factory=tuple)
    scope: str = "Instance"
    """Row-level scope, when the key has a ``scope`` column: a Series (Study, Patient) row
    applies to every output instance of that series (study)."""


def write_answer_key(path: Path | str, rows: Iterable[AnswerRow]) -> int:
    """Write ``rows`` as a new answer key at ``path``; returns the number of rows."""
    target = Path(path)
    if target.exists():
        target.unlink()
    connection = sqlite3.connect(target)
    try:
        connection.execute(
            'CREATE TABLE answer_data ("index" INTEGER, "group" TEXT, "Modality" TEXT, '
            '"SOPClassUID" TEXT, "PatientID" TEXT, "StudyInstanceUID" TEXT, '
            '"SeriesInstanceUID" TEXT, "SOPInstanceUID" TEXT, "Digest" TEXT, "AnswerData" TEXT)')
        count = 0
        with connection:
            for row in rows:
                answer = {str(n): check.to_json() for n, check in enumerate(row.checks)}
                connection.execute(
                    "INSERT INTO answer_data VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (row.index, row.group, row.modality, row.sop_class_uid, row.patient_id,
                     row.study_instance_uid, row.series_instance_uid, row.sop_instance_uid,
                     row.digest, json.dumps(answer, ensure_ascii=False)))
                count += 1
        return count
    finally:
        connection.close()


def read_answer_key(path: Path | str) -> list[AnswerRow]:
    """All rows of the key at ``path``, in index order."""
    return list(iter_answer_key(path))


def iter_answer_key(path: Path | str) -> Iterator[AnswerRow]:
    source = Path(path)
    if not source.is_file():
        raise AnswerKeyError(f"answer key not found: {source}")
    try:
        connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise AnswerKeyError(f"answer key cannot be opened: {type(exc).__name__}") from None
    try:
        try:
            cursor = connection.execute("SELECT * FROM answer_data")
        except sqlite3.DatabaseError as exc:
            raise AnswerKeyError(f"answer key has no readable table answer_data ({exc})") from None
        names = [description[0] for description in cursor.description]
        missing = {"SOPInstanceUID", "AnswerData"} - set(names)
        if missing:
            raise AnswerKeyError(f"answer_data lacks column(s): {', '.join(sorted(missing))}")
        for position, values in enumerate(cursor):
            record = dict(zip(names, values, strict=True))
            yield _row(record, position)
    finally:
        connection.close()


def _row(record: dict[str, object], position: int) -> AnswerRow:
    raw = record.get("AnswerData") or "{}"
    try:
        if not isinstance(raw, (str, bytes, bytearray)):
            raise TypeError(type(raw).__name__)
        answer = json.loads(raw)
    except (TypeError, ValueError):
        raise AnswerKeyError(f"answer row {position}: AnswerData is not JSON") from None
    items = answer.values() if isinstance(answer, dict) else answer
    checks = tuple(Check.from_json(item) for item in items if isinstance(item, dict))
    index = record.get("index")
    return AnswerRow(
        index=(int(index) if isinstance(index, (int, float))
               else int(str(index)) if str(index).isdigit() else position),
        sop_instance_uid=_text(record.get("SOPInstanceUID")),
        series_instance_uid=_text(record.get("SeriesInstanceUID")),
        study_instance_uid=_text(record.get("StudyInstanceUID")),
        patient_id=_text(record.get("PatientID")),
        sop_class_uid=_text(record.get("SOPClassUID")),
        modality=_text(record.get("Modality")),
        group=_text(record.get("group")),
        digest=_text(record.get("Digest")),
        checks=checks,
        scope=_text(record.get("scope")) or "Instance",
    )


def _text(value: object) -> str:
    return (unwrap(value) or "").strip()
