"""User recipes: YAML files that adjust a profile.

A recipe names its base profile and options, overrides actions for
attributes chosen by keyword, tag, tag pattern or private signature, adds
attributes, and sets the pseudonym formats.  Example::

    profile: tcia
    options: [retain_uids]
    actions:
      PatientSex: K                          # by keyword
      "(0010,1010)": X                       # by tag
      "(0019,10xx)": X                       # by pattern ('x' = any hex digit)
      '(0019,"GEMS_ACQU_01",92)': K          # private signature
      StudyDescription: {action: R, value: "RESEARCH STUDY"}
    add:
      - {tag: ClinicalTrialSponsorName, value: "ACME"}
    pseudonymize: [AccessionNumber, StudyID]
    patient_id: {prefix: "MV", digits: 10}     # sequential: true numbers patients MV0000000001, ...
    patient_name: "{patient_id}"
    date_shift: {min_days: -730, max_days: -30}
    burned_in: quarantine                      # when clean_pixel_data is off
    pixels: {policy: phi-only, scan: all, engines: [ppocr], screen: recall, padding: 2, overlays: text}
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import dictionary_VR, tag_for_keyword

from medveil.errors import PolicyError
from medveil.policy.options import Option
from medveil.policy.profile import (
    ACTIONS,
    Addition,
    AttributeDecision,
    Overrides,
    Policy,
    TagPattern,
)
from medveil.policy.profiles import get_profile
from medveil.pseudonym import IdFormat, ShiftRange

_PRIVATE_SIG = re.compile(r'^\(\s*([0-9A-Fa-f]{4})\s*,\s*"([^"]*)"\s*,\s*([0-9A-Fa-f]{2})\s*\)$')
_EXACT_TAG = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?$")
_KNOWN_KEYS = {"profile", "options", "actions", "add", "pseudonymize", "patient_id", "other_id",
               "patient_name", "date_shift", "burned_in", "pixels"}
_PSEUDONYM_KINDS = {"PatientID": "patient-id", "AccessionNumber": "accession", "StudyID": "study-id"}


def _tag(text: str) -> int:
    match = _EXACT_TAG.match(text.strip())
    if match:
        return int(match.group(1) + match.group(2), 16)
    tag = tag_for_keyword(text.strip())
    if tag is None:
        raise PolicyError(f"recipe names an unknown attribute {text!r}")
    return tag


def _decision(value: Any, where: str) -> AttributeDecision:
    if isinstance(value, dict):
        action = str(value.get("action", "R")).strip().upper()
        if action != "R":
            raise PolicyError(f"recipe entry {where}: only action R takes a value")
        if "value" not in value:
            raise PolicyError(f"recipe entry {where}: action R needs a value")
        return AttributeDecision("R", value=value["value"], origin="recipe")
    action = str(value).strip().upper()
    if action not in ACTIONS - {"R", "U*"}:
        raise PolicyError(f"recipe entry {where}: unknown action {value!r} (use X, Z, D, K, C or U)")
    fallback = "X" if action == "C" else None
    return AttributeDecision(action, fallback=fallback, origin="recipe")


def parse_overrides(actions: dict[str, Any]) -> Overrides:
    by_tag: dict[int, AttributeDecision] = {}
    patterns: list[tuple[TagPattern, AttributeDecision]] = []
    by_private: dict[tuple[int, str, int], AttributeDecision] = {}
    for key, value in (actions or {}).items():
        key = str(key).strip()
        decision = _decision(value, key)
        private = _PRIVATE_SIG.match(key)
        if private:
            group = int(private.group(1), 16)
            if not group & 1:
                raise PolicyError(f"recipe entry {key}: private signatures need an odd group")
            by_private[(group, private.group(2).strip().upper(), int(private.group(3), 16))] = decision
        elif "x" in key.lower() and key.startswith("("):
            patterns.append((TagPattern.parse(key), decision))
        else:
            by_tag[_tag(key)] = decision
    return Overrides(by_tag=by_tag, by_pattern=tuple(patterns), by_private=by_private)


def _additions(entries: list[dict] | None) -> tuple[Addition, ...]:
    out = []
    for entry in entries or []:
        if not isinstance(entry, dict) or "tag" not in entry or "value" not in entry:
            raise PolicyError("each 'add' entry needs a tag and a value")
        tag = _tag(str(entry["tag"]))
        vr = entry.get("vr")
        if vr is None:
            try:
                vr = dictionary_VR(tag)
            except KeyError:
                raise PolicyError(f"'add' entry {entry['tag']}: give a vr for a non-standard tag") from None
        out.append(Addition(tag=tag, vr=str(vr), value=entry["value"]))
    return tuple(out)


def load_recipe(path: Path, *, profile: str | None = None,
                extra_options: frozenset[Option] = frozenset()) -> Policy:
    """Build a policy from a recipe file; *profile*/*extra_options* from the CLI win."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read recipe {Path(path).name}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise PolicyError("a recipe must be a YAML mapping")
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise PolicyError(f"unknown recipe keys: {', '.join(sorted(unknown))}")
    options = frozenset(Option.parse(o) for o in data.get("options") or []) | extra_options
    policy = get_profile(profile or data.get("profile", "basic"), extra_options=options)
    return apply_recipe_settings(policy, data)


def apply_recipe_settings(policy: Policy, data: dict) -> Policy:
    settings: dict[str, Any] = {
        "overrides": parse_overrides(data.get("actions") or {}),
        "additions": _additions(data.get("add")),
    }
    if "pseudonymize" in data:
        pseudonymize = {"PatientID": "patient-id"}
        for keyword in data["pseudonymize"] or []:
            if keyword not in _PSEUDONYM_KINDS:
                raise PolicyError(f"cannot pseudonymise {keyword!r}; choose from {', '.join(_PSEUDONYM_KINDS)}")
            pseudonymize[keyword] = _PSEUDONYM_KINDS[keyword]
        settings["pseudonymize"] = pseudonymize
    try:
        if "patient_id" in data:
            spec = dict(data["patient_id"])
            settings["sequential_patient_ids"] = bool(spec.pop("sequential", False))
            settings["patient_id_format"] = IdFormat(**spec)
        if "other_id" in data:
            settings["other_id_format"] = IdFormat(**data["other_id"])
        if "date_shift" in data:
            settings["shift_range"] = ShiftRange(**data["date_shift"])
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"recipe setting invalid: {exc}") from None
    if "patient_name" in data:
        template = str(data["patient_name"])
        try:
            template.format(patient_id="0")
        except (KeyError, IndexError, ValueError):
            raise PolicyError("patient_name may only use the field {patient_id}") from None
        settings["patient_name"] = template
    if "burned_in" in data:
        settings["burned_in"] = str(data["burned_in"])
    if "pixels" in data:
        spec = dict(data["pixels"] or {})
        if "engines" in spec:
            engines = spec["engines"]
            spec["engines"] = tuple([engines] if isinstance(engines, str) else engines)
        try:
            settings["pixels"] = replace(policy.pixels, **spec)
        except TypeError as exc:
            raise PolicyError(f"recipe pixels setting invalid: {exc}") from None
    return replace(policy, **settings)
