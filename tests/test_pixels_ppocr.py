"""medveil's PP-OCR runner: recognition runs, the alphabet check, the detection margin, model sets.

Counts and readings only; nothing here depends on time.
"""

from __future__ import annotations

import numpy as np
import pytest

from medveil.pixels import detect, ppocr
from medveil.pixels.ocr import OcrUnavailable, get_engine
from medveil.pixels.screen import Candidate

PIL = pytest.importorskip("PIL")
pytest.importorskip("onnxruntime")
from PIL import Image, ImageDraw, ImageFont  # noqa: E402


def line_image(text: str, size: int = 22, margin: int = 6) -> np.ndarray:
    """Dark text on white, cropped to *margin* pixels round its ink."""
    font = ImageFont.load_default(size=size)
    canvas = Image.new("L", (40 + size * len(text), 3 * size), 255)
    draw = ImageDraw.Draw(canvas)
    draw.text((20, size), text, fill=0, font=font)
    ink = np.asarray(canvas) < 128
    ys, xs = np.nonzero(ink)
    return np.asarray(canvas)[max(0, ys.min() - margin):ys.max() + 1 + margin,
                              max(0, xs.min() - margin):xs.max() + 1 + margin]


@pytest.fixture(scope="module")
def engine():
    if not ppocr.available("ppocr"):
        pytest.skip("rapidocr_onnxruntime (the ppocr models) is not installed")
    return get_engine("ppocr")


class RecordingSession:
    """Wraps a recognition session and records the width of every batch it runs."""

    def __init__(self, session) -> None:
        self.session = session
        self.batches: list[tuple[int, int]] = []

    def get_inputs(self):
        return self.session.get_inputs()

    def run(self, names, feeds):
        (tensor,) = feeds.values()
        self.batches.append((tensor.shape[0], tensor.shape[3]))
        return self.session.run(names, feeds)


def test_recognition_runs_crops_of_one_width_together_and_reads_as_alone(engine, monkeypatch):
    short, long_ = line_image("DOE"), line_image("ST MARY HOSPITAL 40981237")
    alone = [engine.recognise([short])[0], engine.recognise([long_])[0]]
    recorder = RecordingSession(engine._models.rec)
    monkeypatch.setattr(engine, "_models", ppocr._Models(engine._models.det, recorder, engine._models.characters))
    together = engine.recognise([short, long_, short])
    assert [text for text, _ in together] == [alone[0][0], alone[1][0], alone[0][0]]
    # The short word is never padded to the long line's width: two runs, the short one holding both copies.
    assert len(recorder.batches) == 2
    (short_count, short_width), (long_count, long_width) = sorted(recorder.batches, key=lambda b: b[1])
    assert (short_count, long_count) == (2, 1) and short_width < long_width


def test_a_line_cropped_tight_to_its_glyphs_is_detected_whole(engine):
    """A candidate region's glyphs may touch its edge; enlarged 3x, as a 12-pixel label is."""
    image = detect._enlarge(line_image("DOB: 03/31/1924", size=12, margin=0), 3)
    boxes = engine.detect(image)
    assert boxes
    covered = np.zeros(image.shape[1], dtype=bool)
    for x1, _y1, x2, _y2, _score in boxes:
        covered[x1:x2] = True
    assert covered.mean() >= 0.95  # without the margin, the first characters are lost


def test_an_alphabet_that_does_not_match_the_model_is_refused():
    class Output:
        shape = ["batch", "steps", 10]

    class Meta:
        custom_metadata_map = {"character": "a\nb\nc"}

    class Session:
        def get_modelmeta(self):
            return Meta()

        def get_outputs(self):
            return [Output()]

    with pytest.raises(OcrUnavailable, match="does not match"):
        ppocr._characters(Session(), None)
    Output.shape = ["batch", "steps", 5]  # blank, a, b, c, space
    assert ppocr._characters(Session(), None) == ("", "a", "b", "c", " ")


@pytest.mark.parametrize("name", ["ppocr-v5", "ppocr-v6"])
def test_optional_model_sets_say_what_to_install_when_missing(name):
    get_engine.cache_clear()
    if ppocr.available(name):
        assert get_engine(name).name == name
    else:
        with pytest.raises(OcrUnavailable, match=ppocr.MODEL_SETS[name][0]):
            get_engine(name)


def test_candidates_of_small_frames_are_enlarged_the_most():
    crop = np.zeros((20, 60), dtype=np.uint16)
    crop[5:15, 5:55] = 4000
    large_glyph = Candidate(0, 0, 60, 20, glyph=16)
    (_view, factor), *_ = detect._crop_views(crop, Candidate(0, 0, 60, 20, glyph=8), True, False)
    assert factor == 3  # 24 / 8
    (_view, factor), *_ = detect._crop_views(crop, large_glyph, True, False)
    assert factor == 1  # read at its own size
    (_view, factor), *_ = detect._crop_views(crop, large_glyph, True, False, small_frame=True)
    assert factor == detect.MAX_ENLARGE


def test_a_missing_model_package_names_both_install_steps(monkeypatch):
    import importlib.util

    from medveil.pixels import ocr

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "rapidocr_onnxruntime" else real(name, *rest))
    ppocr._load.cache_clear()
    try:
        with pytest.raises(OcrUnavailable) as missing:
            ppocr._load("ppocr")
        with pytest.raises(OcrUnavailable) as rapid:
            ocr.RapidOcrEngine()
    finally:
        ppocr._load.cache_clear()
    for message in (str(missing.value), str(rapid.value)):
        assert "pip install 'medveil[ocr]' && pip install --no-deps 'rapidocr_onnxruntime>=1.3'" in message
