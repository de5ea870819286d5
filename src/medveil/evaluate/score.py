"""Turning check outcomes into scores: per instance, per series, per action, per family.

The MIDI-B score is the share of required actions done right:
passed / (passed + failed + errored).  The instance level counts every check
of every instance.  The series level counts one result per (action, attribute,
series): a series passes an action on an attribute only if every instance in
it does, so a tool cannot make up for leaking a name in one slice with a
hundred clean slices.

Checks carry a rule family in ``answer_category_v2`` (HIPAA Safe Harbor,
DICOM PS3.15, TCIA curation practice).  The weighted variant averages the
family scores with weights 0.7, 0.2 and 0.1, renormalised over the families
the key uses: leaking an identifier HIPAA names weighs more than dropping an
attribute TCIA would have kept.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from medveil.evaluate.answer_key import Check
from medveil.evaluate.checks import ERRORED, FAILED, PASSED, Outcome

FAMILY_WEIGHTS = {"HIPAA": 0.7, "DICOM": 0.2, "TCIA": 0.1}
OTHER_FAMILY = "other"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of one answer row, with where it was evaluated and how it came out."""

    row: int
    instance: str
    series: str
    file: str | None
    check: Check
    outcome: Outcome


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    errored: int = 0

    def add(self, status: str) -> None:
        if status == PASSED:
            self.passed += 1
        elif status == FAILED:
            self.failed += 1
        else:
            self.errored += 1

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored

    @property
    def score(self) -> float | None:
        return self.passed / self.total if self.total else None

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "failed": self.failed, "errored": self.errored,
                "total": self.total, "score": self.score}


@dataclass
class Scores:
    """Scores at one level (instance or series)."""

    overall: Tally = field(default_factory=Tally)
    actions: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    families: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))

    @property
    def weighted(self) -> float | None:
        parts = [(FAMILY_WEIGHTS[name], tally.score) for name, tally in self.families.items()
                 if name in FAMILY_WEIGHTS and tally.score is not None]
        if not parts:
            return None
        total_weight = sum(weight for weight, _ in parts)
        return sum(weight * score for weight, score in parts) / total_weight

    def as_dict(self) -> dict[str, object]:
        return {
            **self.overall.as_dict(),
            "weighted": self.weighted,
            "actions": {name: tally.as_dict() for name, tally in sorted(self.actions.items())},
            "families": {name: tally.as_dict() for name, tally in sorted(self.families.items())},
        }


def family(category: object) -> str:
    """The rule family (HIPAA, DICOM, TCIA) named by an ``answer_category_v2`` value.

    The field is free-form in published keys (a string, a JSON string, a list
    or an object); the first family name found in it, scanning in that order
    of weight, decides.
    """
    if isinstance(category, str):
        text = category.strip().strip("<>")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None and not isinstance(parsed, str):
            return family(parsed)
        upper = text.upper()
        found = [(upper.find(name), name) for name in FAMILY_WEIGHTS if name in upper]
        return min(found)[1] if found else OTHER_FAMILY
    if isinstance(category, dict):
        # The MIDI-B keys' own shape: the families are the keys, a family applies when any
        # of its fields is set ({"hipaa": {"z": ..., "m": null}, "dicom": {...}, ...}).
        named = [name for name in FAMILY_WEIGHTS for key, value in category.items()
                 if key.upper() == name and (any(v not in (None, "", 0) for v in value.values())
                                             if isinstance(value, dict) else value not in (None, "", 0))]
        if named:
            return named[0]
        for key in ("family", "category", "rule", "source"):
            if key in category:
                return family(category[key])
        return family(" ".join(str(v) for v in category.values()))
    if isinstance(category, (list, tuple)):
        for item in category:
            name = family(item)
            if name != OTHER_FAMILY:
                return name
    return OTHER_FAMILY


def instance_scores(results: Iterable[CheckResult]) -> Scores:
    scores = Scores()
    for result in results:
        _count(scores, result.check, result.outcome.status)
    return scores


def series_scores(results: Iterable[CheckResult]) -> Scores:
    """One result per (action, attribute, series); a failure wins, then an error."""
    merged: dict[tuple[str, str, str], tuple[Check, str]] = {}
    rank = {PASSED: 0, ERRORED: 1, FAILED: 2}
    for result in results:
        key = (result.check.action, result.check.tag_ds, result.series)
        status = result.outcome.status
        previous = merged.get(key)
        if previous is None or rank[status] > rank[previous[1]]:
            merged[key] = (result.check, status)
    scores = Scores()
    for check, status in merged.values():
        _count(scores, check, status)
    return scores


def _count(scores: Scores, check: Check, status: str) -> None:
    scores.overall.add(status)
    scores.actions[check.action].add(status)
    scores.families[family(check.category)].add(status)
