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
* ``ppocr-v6`` -- PP-OCRv6 small, in ``rapidocr`` 3.x (optional, evaluated in
  ``benchmarks/pixel_throughput.py``).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medveil.pixels.ocr import OcrUnavailable, Word

#: (package, detection model, recognition model) per model set, paths inside the package.
MODEL_SETS = {
    "ppocr": ("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", "models/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr-v6": ("rapidocr", "models/PP-OCRv6_det_small.onnx", "models/PP-OCRv6_rec_small.onnx"),
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
#: Word crops per recognition run, after sorting by width so the padding stays small.
REC_BATCH = 16


@dataclass(frozen=True, slots=True)
class _Models:
    det: object
    rec: object
    characters: tuple[str, ...]


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise OcrUnavailable(f"{package} is not installed; it ships this engine's models")
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
    try:
        import onnxruntime
    except ImportError:
        raise OcrUnavailable("onnxruntime is not installed (pip install 'medveil[ocr]')") from None
    package, det_path, rec_path = MODEL_SETS[name]
    root = _package_dir(package)
    det_file, rec_file = root / det_path, root / rec_path
    if not det_file.is_file() or not rec_file.is_file():
        raise OcrUnavailable(f"the {name} models are not in the installed {package}")
    providers = ["CPUExecutionProvider"]
    det = onnxruntime.InferenceSession(str(det_file), session_options(), providers=providers)
    rec = onnxruntime.InferenceSession(str(rec_file), session_options(), providers=providers)
    characters = _characters(rec, root)
    return _Models(det, rec, characters)


def _characters(rec, root: Path) -> tuple[str, ...]:
    """The recogniser's alphabet: CTC blank, the model's characters, then a space."""
    listed = rec.get_modelmeta().custom_metadata_map.get("character")
    if listed:
        characters = listed.splitlines()
    else:
        candidates = sorted(root.rglob("*dict*.txt"))
        if not candidates:
            raise OcrUnavailable("the recognition model carries no character list")
        characters = candidates[0].read_text(encoding="utf-8").splitlines()
    return ("", *characters, " ")


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
        padded_h = max(STRIDE, math.ceil(height / STRIDE) * STRIDE)
        padded_w = max(STRIDE, math.ceil(width / STRIDE) * STRIDE)
        canvas = np.full((padded_h, padded_w), _background(image), dtype=np.uint8)
        canvas[:height, :width] = image
        tensor = (canvas.astype(np.float32) / 127.5 - 1.0)[np.newaxis, np.newaxis]
        tensor = np.repeat(tensor, 3, axis=1)
        session = self._models.det
        probability = session.run(None, {session.get_inputs()[0].name: tensor})[0][0, 0, :height, :width]
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
        """(text, confidence) for each 8-bit greyscale line crop, batched by width."""
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        ratios = [c.shape[1] / max(1, c.shape[0]) for c in crops]
        order = sorted(range(len(crops)), key=lambda i: ratios[i])
        session = self._models.rec
        name = session.get_inputs()[0].name
        for start in range(0, len(order), REC_BATCH):
            batch = [i for i in order[start:start + REC_BATCH] if crops[i].size]
            if not batch:
                continue
            widest = max(math.ceil(LINE_HEIGHT * max(ratios[i], 1.0)) for i in batch)
            tensor = np.zeros((len(batch), 3, LINE_HEIGHT, widest), dtype=np.float32)
            for row, index in enumerate(batch):
                tensor[row, :, :, :] = _line_tensor(crops[index], widest)
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
