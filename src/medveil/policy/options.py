"""The Basic Profile's options and their codes in CID 7050.

Each option a user can switch on is named once here, with the code that
records it in De-identification Method Code Sequence (0012,0064) so that a
recipient can tell from the file itself what was done (PS3.15 E.1.1,
PS3.16 CID 7050 "De-identification Method").
"""

from __future__ import annotations

import enum


class Option(enum.Enum):
    """A PS3.15 Annex E option; the value is the name used on the CLI and in recipes."""

    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    RETAIN_UIDS = "retain_uids"
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    RETAIN_LONG_FULL_DATES = "retain_long_full_dates"
    RETAIN_LONG_MODIFIED_DATES = "retain_long_modified_dates"
    CLEAN_DESCRIPTORS = "clean_descriptors"
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"
    CLEAN_GRAPHICS = "clean_graphics"
    CLEAN_PIXEL_DATA = "clean_pixel_data"
    CLEAN_RECOGNIZABLE_VISUAL_FEATURES = "clean_recognizable_visual_features"

    @property
    def code(self) -> Code:
        return OPTION_CODES[self]

    @property
    def summary(self) -> str:
        """What the option does, in one line (``medveil profiles``)."""
        return OPTION_SUMMARIES[self]

    @classmethod
    def parse(cls, text: str) -> Option:
        key = text.strip().lower().replace("-", "_")
        for option in cls:
            if option.value == key:
                return option
        import difflib

        from medveil.errors import PolicyError

        names = [o.value for o in cls]
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PolicyError(f"unknown option {text.strip()!r}; {hint}known options: {', '.join(names)}")


class Code(tuple):
    """(CodeValue, CodingSchemeDesignator, CodeMeaning)."""

    __slots__ = ()

    def __new__(cls, value: str, meaning: str, scheme: str = "DCM") -> Code:
        return super().__new__(cls, (value, scheme, meaning))

    value = property(lambda self: self[0])
    scheme = property(lambda self: self[1])
    meaning = property(lambda self: self[2])


BASIC_PROFILE_CODE = Code("113100", "Basic Application Confidentiality Profile")

OPTION_CODES: dict[Option, Code] = {
    Option.CLEAN_PIXEL_DATA: Code("113101", "Clean Pixel Data Option"),
    Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES: Code("113102", "Clean Recognizable Visual Features Option"),
    Option.CLEAN_GRAPHICS: Code("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT: Code("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS: Code("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONG_FULL_DATES: Code(
        "113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.RETAIN_LONG_MODIFIED_DATES: Code(
        "113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    Option.RETAIN_PATIENT_CHARACTERISTICS: Code("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: Code("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS: Code("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE: Code("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: Code("113112", "Retain Institution Identity Option"),
}

OPTION_SUMMARIES: dict[Option, str] = {
    Option.RETAIN_SAFE_PRIVATE: "keep private attributes known to be safe (TCIA Private Tag KB, PS3.15 E.3.10)",
    Option.RETAIN_UIDS: "keep the original UIDs instead of keyed replacements",
    Option.RETAIN_DEVICE_IDENTITY: "keep device serial numbers, station and device names",
    Option.RETAIN_INSTITUTION_IDENTITY: "keep institution and department names and addresses",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "keep sex, age, size, weight and similar characteristics",
    Option.RETAIN_LONG_FULL_DATES: "keep dates and times as they are",
    Option.RETAIN_LONG_MODIFIED_DATES: "shift dates by a keyed per-patient offset (intervals kept)",
    Option.CLEAN_DESCRIPTORS: "keep descriptions and comments, with their PHI removed",
    Option.CLEAN_STRUCTURED_CONTENT: "keep structured report content, with its PHI removed",
    Option.CLEAN_GRAPHICS: "keep graphic annotations, with their PHI removed",
    Option.CLEAN_PIXEL_DATA: "find burned-in text with OCR and mask what identifies",
    Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES: "change pixels that show who the patient is (--clean-visual-features)",
}

#: Options that act on pixels; they are recorded only when a pixel step really ran.
PIXEL_OPTIONS = frozenset({Option.CLEAN_PIXEL_DATA, Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES})
