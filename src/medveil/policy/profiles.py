"""Named profiles: the option sets users ask for by name.

``basic``  the Basic Application Level Confidentiality Profile alone.
``tcia``   what TCIA curators and the MICCAI 2024 MIDI-B challenge expect of a
           public release: Basic + Retain Longitudinal Temporal Information
           with Modified Dates + Retain Patient Characteristics + Retain
           Device Identity + Clean Descriptors + Clean Structured Content +
           Retain Safe Private + Clean Pixel Data (where burned-in text
           exists), with accession numbers replaced by keyed pseudonyms
           rather than emptied, so that studies stay linkable in the release;
           plus TCIA's curation conventions where they differ from the table
           (Station Name removed, reference sequences kept with remapped
           UIDs, SR observer sequences processed, ...).

Both live in ``data/profiles.yaml``, each convention with its reason.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from functools import lru_cache
from importlib import resources

import yaml

from medveil.errors import PolicyError
from medveil.policy.options import Option
from medveil.policy.private_kb import load_private_kb
from medveil.policy.profile import AttributeDecision, Convention, Policy
from medveil.text.values import clean_element_value

#: Options whose C actions the text cleaner carries out.
CLEANING_OPTIONS = frozenset({Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, Option.CLEAN_GRAPHICS})

PROFILES_FILE = "profiles.yaml"
_ACTIONS = {"X", "Z", "D", "K", "U*", "C"}


def _options(names) -> frozenset[Option]:
    return frozenset(Option.parse(n) for n in names or [])


def _convention(entry: dict) -> tuple[int, Convention]:
    tag = int(str(entry["tag"]), 16)
    action = str(entry["action"]).strip().upper()
    if action not in _ACTIONS:
        raise PolicyError(f"profile convention for {entry.get('attribute')}: unknown action {action}")
    requires = _options(entry.get("requires"))
    if action == "C":
        # A clean action names the option whose cleaner carries it out; uncleanable: removed.
        source = next(iter(sorted(requires, key=lambda o: o.value)), Option.CLEAN_DESCRIPTORS)
        decision = AttributeDecision("C", source=source, fallback="X", origin="profile")
    else:
        decision = AttributeDecision(action, origin="profile")
    return tag, Convention(decision=decision, unless=_options(entry.get("unless")), requires=requires,
                           reason=" ".join(str(entry.get("reason", "")).split()))


@lru_cache(maxsize=1)
def _load_profiles() -> dict[str, dict]:
    text = resources.files("medveil.policy").joinpath("data", PROFILES_FILE).read_text("utf-8")
    data = yaml.safe_load(text)
    profiles: dict[str, dict] = {}
    for name, spec in data["profiles"].items():
        profiles[name] = {
            "description": " ".join(str(spec.get("description", "")).split()),
            "options": _options(spec.get("options")),
            "pseudonymize": dict(spec.get("pseudonymize") or {"PatientID": "patient-id"}),
            "conventions": dict(_convention(entry) for entry in spec.get("conventions") or []),
        }
    return profiles


#: The named profiles (from data/profiles.yaml): options, pseudonymised IDs, conventions.
PROFILES: dict[str, dict] = _load_profiles()


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
                    pseudonymize=dict(spec["pseudonymize"]), conventions=dict(spec["conventions"]))
    cleaning = options & CLEANING_OPTIONS
    if cleaning and "cleaners" not in settings:
        # C actions clean text span by span instead of falling back to removal.
        ordered = sorted(cleaning, key=lambda o: o.value)
        policy = replace(policy, cleaners={option: clean_element_value for option in ordered})
    if Option.RETAIN_SAFE_PRIVATE in options and "private_dictionary" not in settings:
        # Retain Safe Private needs to know which private elements are safe: the TCIA
        # Private Tag Knowledge Base plus PS3.15 Table E.3.10-1, shipped with medveil.
        policy = replace(policy, private_dictionary=load_private_kb())
    return replace(policy, **settings) if settings else policy
