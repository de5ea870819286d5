"""A de-identification policy: which options are on, and what happens to each attribute.

A :class:`Policy` is immutable and picklable so that worker processes get an
exact copy.  It answers one question for the engine, "what do I do with this
attribute in this kind of object?", combining (in this order of precedence)
the user's recipe, the option columns of Table E.1-1 and its Basic Profile
column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from medveil.errors import PolicyError
from medveil.policy.iod import resolve_compound
from medveil.policy.options import Option
from medveil.policy.table import Table, load_table
from medveil.pseudonym import IdFormat, ShiftRange

ACTIONS = frozenset({"X", "Z", "D", "K", "C", "U", "U*", "R"})


@dataclass(frozen=True)
class AttributeDecision:
    """What to do with one attribute.

    ``action`` is a single Table E.1-1 letter, ``U*`` (keep a reference
    sequence, replace the UIDs in it) or ``R`` (replace with ``value``, from a
    recipe).  ``source`` is the option whose column chose the action (None for
    the Basic Profile or a recipe); ``fallback`` is the Basic action to apply
    when a C (clean) action finds no cleaner able to clean the value, because
    an uncleanable value must never be kept.
    """

    action: str
    source: Option | None = None
    fallback: str | None = None
    value: Any = None
    origin: str = "table"  # "table", "recipe" or "private-dictionary"


class PrivateDictionary(Protocol):
    """Knows which private attributes are safe (the Retain Safe Private hook).

    ``disposition`` returns one of the TCIA Private Tag Knowledge Base codes
    ("k" keep, "d" delete, "h" hash UID, "o" offset date, "oi" offset
    integer date) or None when the signature is unknown (then it is removed).
    """

    def disposition(self, group: int, creator: str, element: int) -> str | None: ...


@dataclass(frozen=True)
class TagPattern:
    """A recipe tag pattern such as ``(0019,10xx)``: 'x' matches any hex digit."""

    mask: int
    value: int

    @classmethod
    def parse(cls, text: str) -> TagPattern:
        digits = re.sub(r"[(),\s]", "", text).lower()
        if not re.fullmatch(r"[0-9a-fx]{8}", digits):
            raise PolicyError(f"not a tag pattern: {text!r}")
        mask = int("".join("0" if c == "x" else "f" for c in digits), 16)
        return cls(mask=mask, value=int(digits.replace("x", "0"), 16))

    def matches(self, tag: int) -> bool:
        return tag & self.mask == self.value


@dataclass(frozen=True)
class Overrides:
    """Recipe actions, by exact tag, tag pattern and private signature."""

    by_tag: dict[int, AttributeDecision] = field(default_factory=dict)
    by_pattern: tuple[tuple[TagPattern, AttributeDecision], ...] = ()
    by_private: dict[tuple[int, str, int], AttributeDecision] = field(default_factory=dict)

    def for_tag(self, tag: int) -> AttributeDecision | None:
        decision = self.by_tag.get(tag)
        if decision is not None:
            return decision
        for pattern, decision in self.by_pattern:
            if pattern.matches(tag):
                return decision
        return None


@dataclass(frozen=True)
class Convention:
    """A profile's own action for one attribute, where its curators' practice differs from
    the table (``data/profiles.yaml`` says which and why).

    It applies while none of ``unless`` and all of ``requires`` are among the policy's
    options, so that a user who adds or drops an option gets that option's behaviour.
    """

    decision: AttributeDecision
    unless: frozenset[Option] = frozenset()
    requires: frozenset[Option] = frozenset()
    reason: str = ""

    def applies(self, options: frozenset[Option]) -> bool:
        return not (self.unless & options) and self.requires <= options


@dataclass(frozen=True)
class Addition:
    """An attribute the recipe adds to every output (top level)."""

    tag: int
    vr: str
    value: Any


#: A cleaner for C actions: given (keyword, VR, value, context) it returns the
#: cleaned value, or None when it cannot vouch for the result.
Cleaner = Callable[[str, str, Any, Any], Any]


@dataclass(frozen=True)
class PixelSettings:
    """How the Clean Pixel Data option finds and masks burned-in text.

    ``policy``: ``auto`` (``all-text`` for objects that carry burned-in
    annotation by nature or say they do, ``phi-only`` for the rest),
    ``all-text`` or ``phi-only``.  ``scan``: ``all`` reads every image;
    ``flagged`` only those presumed to carry burned-in text (modality, SOP
    Class, Burned In Annotation), which is much faster on CT/MR series but
    trusts the header; either way every image that is read is screened
    first.  ``screen``: the text-presence screen that decides which regions
    of a frame OCR reads (``recall``, the default, tuned so no text is
    missed; ``balanced``, fewer false candidates; ``off``, every frame read
    whole, slowly).  ``engines``: OCR engines (``ppocr``, the default; ``ppocr-v5``, ``ppocr-v6``,
    ``rapidocr``, ``tesseract``, ``auto`` for every installed one).  ``padding`` grows each
    box by that many pixels.  ``overlays``: ``text`` removes overlay planes
    OCR reads text in, ``all`` removes every overlay, ``keep`` none.
    ``rules_file``: a site's known-location rules, used beside the shipped
    ones unless ``shipped_rules`` is off.
    """

    policy: str = "auto"
    scan: str = "all"
    engines: tuple[str, ...] = ("ppocr",)
    screen: str = "recall"
    min_confidence: float = 0.5
    padding: int = 3
    fill: str = "min"
    overlays: str = "text"
    shipped_rules: bool = True
    rules_file: str | None = None

    def __post_init__(self) -> None:
        checks = {"policy": ("auto", "all-text", "phi-only"), "scan": ("all", "flagged"),
                  "screen": ("recall", "balanced", "off"),
                  "overlays": ("text", "all", "keep")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise PolicyError(f"pixel {name} must be one of {', '.join(allowed)}")
        if self.padding < 0 or not 0.0 <= self.min_confidence <= 1.0:
            raise PolicyError("pixel padding must be >= 0 and min_confidence within 0..1")
        if not self.engines:
            raise PolicyError("at least one OCR engine is needed to clean pixel data")


@dataclass(frozen=True)
class Policy:
    name: str
    options: frozenset[Option]
    overrides: Overrides = field(default_factory=Overrides)
    #: The profile's conventions by tag (recipe overrides win over them; they win over the table).
    conventions: dict[int, Convention] = field(default_factory=dict)
    additions: tuple[Addition, ...] = ()
    #: ID attributes replaced by keyed pseudonyms (keyword -> pseudonym kind).
    pseudonymize: dict[str, str] = field(default_factory=lambda: {"PatientID": "patient-id"})
    patient_id_format: IdFormat = IdFormat(prefix="", digits=12)
    #: Number patients in order of first appearance (needs the workspace's store)
    #: instead of keyed pseudonyms.
    sequential_patient_ids: bool = False
    other_id_format: IdFormat = IdFormat(prefix="", digits=12)
    #: Template for Patient's Name; "{patient_id}" is the new Patient ID.
    patient_name: str = "{patient_id}"
    shift_range: ShiftRange = ShiftRange()
    #: Files known to carry burned-in text, when the Clean Pixel Data option is off:
    #: "quarantine" or "pass".
    burned_in: str = "quarantine"
    #: How the Clean Pixel Data option works, when it is on.
    pixels: PixelSettings = field(default_factory=PixelSettings)
    #: Rescan each object after cleaning (header, overlays, OCR of pixels) and
    #: quarantine it when PHI is still found (``deidentify --verify``).
    verify: bool = False
    private_dictionary: PrivateDictionary | None = None
    cleaners: dict[Option, Cleaner] = field(default_factory=dict)
    table: Table = field(default_factory=load_table)
    #: "cxr": apply a trained chest-radiograph anonymiser to CR/DX chest images (medveil.cxr.dicom);
    #: the checkpoint is ``visual_features_model`` (default: the one shipped with medveil).
    visual_features: str | None = None
    visual_features_model: str | None = None
    # decide()'s memo, filled on use; not part of the policy's identity.
    _cache: dict[tuple[int, str], AttributeDecision | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if {Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES} <= self.options:
            raise PolicyError("the Full Dates and Modified Dates options exclude each other")
        if self.burned_in not in {"quarantine", "pass"}:
            raise PolicyError("burned_in must be 'quarantine' or 'pass'")
        if self.visual_features not in (None, "cxr"):
            raise PolicyError("visual_features must be 'cxr' or unset")
        object.__setattr__(self, "_cache", {})

    @property
    def cleans_pixels(self) -> bool:
        return Option.CLEAN_PIXEL_DATA in self.options

    @property
    def modifies_dates(self) -> bool:
        return Option.RETAIN_LONG_MODIFIED_DATES in self.options

    @property
    def keeps_dates(self) -> bool:
        return Option.RETAIN_LONG_FULL_DATES in self.options

    @property
    def retains_uids(self) -> bool:
        return Option.RETAIN_UIDS in self.options

    def decide(self, tag: int, sop_class_uid: str) -> AttributeDecision | None:
        """The decision for a standard attribute, or None if nothing lists it."""
        key = (tag, sop_class_uid)
        cache = self._cache
        if key in cache:
            return cache[key]
        decision = self.overrides.for_tag(tag)
        if decision is None:
            convention = self.conventions.get(tag)
            if convention is not None and convention.applies(self.options):
                decision = convention.decision
        if decision is None:
            rule = self.table.lookup(tag)
            if rule is not None and rule.tag != "private":
                decision = self._from_rule(rule, tag, sop_class_uid)
        cache[key] = decision
        return decision

    def _from_rule(self, rule, tag: int, sop_class_uid: str) -> AttributeDecision:
        basic = resolve_compound(rule.basic, tag, sop_class_uid)
        chosen: tuple[str, Option] | None = None
        for option, code in rule.options.items():
            if option not in self.options:
                continue
            # C (clean: keep what can be vouched for) beats K (keep as is):
            # where two options disagree, the more protective one wins.
            if chosen is None or (code == "C" and chosen[0] == "K"):
                chosen = (code, option)
        if chosen is None:
            return AttributeDecision(basic)
        return AttributeDecision(chosen[0], source=chosen[1], fallback=basic)

    def decide_private(self, group: int, creator: str | None, element: int) -> AttributeDecision:
        """The decision for a private data element (element = low byte)."""
        if creator is not None:
            decision = self.overrides.by_private.get((group, creator.strip().upper(), element))
            if decision is not None:
                return decision
        if (Option.RETAIN_SAFE_PRIVATE in self.options and self.private_dictionary is not None
                and creator is not None):
            disposition = self.private_dictionary.disposition(group, creator.strip(), element)
            action = {"k": "K", "h": "U", "o": "C", "oi": "C", "d": "X"}.get(disposition or "")
            if action is not None:
                return AttributeDecision(action, source=Option.RETAIN_SAFE_PRIVATE, fallback="X",
                                origin="private-dictionary", value=disposition)
        return AttributeDecision("X")

    def describe(self) -> str:
        names = ", ".join(sorted(o.value for o in self.options)) or "none"
        return f"profile {self.name}; options: {names}"
