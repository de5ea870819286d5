#!/usr/bin/env python3
"""How many files of each real corpus a profile releases, quarantines and skips, with reasons.

Issue 14's goal is that medveil quarantines nothing on real data whose pixels it can decode:
an identifier in a kept attribute is repaired, not a reason to lose the file. This runs every
corpus medveil can find (``../shared/corpora/*``, ``deid-data``, ``pydicom-data``) through
``deidentify_path`` with a fixed key and prints one JSON line per corpus and profile:
files, written, quarantined, skipped, the reasons (they name attributes, never values) and the
repairs by attribute.  Compare two versions by running it with ``PYTHONPATH`` pointing at the
other version's ``src/``.

Usage: python benchmarks/quarantine_count.py [--profiles basic,tcia] [--corpora flywheel,deid-data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from medveil import deidentify_path, get_profile
from medveil.pseudonym import Key
from medveil.synth.corpus import installed_corpora, shared_corpora


def corpora() -> dict[str, Path]:
    found = {name.removeprefix("shared/"): path for name, path in shared_corpora().items()}
    found.update({name: path for name, path in installed_corpora().items() if name != "pydicom"})
    return found


def count(corpus: Path, profile: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="medveil-qc-"))
    try:
        summary = deidentify_path(corpus, work / "out", policy=get_profile(profile), key=Key(b"q" * 32),
                                  workspace=work / "ws")
        return {"files": summary.files_total, "written": summary.written, "quarantined": summary.quarantined,
                "skipped": summary.skipped, "reasons": dict(summary.reasons),
                "repairs": dict(sorted(summary.repairs.items()))}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="basic,tcia")
    parser.add_argument("--corpora", help="comma list (default: every corpus found)")
    args = parser.parse_args(argv)
    available = corpora()
    names = args.corpora.split(",") if args.corpora else sorted(available)
    for profile in args.profiles.split(","):
        for name in names:
            if name not in available:
                print(json.dumps({"corpus": name, "profile": profile, "error": "not found"}))
                continue
            print(json.dumps({"corpus": name, "profile": profile, **count(available[name], profile)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
