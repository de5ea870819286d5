"""Released bytes do not change unless a change means them to: the golden outputs.

``tests/data/golden.json`` holds the SHA-256 of every file medveil released
for fixed inputs with a fixed key (``tools/golden.py``).  A refactoring must
reproduce them exactly.  A change that means to alter outputs rewrites the
manifest (``python tools/golden.py write``) and says why in its commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import golden  # noqa: E402

MANIFEST = json.loads(golden.MANIFEST.read_text())
SAME_OCR_STACK = MANIFEST["ocr_stack"] == golden.ocr_stack()


def _params():
    for case in golden.CASES:
        marks = [pytest.mark.slow]
        if case.source == "shared":
            marks.append(pytest.mark.shared)
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", _params())
def test_release_is_byte_identical_to_the_golden_outputs(case, tmp_path):
    if case.name not in MANIFEST["cases"]:
        pytest.skip(f"{case.name} was not recorded (its inputs were absent when the manifest was written)")
    if case.ocr and not SAME_OCR_STACK:
        pytest.skip("this machine's OCR stack (library versions, CPU vector extensions) differs from the manifest's")
    actual = golden.run_case(case, tmp_path)
    if actual is None:
        pytest.skip(f"the inputs of {case.name} are not available here")
    problems = golden.compare(MANIFEST["cases"][case.name], actual)
    assert not problems, "\n".join(problems[:40])


def test_a_changed_byte_is_reported():
    name, recorded = next(iter(MANIFEST["cases"].items()))
    changed = json.loads(json.dumps(recorded))
    first = next(iter(changed["released"]))
    changed["released"][first] = "0" * 64
    changed["summary"]["written"] = -1
    problems = golden.compare(recorded, changed)
    assert f"released {first}: differs" in problems
    assert any(line.startswith("summary.written") for line in problems)


def test_the_manifest_holds_no_input_values():
    text = golden.MANIFEST.read_text()
    for phi in ("SMITH", "MRN0042", "CompressedSamples", "Anonymized"):
        assert phi not in text
    assert subprocess.run([sys.executable, str(ROOT / "tools" / "golden.py"), "check", "--cases", "nope"],
                          capture_output=True).returncode == 2
