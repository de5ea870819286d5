"""A fingerprint of everything that decides a released file's bytes.

Resuming skips an input when an earlier run already released it.  That is
only right when the earlier run would write the same bytes today: a run
with Clean Pixel Data switched off, another profile, another key, other
pixel rules or another medveil must not stand in for this one (a release
once kept burned-in names because the second run trusted the first).  So
each released file is recorded with this fingerprint, and resume compares it.

The fingerprint hashes a canonical form of the policy (every field, the
recipe's overrides and additions, the pixel settings, the contents of a
rules file or model checkpoint it names), the key's fingerprint, medveil's
version and the standard's edition.  It reveals nothing about the key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from medveil._version import __version__
from medveil.policy.profile import Policy
from medveil.pseudonym import Key

#: Fields whose value is a large data object named by its source rather than spelled out.
_BY_NAME = ("table", "private_dictionary")


def settings_fingerprint(policy: Policy, key: Key, *, version: str = __version__) -> str:
    """A hex digest that changes whenever the output of a file could change."""
    described = {
        "medveil": version,
        "table": policy.table.edition,
        "key": key.fingerprint(),
        "policy": _canonical(policy),
        "rules_file": _file_digest(policy.pixels.rules_file),
        "visual_features_model": _file_digest(policy.visual_features_model),
        "private_dictionary": _named(policy.private_dictionary),
    }
    text = json.dumps(described, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: (_named(getattr(value, f.name)) if f.name in _BY_NAME else
                           _canonical(getattr(value, f.name)))
                  for f in dataclasses.fields(value) if not f.name.startswith("_")}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, dict):
        return sorted(([_canonical(k), _canonical(v)] for k, v in value.items()), key=_sort_key)
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=_sort_key)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__name__)}"
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _named(value: Any) -> Any:
    """A large data object by its type, the edition or source it was built from and its size."""
    if value is None:
        return None
    parts = [f"{type(value).__module__}.{type(value).__qualname__}"]
    for name in ("edition", "kb_name", "kb_date", "standard_edition"):
        if getattr(value, name, None):
            parts.append(f"{name}={getattr(value, name)}")
    for name in ("rules", "entries"):
        items = getattr(value, name, None)
        if isinstance(items, (tuple, list)):
            parts.append(f"{name}={len(items)}")
    return ";".join(parts)


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return f"missing:{resolved}"
    return _digest(str(resolved), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _digest(path: str, _mtime: int, _size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
