"""Round trip: synth -> (no-op copy | strip-everything copy | medveil) -> validate.

The validator has to tell a tool that does nothing from one that destroys
everything from one that de-identifies: a no-op copy keeps what must be kept
and leaks what must go; a copy stripped to its UIDs leaks nothing and keeps
nothing; medveil's own output must score above both.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest

from corpora import pydicom_files
from medveil import deidentify_path
from medveil.evaluate.validator import validate_outputs
from medveil.policy import get_profile
from medveil.pseudonym import Key
from medveil.synth import synthesize

pytestmark = pytest.mark.slow  # a synthetic set built, de-identified and scored end to end

KEEP = ("tag_retained", "text_notnull", "text_retained", "pixels_retained", "uid_consistent",
        "patid_consistent")
REMOVE = ("text_removed", "date_shifted", "uid_changed")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize([pydicom_files()], out, seed=11, patients=4, max_files=40)
    return out


def strip_copy(source: Path, target: Path) -> None:
    """Each file reduced to its SOP Class and Instance UIDs (so it can still be matched)."""
    for path in sorted(source.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        for element in list(ds):
            if element.keyword not in ("SOPClassUID", "SOPInstanceUID"):
                del ds[element.tag]
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(destination, enforce_file_format=True)


@pytest.fixture(scope="module")
def scores(synthetic, tmp_path_factory):
    work = tmp_path_factory.mktemp("tools")
    source, key = synthetic / "input", synthetic / "answer_key.db"
    no_op = work / "no-op"
    shutil.copytree(source, no_op)
    stripped = work / "stripped"
    strip_copy(source, stripped)
    released, maps = work / "medveil", work / "maps"
    deidentify_path(source, released, policy=get_profile("tcia"), key=Key(b"r" * 32),
                    mappings_dir=maps, workers=1)
    return {
        "no-op": validate_outputs(no_op, key, original_dir=source),
        "stripped": validate_outputs(stripped, key, original_dir=source),
        "medveil": validate_outputs(released, key, mappings_dir=maps),
        "released": released,
    }


def test_the_synthetic_key_has_every_action(synthetic, scores):
    actions = scores["no-op"].instance.actions
    for action in KEEP + REMOVE + ("pixels_hidden",):
        assert actions[action].total > 0, action


def test_a_no_op_copy_keeps_everything_and_removes_nothing(scores):
    result = scores["no-op"]
    assert result.missing_rows == 0 and result.unreadable_rows == 0
    for action in KEEP:
        assert result.instance.actions[action].score == 1.0, action
    for action in REMOVE:
        assert result.instance.actions[action].score == 0.0, action
    assert result.instance.actions["pixels_hidden"].score == 0.0  # the OCR reads every burned-in box


def test_a_stripped_copy_fails_the_keep_checks(scores):
    actions = scores["stripped"].instance.actions
    for action in ("tag_retained", "text_notnull", "text_retained", "pixels_retained"):
        assert actions[action].score < 0.1, action
    for action in ("text_removed", "date_shifted"):
        assert actions[action].score == 1.0, action


def test_medveil_scores_highest(scores):
    medveil = scores["medveil"].instance.overall.score
    assert medveil > scores["no-op"].instance.overall.score
    assert medveil > scores["stripped"].instance.overall.score
    assert scores["medveil"].instance.weighted > max(scores["no-op"].instance.weighted,
                                                      scores["stripped"].instance.weighted)
    # Every file medveil released has its dates shifted and its UIDs and IDs remapped
    # consistently; the only misses are files it quarantined (counted as missing).
    released = [r for r in scores["medveil"].results if r.file is not None]
    assert released
    for action in ("date_shifted", "uid_changed", "uid_consistent", "patid_consistent",
                   "pixels_retained", "text_removed"):
        failures = [r for r in released if r.check.action == action and r.outcome.status != "passed"]
        assert not failures, action


def _undecodable(path: Path) -> bool:
    try:
        _ = pydicom.dcmread(path).pixel_array
    except Exception:  # noqa: BLE001  (no installed decoder reads it)
        return True
    return False


def test_text_checks_pass_on_medveil_output(synthetic, scores):
    """Issue 4's bar: text_removed and text_retained each at least 99.5% on the files medveil released.

    With Clean Pixel Data on, an image whose Pixel Data no installed decoder reads (pydicom's
    12-bit JPEG Extended file, a J2K file with a malformed codestream) cannot be scanned for
    burned-in text and is quarantined; those, and only those, are the files not released.
    """
    released = [r for r in scores["medveil"].results if r.file is not None]
    for action in ("text_removed", "text_retained"):
        checks = [r for r in released if r.check.action == action]
        assert checks, action
        passed = sum(r.outcome.status == "passed" for r in checks)
        assert passed / len(checks) >= 0.995, action
    quarantine = scores["released"].parent / "medveil.medveil-workspace" / "quarantine"
    held = sorted(quarantine.glob("*.dcm"))
    assert all(_undecodable(path) for path in held)
    assert len(held) <= 2


_COARSE_DATE = re.compile(r"Q[1-4] \d{4}|[A-Za-z]{3,9}\.? ?'?\d{2,4}|\d{4}-\d{2}|\d{2}/\d{4}")


def test_no_injected_phi_value_occurs_anywhere_in_the_output_bytes(synthetic, scores):
    from medveil.evaluate.answer_key import read_answer_key
    from medveil.evaluate.score import family

    planted = set()
    for row in read_answer_key(synthetic / "answer_key.db"):
        for check in row.checks:
            # PHI only: a private value the knowledge base deletes ("WHOLE BODY_E") may
            # legitimately also sit in a public attribute that is kept.
            phi = check.action in ("date_shifted", "uid_changed") or (
                check.action == "text_removed" and family(check.category) == "HIPAA")
            if phi:
                for text in (check.value, check.action_text):
                    # A month or quarter ("Q2 2011") is too coarse to search in every file: another
                    # patient's shifted date may read the same.  The validator checks it per file.
                    if text and len(text.strip()) >= 6 and not _COARSE_DATE.fullmatch(text.strip()):
                        planted.add(text.strip())
    assert planted
    blobs = [path.read_bytes() for path in sorted(scores["released"].rglob("*.dcm"))]
    assert blobs
    leaks = sorted(value for value in planted
                   if any(value.encode("utf-8") in blob or value.encode("latin-1", "ignore") in blob
                          for blob in blobs))
    assert leaks == []


def test_burned_in_text_is_hidden_and_other_pixels_kept(scores):
    """Issue 5's bar: pixels_hidden at least 99% and pixels_retained 100% on the synthetic set."""
    actions = scores["medveil"].instance.actions
    assert actions["pixels_hidden"].total > 0
    assert actions["pixels_hidden"].score >= 0.99
    assert actions["pixels_retained"].score == 1.0
