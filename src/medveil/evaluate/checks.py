"""The ten MIDI-B check actions, one function each.

Each action answers one question about one attribute of one de-identified
instance, with the semantics of the MIDI-B validation script (MICCAI 2024):

- keep checks: ``tag_retained`` (present), ``text_notnull`` (present and not
  empty), ``text_retained`` (the expected clinical words are still there),
  ``pixels_retained`` (Pixel Data bytes unchanged), ``uid_consistent`` and
  ``patid_consistent`` (the value is the one the tool's mapping file promises);
- removal checks: ``text_removed`` (absent, empty, or none of the PHI tokens
  left), ``date_shifted`` and ``uid_changed`` (the original value no longer
  occurs), ``pixels_hidden`` (OCR of the burned-in text's box finds none of
  its tokens).

An instance with no output file fails its keep checks and passes its removal
checks, as in the script: a deleted file discloses nothing but keeps nothing.
An absent attribute passes the consistency checks (nothing inconsistent is
shown) as in the script.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from medveil.evaluate.answer_key import Check
from medveil.evaluate.paths import PathSyntaxError, normalise
from medveil.evaluate.tokens import compare_text

PASSED, FAILED, ERRORED = "passed", "failed", "errored"

KEEP_ACTIONS = frozenset({"tag_retained", "text_notnull", "text_retained", "pixels_retained",
                          "uid_consistent", "patid_consistent"})
REMOVAL_ACTIONS = frozenset({"text_removed", "date_shifted", "uid_changed", "pixels_hidden"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one check: status, the script's partial score, and what was found.

    ``found`` is the output's value (PHI-bearing when the check failed); it
    goes only to the discrepancy report the user asked for.
    """

    status: str
    score: float
    found: str | None = None
    reason: str | None = None


@dataclass
class Target:
    """What the checks of one answer row look at: the output file's flattened view.

    ``ocr_box`` reads the text inside a box of the output's first frame; it is
    given by the validator so that pixel decoding happens only for the files
    that have pixels_hidden checks.
    """

    values: dict[str, str]
    digest: str | None
    uid_map: dict[str, str]
    patid_map: dict[str, str]
    ocr_box: Callable[[tuple[int, int, int, int]], str] | None = None


def missing_outcome(check: Check) -> Outcome:
    """The outcome for a check whose instance has no output file."""
    if check.action in REMOVAL_ACTIONS:
        return Outcome(PASSED, 1.0, "<MISSING FILE>", "no output file")
    return Outcome(FAILED, 0.0, "<MISSING FILE>", "no output file")


def run_check(check: Check, target: Target) -> Outcome:
    """Evaluate ``check`` on ``target``; unexpected problems make it errored, never raise."""
    handler = _HANDLERS.get(check.action)
    if handler is None:
        return Outcome(ERRORED, 0.0, None, f"unknown action {check.action!r}")
    try:
        return handler(check, target)
    except PathSyntaxError:
        return Outcome(ERRORED, 0.0, None, "attribute path cannot be parsed")
    except Exception as exc:  # one bad check must not stop the others
        return Outcome(ERRORED, 0.0, None, f"check failed to run ({type(exc).__name__})")


def _lookup(check: Check, target: Target) -> str | None:
    return target.values.get(normalise(check.tag_ds))


def _verdict(passed: bool, score: float | None = None, found: str | None = None) -> Outcome:
    return Outcome(PASSED if passed else FAILED, (1.0 if passed else 0.0) if score is None else score, found)


def tag_retained(check: Check, target: Target) -> Outcome:
    found = _lookup(check, target)
    return _verdict(found is not None, found=found)


def text_notnull(check: Check, target: Target) -> Outcome:
    found = _lookup(check, target)
    return _verdict(found is not None and found != "", found=found)


def expected_text(check: Check) -> str | None:
    """The text a text check compares with: ``action_text``, else the original ``value``."""
    return check.action_text if check.action_text is not None else check.value


def text_retained(check: Check, target: Target) -> Outcome:
    found = _lookup(check, target)
    if not found:
        return _verdict(False, found=found)
    expected = expected_text(check)
    if expected is None:
        return Outcome(ERRORED, 0.0, found, "the key gives no text to retain")
    passed, score = compare_text(found, expected, "retain")
    return _verdict(passed, score, found)


def text_removed(check: Check, target: Target) -> Outcome:
    found = _lookup(check, target)
    if found is None or found == "" or found == "REMOVED":
        return _verdict(True, found=found)
    expected = expected_text(check)
    if expected is None:
        return Outcome(ERRORED, 0.0, found, "the key gives no text to remove")
    passed, score = compare_text(found, expected, "remove")
    return _verdict(passed, score, found)


def _original_gone(check: Check, target: Target) -> Outcome:
    found = _lookup(check, target)
    if found is None:
        return _verdict(True)
    original = (check.value or "").replace("\\", "")
    return _verdict(original not in found.replace("\\", ""), found=found)


date_shifted = _original_gone
uid_changed = _original_gone


def _consistent(mapping_of: Callable[[Target], dict[str, str]]) -> Callable[[Check, Target], Outcome]:
    def consistent(check: Check, target: Target) -> Outcome:
        found = _lookup(check, target)
        if found is None:
            return _verdict(True)
        expected = mapping_of(target).get(check.value or "", "")
        return _verdict(found == expected, found=found)
    return consistent


uid_consistent = _consistent(lambda target: target.uid_map)
patid_consistent = _consistent(lambda target: target.patid_map)


def pixels_retained(check: Check, target: Target) -> Outcome:
    expected = (check.action_text or check.value or "").strip("<>").strip().lower()
    found = (target.digest or "").lower()
    return _verdict(bool(found) and found == expected, found=found or None)


_LABEL = re.compile(r"\[[A-Za-z]\]")


def pixels_hidden(check: Check, target: Target) -> Outcome:
    if target.ocr_box is None:
        return Outcome(ERRORED, 0.0, None, "no OCR engine available")
    spec = json.loads((check.action_text or "").strip().strip("<>") if check.action_text else "{}")
    text = _LABEL.sub("", str(spec["text"]).replace("\n", " ").replace("DOB:", ""))
    x1, y1 = (int(v) for v in spec["top_left"])
    x2, y2 = (int(v) for v in spec["bottom_right"])
    found = target.ocr_box((x1, y1, x2, y2))
    if not found:
        return _verdict(True, found=found)
    passed, score = compare_text(found, text, "remove")
    return _verdict(passed, score, found)


_HANDLERS: dict[str, Callable[[Check, Target], Outcome]] = {
    "tag_retained": tag_retained,
    "text_notnull": text_notnull,
    "text_retained": text_retained,
    "text_removed": text_removed,
    "date_shifted": date_shifted,
    "uid_changed": uid_changed,
    "uid_consistent": uid_consistent,
    "patid_consistent": patid_consistent,
    "pixels_retained": pixels_retained,
    "pixels_hidden": pixels_hidden,
}
