"""The instance a real file is turned into: its patient, study, series and position."""

from __future__ import annotations

from dataclasses import dataclass

from medveil.synth.fake import Patient
from medveil.synth.plan import SeriesPlan, StudyPlan
from medveil.synth.seeds import new_uid, rng


@dataclass
class InjectionTarget:
    """Everything injection needs to know about the instance it works on."""

    seed: int
    study: StudyPlan
    series: SeriesPlan
    index: int  # 0-based position within the series
    uid_map: dict[str, str]  # old Study/Series UIDs to the plan's

    @property
    def patient(self) -> Patient:
        return self.study.patient

    def uid(self, old: str) -> str:
        """The synthetic UID for ``old``: the plan's for studies and series, else derived."""
        old = old.strip()
        mapped = self.uid_map.get(old)
        return mapped if mapped is not None else new_uid(self.seed, "uid", old)

    def choice(self, *labels: object):
        return rng(self.seed, *labels)
