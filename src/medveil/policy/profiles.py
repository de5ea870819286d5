"""Named profiles: the option sets users ask for by name.

``basic``  the Basic Application Level Confidentiality Profile alone.
``tcia``   what TCIA curators and the MICCAI 2024 MIDI-B challenge expect of a
           public release: Basic + Retain Longitudinal Temporal Information
           with Modified Dates + Retain Patient Characteristics + Retain
           Device Identity + Clean Descriptors + Clean Structured Content +
           Retain Safe Private + Clean Pixel Data (where burned-in text
           exists), with accession numbers replaced by keyed pseudonyms
           rather than emptied, so that studies stay linkable in the release.
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from medveil.errors import PolicyError
from medveil.policy.options import Option
from medveil.policy.private_kb import load_private_kb
from medveil.policy.profile import Policy
from medveil.text.dicom import clean_element_value

#: Options whose C actions the text cleaner carries out.
CLEANING_OPTIONS = frozenset({Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, Option.CLEAN_GRAPHICS})

PROFILES: dict[str, dict] = {
    "basic": {
        "options": frozenset(),
        "pseudonymize": {"PatientID": "patient-id"},
    },
    "tcia": {
        "options": frozenset({
            Option.RETAIN_LONG_MODIFIED_DATES,
            Option.RETAIN_PATIENT_CHARACTERISTICS,
            Option.RETAIN_DEVICE_IDENTITY,
            Option.CLEAN_DESCRIPTORS,
            Option.CLEAN_STRUCTURED_CONTENT,
            Option.RETAIN_SAFE_PRIVATE,
            Option.CLEAN_PIXEL_DATA,
        }),
        "pseudonymize": {"PatientID": "patient-id", "AccessionNumber": "accession"},
    },
}


def get_profile(name: str, *, extra_options: frozenset[Option] = frozenset(),
                **settings) -> Policy:
    """Build the policy for profile *name* plus *extra_options* and settings."""
    try:
        spec = PROFILES[name.strip().lower()]
    except KeyError:
        close = difflib.get_close_matches(name.strip().lower(), list(PROFILES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PolicyError(f"unknown profile {name!r}; {hint}known profiles: {', '.join(PROFILES)}") from None
    options = spec["options"] | extra_options
    # Full Dates asked for explicitly replaces the profile's Modified Dates.
    if Option.RETAIN_LONG_FULL_DATES in extra_options:
        options -= {Option.RETAIN_LONG_MODIFIED_DATES}
    policy = Policy(name=name.strip().lower(), options=frozenset(options),
                    pseudonymize=dict(spec["pseudonymize"]))
    cleaning = options & CLEANING_OPTIONS
    if cleaning and "cleaners" not in settings:
        # C actions clean text span by span instead of falling back to removal.
        policy = replace(policy, cleaners={option: clean_element_value for option in sorted(cleaning, key=lambda o: o.value)})
    if Option.RETAIN_SAFE_PRIVATE in options and "private_dictionary" not in settings:
        # Retain Safe Private needs to know which private elements are safe: the TCIA
        # Private Tag Knowledge Base plus PS3.15 Table E.3.10-1, shipped with medveil.
        policy = replace(policy, private_dictionary=load_private_kb())
    return replace(policy, **settings) if settings else policy
