"""medveil cxr end to end on phantoms: train, anonymize (PNG), evaluate (report), and the DICOM step."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from medveil.cli import app  # noqa: E402
from medveil.cxr import data as D  # noqa: E402
from medveil.cxr import dicom as X  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny anonymiser trained on phantoms (tests using it are marked slow)."""
    out = tmp_path_factory.mktemp("cxr") / "gen.pt"
    result = runner.invoke(app, ["cxr", "train", str(out), "--phantom", "--size", "32", "--budget", "tiny",
                                 "--mu", "0.05", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow  # model_path trains an anonymiser
def test_anonymize_png_keeps_size_and_moves_pixels(model_path, tmp_path):
    img = (D.make_phantoms(1, 1, 96, seed=3).images[0, 0] * 255).astype(np.uint8)
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    result = runner.invoke(app, ["cxr", "anonymize", str(src), str(dst), "--model", str(model_path)])
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(dst))
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int))
    assert diff.max() > 0 and diff.mean() < 20  # a small deformation, not a new image


def _cr_dataset(photometric: str = "MONOCHROME1") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = uid
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"  # a frontal chest by its header (the image check has its own tests)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    img = D.make_phantoms(1, 1, 64, seed=4).images[0, 0]
    arr = np.round((1 - img if photometric == "MONOCHROME1" else img) * 4095).astype(np.uint16)[:, :56]
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = arr.tobytes()
    return ds


@pytest.mark.slow  # model_path trains an anonymiser
def test_clean_visual_features_on_a_cr_dataset(model_path, tmp_path):
    ds = _cr_dataset()
    before = ds.pixel_array.copy()
    old_uid = ds.SOPInstanceUID
    gen, size = X.load_model(model_path)
    assert size == 32
    X.clean_visual_features(ds, gen)
    after = ds.pixel_array
    assert after.shape == before.shape and after.dtype == before.dtype
    assert (after != before).any() and after.min() >= before.min() and after.max() <= before.max()
    assert np.abs(after.astype(int) - before.astype(int)).mean() < 0.05 * 4095
    assert ds.SOPInstanceUID != old_uid and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ImageType[0] == "DERIVED"
    codes = [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in ds.DeidentificationMethodCodeSequence]
    assert ("113102", "DCM", "Clean Recognizable Visual Features Option") in codes
    path = tmp_path / "out.dcm"
    ds.save_as(path, enforce_file_format=True)
    import pydicom

    back = pydicom.dcmread(path)
    assert np.array_equal(back.pixel_array, after)
    # deterministic: the same input gives the same output and UID
    again = _cr_dataset()
    again.SOPInstanceUID = old_uid
    again.PixelData = before.tobytes()
    X.clean_visual_features(again, gen)
    assert again.SOPInstanceUID == ds.SOPInstanceUID and np.array_equal(again.pixel_array, after)
    assert len(again.DeidentificationMethodCodeSequence) == 1


@pytest.mark.slow  # model_path trains an anonymiser
def test_clean_visual_features_refuses_other_images(model_path):
    ds = _cr_dataset()
    ds.Modality = "CT"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    before = bytes(ds.PixelData)
    with pytest.raises(X.NotApplicable):
        X.clean_visual_features(ds, X.load_model(model_path)[0])
    assert bytes(ds.PixelData) == before
    hand = _cr_dataset()
    hand.BodyPartExamined = "HAND"
    assert not X.is_chest_radiograph(hand)


@pytest.mark.slow  # cxr training and evaluation
def test_evaluate_on_phantoms_writes_table_json_and_plot(tmp_path):
    out = tmp_path / "docs" / "cxr.md"
    out.parent.mkdir()
    out.write_text("# Results\n\nhand-written text\n")
    result = runner.invoke(app, ["cxr", "evaluate", "--phantom", "--size", "32", "--runs", "0",
                                 "--methods", "none,dppix_b8_e0.1,random_warp", "--budget", "tiny",
                                 "--work", str(tmp_path / "work"), "--out", str(out), "--bootstrap", "50", "--quiet"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "hand-written text" in text and "| DP-Pix b=8, ε=0.1 | 1 |" in text and "cxr.png" in text
    rows = {r["method"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert set(rows) == {"none", "dppix_b8_e0.1", "random_warp"}
    assert rows["none"]["ssim"] == pytest.approx(1.0) and rows["dppix_b8_e0.1"]["ssim"] < 0.5
    assert rows["random_warp"]["disp_max_px"] <= 0.01 * 31 / 2 * np.sqrt(2) + 1e-6
    lo, hi = rows["none"]["auc_ci"]
    assert lo <= rows["none"]["auc"] <= hi
    assert out.with_suffix(".png").stat().st_size > 1000
    # the report can be rebuilt from the cache alone, and keeps one block
    again = runner.invoke(app, ["cxr", "evaluate", "--phantom", "--report-only", "--work", str(tmp_path / "work"),
                                "--out", str(out), "--bootstrap", "50", "--quiet"])
    assert again.exit_code == 0, again.output
    assert out.read_text().count("cxr-results:begin") == 1


@pytest.mark.slow  # model_path trains an anonymiser
def test_deidentify_clean_visual_features_cxr_end_to_end(model_path, tmp_path):
    import pydicom

    src = tmp_path / "in"
    src.mkdir()
    cr = _cr_dataset("MONOCHROME2")
    cr.PatientName, cr.PatientID = "Doe^Jane", "PID-123"
    cr.StudyInstanceUID, cr.SeriesInstanceUID = generate_uid(), generate_uid()
    cr.save_as(src / "cr.dcm", enforce_file_format=True)
    original = cr.pixel_array.copy()
    out, maps = tmp_path / "out", tmp_path / "maps"
    result = runner.invoke(app, ["deidentify", str(src), str(out), "--throwaway-key", "--mappings", str(maps),
                                 "--clean-visual-features", "cxr", "--cxr-model", str(model_path)])
    assert result.exit_code == 0, result.output
    files = list(out.rglob("*.dcm"))
    assert len(files) == 1
    ds = pydicom.dcmread(files[0])
    assert ds.PatientID != "PID-123" and ds.ImageType[0] == "DERIVED"
    assert (ds.pixel_array != original).any()
    assert np.abs(ds.pixel_array.astype(int) - original.astype(int)).mean() < 0.05 * 4095
    assert "113102" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    uid_map = (maps / "uid_mapping.csv").read_text()
    assert f"{cr.SOPInstanceUID},{ds.SOPInstanceUID}" in uid_map.replace('"', "")


def test_shipped_model_loads_and_stays_within_its_bound():
    if not X.DEFAULT_MODEL.is_file():
        pytest.skip("no shipped checkpoint")
    from medveil.cxr import warp as W
    from medveil.cxr.apply import anonymise_image

    gen, size = X.load_model()
    assert size == 128 and gen.config["kind"] == "warp" and gen.config["mu"] == pytest.approx(0.02)
    img = D.make_phantoms(1, 1, 128, seed=7).images[0, 0]
    with torch.no_grad():
        raw = gen.raw(torch.from_numpy(img)[None, None])
    assert W.displacement(raw, gen.mu, gen.sigma).abs().max() <= gen.mu + 1e-7
    out = anonymise_image(gen, img, size)
    assert out.shape == img.shape and np.abs(out - img).mean() < 0.05
