"""What `make tool` (the demo's and a user's install) brings: OCR without the GUI build of OpenCV.

rapidocr_onnxruntime ships the default engine's PP-OCR models but depends on opencv-python (the GUI
build, with Qt and FFmpeg), where medveil needs only the headless build.  It is therefore installed
with --no-deps, and the ocr extra carries what it really needs.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", item, maxsplit=1)[0].lower().replace("_", "-") for item in requirements}


def test_no_extra_brings_the_gui_build_of_opencv():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        names = _names(requirements)
        assert "opencv-python" not in names, name
        assert "rapidocr-onnxruntime" not in names, f"{name}: it would pull opencv-python; install it --no-deps"
    assert {"opencv-python-headless", "onnxruntime", "pyclipper", "shapely"} <= _names(extras["ocr"])
    # Tesseract is its own extra (48 MiB, the weakest engine), which the test environment installs.
    assert "tesserocr" not in _names(extras["ocr"]) and "tesserocr" in _names(extras["tesseract"])
    assert "tesseract" in re.search(r'-e "\.\[([a-z,]+)\]"', MAKEFILE.split("$(VENV)/.installed:", 1)[1]).group(1)


@pytest.mark.parametrize("target", [".installed-tool", ".installed"])
def test_make_installs_the_ocr_models_without_their_dependencies(target):
    recipe = MAKEFILE.split(f"$(VENV)/{target}:", 1)[1].split("\n\n", 1)[0]
    assert "--no-deps $(OCR_MODELS)" in recipe
    assert re.search(r'^OCR_MODELS := "rapidocr_onnxruntime>=1\.3"$', MAKEFILE, re.M)


def test_this_environment_has_one_opencv_and_it_is_headless():
    pytest.importorskip("cv2")
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("opencv-python")
    assert metadata.distribution("opencv-python-headless")
