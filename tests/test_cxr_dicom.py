"""The DICOM side of ``--clean-visual-features cxr``: fail closed, only frontal chest images, Recognizable Visual
Features, references from other objects, ``medveil cxr anonymize`` on DICOM, one intensity normalisation."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)
from typer.testing import CliRunner  # noqa: E402

from medveil.cli import app  # noqa: E402
from medveil.cxr import applicable as A  # noqa: E402
from medveil.cxr import data as D  # noqa: E402
from medveil.cxr import dicom as X  # noqa: E402
from medveil.cxr import intensity as I  # noqa: E402
from medveil.cxr import lungs as L  # noqa: E402
from medveil.cxr.models import Anonymiser  # noqa: E402
from medveil.cxr.train import save_generator  # noqa: E402
from medveil.pipeline import deidentify_bytes  # noqa: E402
from medveil.policy import get_profile  # noqa: E402
from medveil.policy.options import Option  # noqa: E402
from medveil.pseudonym import Key  # noqa: E402

runner = CliRunner()
CR = "1.2.840.10008.5.1.4.1.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
KEY = Key(b"c" * 32)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A random-initialised warp (a smooth field of at most mu = 0.05): moves pixels, costs no training."""
    torch.manual_seed(0)
    gen = Anonymiser(mu=0.05, sigma=1.0, base=4)
    path = tmp_path_factory.mktemp("cxrdicom") / "gen.pt"
    save_generator(gen, path, {"size": 32})
    return path


def _chest(photometric="MONOCHROME2", frames=1, syntax=ExplicitVRLittleEndian, sop=CR, part="CHEST", view="PA",
           bits=12, size=(64, 56)) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if syntax == RLELossless else syntax
    ds.file_meta.MediaStorageSOPClassUID = sop
    uid = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID, ds.SOPInstanceUID = sop, uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR" if sop == CR else "DX"
    ds.PatientName, ds.PatientID = "Doe^Jane", "PID-123"
    if part is not None:
        ds.BodyPartExamined = part
    if view is not None:
        ds.ViewPosition = view
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    imgs = [D.make_phantoms(1, 1, 64, seed=4 + f).images[0, 0] for f in range(frames)]
    top = 2 ** bits - 1
    arr = np.stack([np.round((1 - im if photometric == "MONOCHROME1" else im) * top) for im in imgs])
    arr = arr[:, : size[0], : size[1]].astype(np.uint16 if bits > 8 else np.uint8)
    ds.Rows, ds.Columns = arr.shape[1:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    alloc = 16 if bits > 8 else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = alloc, bits, bits - 1, 0
    data = arr if frames > 1 else arr[0]
    if syntax == ExplicitVRBigEndian:
        ds.PixelData = data.astype(data.dtype.newbyteorder(">")).tobytes()
    else:
        ds.PixelData = data.tobytes()
    if syntax == RLELossless:
        ds.compress(RLELossless, data)
    return ds


def _garbled(ds: Dataset) -> Dataset:
    """RLE Lossless Pixel Data whose one fragment is not RLE: well-formed for the file, undecodable."""
    from pydicom.encaps import encapsulate

    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([b"\x07" + b"\xff" * 63])
    ds["PixelData"].VR = "OB"
    return ds


def _policy(model_path, **kw):
    from dataclasses import replace

    policy = get_profile("basic", extra_options=frozenset(kw.pop("options", ())))
    return replace(policy, visual_features="cxr", visual_features_model=str(model_path), **kw)


def _run(ds: Dataset, model_path, **kw):
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out, record = deidentify_bytes(buf.getvalue(), _policy(model_path, **kw), KEY)
    released = pydicom.dcmread(BytesIO(out)) if record.status == "written" else None
    return released, record


def _codes(ds) -> list[str]:
    return [str(i.CodeValue) for i in ds.get("DeidentificationMethodCodeSequence", [])]


# ------------------------------------------------------------------------------------------- fail closed

def test_a_multiframe_chest_is_warped_frame_by_frame(model_path):
    ds = _chest(frames=3)
    before = ds.pixel_array.copy()
    out, record = _run(ds, model_path)
    assert record.status == "written", record.reason
    after = out.pixel_array
    assert after.shape == before.shape == (3, 64, 56)
    for f in range(3):
        assert (after[f] != before[f]).any(), f"frame {f} left unwarped"
    # each frame's field comes from that frame: the same warp applied to every frame would not give these
    assert "113102" in _codes(out) and out.RecognizableVisualFeatures == "NO"


def test_big_endian_chest_is_warped_and_stays_big_endian(model_path):
    ds = _chest(syntax=ExplicitVRBigEndian)
    before = ds.pixel_array.copy()
    out, record = _run(ds, model_path)
    assert record.status == "written", record.reason
    assert out.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    after = out.pixel_array
    assert (after != before).any() and after.max() <= before.max() and after.min() >= before.min()
    assert np.abs(after.astype(int) - before.astype(int)).mean() < 0.05 * 4095


def test_compressed_chest_is_decoded_warped_and_stored_uncompressed(model_path):
    ds = _chest(syntax=RLELossless)
    before = ds.pixel_array.copy()
    out, record = _run(ds, model_path)
    assert record.status == "written", record.reason
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (out.pixel_array != before).any()


@pytest.mark.parametrize("breakage, reason", [
    ("rgb", "not greyscale"),
    ("garbled", "cannot be decoded"),
    ("no-pixels", "without Pixel Data"),
    ("bits", "Bits Allocated"),
])
def test_a_chest_that_cannot_be_warped_is_quarantined_never_released(model_path, breakage, reason):
    ds = _chest()
    if breakage == "rgb":
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = np.zeros((64, 56, 3), np.uint8).tobytes()
    elif breakage == "garbled":
        ds = _garbled(ds)
    elif breakage == "no-pixels":  # a header-only chest object: nothing that could be warped
        for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                        "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
            delattr(ds, keyword)
    elif breakage == "bits":
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 12, 12, 11
    out, record = _run(ds, model_path)
    assert out is None and record.status == "quarantined"
    assert reason in record.reason


def test_a_chest_is_quarantined_when_the_model_cannot_be_loaded(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    out, record = _run(_chest(), bad)
    assert out is None and "anonymiser cannot be loaded" in record.reason
    # ... while an image the step does not apply to is still released (untouched, nothing claimed)
    knee = _chest(part="KNEE")
    out, record = _run(knee, bad)
    assert record.status == "written" and "113102" not in _codes(out) and "RecognizableVisualFeatures" not in out


def test_an_undecided_image_that_cannot_be_checked_is_quarantined(model_path):
    ds = _garbled(_chest(part=None, view=None))
    out, record = _run(ds, model_path)
    assert out is None and "may be a chest radiograph" in record.reason


# ----------------------------------------------------------------------------------------- which images

@pytest.mark.parametrize("changes, expected", [
    ({}, True),
    ({"ViewPosition": "AP", "ImageLaterality": "B"}, True),
    ({"BodyPartExamined": "THORAX"}, True),
    ({"SOPClassUID": DX}, True),
    ({"ViewPosition": "LL"}, False),  # lateral chest
    ({"ViewPosition": "LATERAL"}, False),
    ({"BodyPartExamined": "KNEE"}, False),
    ({"BodyPartExamined": "EXTREMITY", "ViewPosition": "AP"}, False),
    ({"ImageLaterality": "L"}, False),
    ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, False),  # a secondary capture that says CR
    ({"BodyPartExamined": ""}, None),  # the knee of the review: CR, no body part
    ({"ViewPosition": ""}, None),
    ({"BodyPartExamined": "PORT CHEST"}, None),
    ({"ViewPosition": "PA ERECT"}, None),
])
def test_header_decision(changes, expected):
    ds = _chest()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    assert A.header_decision(ds).applies is expected


def test_coded_anatomy_and_view_decide_when_the_strings_are_empty():
    def code(scheme, value):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, "x"
        return Sequence([item])

    ds = _chest(part=None, view=None)
    ds.AnatomicRegionSequence = code("SCT", "43799004")  # chest
    ds.ViewCodeSequence = code("SCT", "272479007")  # postero-anterior
    assert A.header_decision(ds).applies is True
    ds.ViewCodeSequence = code("SCT", "399067008")  # lateral
    assert A.header_decision(ds).applies is False
    ds.ViewCodeSequence = code("SCT", "399348003")  # antero-posterior
    ds.AnatomicRegionSequence = code("SCT", "72696002")  # knee
    assert A.header_decision(ds).applies is False


@pytest.mark.parametrize("changes", [{"ViewPosition": "LL"}, {"BodyPartExamined": "KNEE"},
                                     {"ImageLaterality": "R"}])
def test_images_the_step_does_not_apply_to_are_untouched_and_claim_nothing(model_path, changes):
    ds = _chest()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    before = ds.pixel_array.copy()
    out, record = _run(ds, model_path)
    assert record.status == "written"
    assert np.array_equal(out.pixel_array, before)
    assert "113102" not in _codes(out) and "RecognizableVisualFeatures" not in out
    assert out.ImageType[0] == "ORIGINAL"
    events = dict(record.events)
    assert json.loads(events["visual-features-not-applicable"])["decided_by"] == "header"


def test_an_undecided_header_is_settled_by_the_image_check_and_recorded(model_path, monkeypatch):
    calls = []

    def fake_check(view, model=None):
        calls.append(view.shape)
        return A.Decision(len(calls) == 1, "image", "scripted", {"fraction": 0.3})

    monkeypatch.setattr(L, "lung_field_check", fake_check)
    ds = _chest(part=None)  # CR, PA, no body part
    out, record = _run(ds, model_path)
    assert "113102" in _codes(out)
    done = json.loads(dict(record.events)["visual-features-cleaned"])
    assert done["decided_by"] == "image" and done["fraction"] == 0.3 and "Body Part Examined" in done["header"]
    ds = _chest(part=None)
    before = ds.pixel_array.copy()
    out, record = _run(ds, model_path)
    assert np.array_equal(out.pixel_array, before) and "113102" not in _codes(out)
    assert json.loads(dict(record.events)["visual-features-not-applicable"])["decided_by"] == "image"
    assert len(calls) == 2
    # a header that decides never costs the image check
    _run(_chest(), model_path)
    assert len(calls) == 2


def _real(name: str, strip: bool = True) -> Dataset:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} (pydicom-data) is not installed")
    ds = pydicom.dcmread(path)
    if strip:
        for keyword in ("BodyPartExamined", "ViewPosition"):
            if keyword in ds:
                delattr(ds, keyword)
    return ds


def test_the_image_check_on_real_radiographs_it_was_not_tuned_on():
    """pydicom-data's RG1 is a chest PA CR, RG3 a CR of an extremity; with the header stripped the image decides."""
    if not L.LUNG_MODEL.is_file():
        pytest.skip("no shipped lung model")
    chest = X._image_check(_real("RG1_UNCR.dcm"), {})
    assert chest.applies is True, chest.record()
    limb = X._image_check(_real("RG3_UNCR.dcm"), {})
    assert limb.applies is False, limb.record()
    flat = L.lung_field_check(np.full((256, 200), 0.5, np.float32))
    assert flat.applies is False
    wide = L.lung_field_check(np.zeros((100, 300), np.float32))
    assert wide.applies is False and "aspect" in wide.why


# --------------------------------------------------------------------------------------------- records

def test_recognizable_visual_features_is_no_exactly_when_113102_is_claimed(model_path):
    ds = _chest()
    ds.RecognizableVisualFeatures = "YES"
    out, _ = _run(ds, model_path)
    assert out.RecognizableVisualFeatures == "NO" and "113102" in _codes(out)
    assert out.ImageType[0] == "DERIVED" and "mu 0.05" in out.DerivationDescription
    lateral = _chest(view="LL")
    lateral.RecognizableVisualFeatures = "YES"
    out, _ = _run(lateral, model_path)
    assert out.RecognizableVisualFeatures == "YES" and "113102" not in _codes(out)


def _referencing(kind: str, image: Dataset) -> Dataset:
    """A GSPS, KOS or SR that references ``image`` (in the same study)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = {"gsps": "1.2.840.10008.5.1.4.1.1.11.1", "kos": "1.2.840.10008.5.1.4.1.1.88.59",
           "sr": "1.2.840.10008.5.1.4.1.1.88.22"}[kind]
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPClassUID, ds.SOPInstanceUID = sop, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = {"gsps": "PR", "kos": "KO", "sr": "SR"}[kind]
    ds.PatientName, ds.PatientID = image.PatientName, image.PatientID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = image.StudyInstanceUID, generate_uid()
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    if kind == "gsps":
        series.ReferencedImageSequence = Sequence([ref])
        ds.ReferencedSeriesSequence = Sequence([series])
    else:
        series.ReferencedSOPSequence = Sequence([ref])
        study = Dataset()
        study.StudyInstanceUID = image.StudyInstanceUID
        study.ReferencedSeriesSequence = Sequence([series])
        ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    return ds


def _referenced_uids(ds: Dataset) -> set[str]:
    return {str(e.value) for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"}


@pytest.mark.parametrize("workers", [1, 2])
def test_references_from_gsps_kos_and_sr_in_the_run_reach_the_warped_image(model_path, tmp_path, workers):
    src = tmp_path / "in"
    src.mkdir()
    image = _chest()
    image.save_as(src / "cr.dcm", enforce_file_format=True)
    for kind in ("gsps", "kos", "sr"):
        _referencing(kind, image).save_as(src / f"{kind}.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    result = runner.invoke(app, ["deidentify", str(src), str(out), "--key-file", str(_key_file(tmp_path)),
                                 "--clean-visual-features", "cxr", "--cxr-model", str(model_path),
                                 "--workers", str(workers)])
    assert result.exit_code == 0, result.output
    released = [pydicom.dcmread(p) for p in out.rglob("*.dcm")]
    warped = [d for d in released if "113102" in _codes(d)]
    assert len(warped) == 1 and len(released) == 4
    uid = str(warped[0].SOPInstanceUID)
    assert uid != image.SOPInstanceUID
    for ds in released:
        if ds is not warped[0]:
            assert _referenced_uids(ds) == {uid}, ds.Modality
    # a referring object de-identified in a later run with the same key resolves too
    later_in, later_out = tmp_path / "later", tmp_path / "later-out"
    later_in.mkdir()
    _referencing("gsps", image).save_as(later_in / "gsps.dcm", enforce_file_format=True)
    result = runner.invoke(app, ["deidentify", str(later_in), str(later_out), "--key-file",
                                 str(_key_file(tmp_path))])
    assert result.exit_code == 0, result.output
    (gsps,) = [pydicom.dcmread(p) for p in later_out.rglob("*.dcm")]
    assert _referenced_uids(gsps) == {uid}


def _key_file(tmp_path):
    path = tmp_path / "run.key"
    if not path.exists():
        from medveil.pseudonym import generate_key_file

        generate_key_file(path)
    return path


def test_with_retained_uids_the_warped_image_gets_a_derived_uid_and_says_so(model_path):
    ds = _chest()
    original = ds.SOPInstanceUID
    out, record = _run(ds, model_path, options={Option.RETAIN_UIDS})
    assert record.status == "written", record.reason
    assert out.SOPInstanceUID != original and out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert record.uid_pairs[original] == out.SOPInstanceUID
    assert "visual-features-new-uid" in dict(record.events)
    again, _ = _run(_chest_like(ds, original), model_path, options={Option.RETAIN_UIDS})
    assert again.SOPInstanceUID == out.SOPInstanceUID  # deterministic


def _chest_like(ds: Dataset, uid: str) -> Dataset:
    new = _chest()
    new.SOPInstanceUID = new.file_meta.MediaStorageSOPInstanceUID = uid
    new.StudyInstanceUID, new.SeriesInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID
    return new


def test_events_and_reasons_name_no_value(model_path):
    ds = _garbled(_chest(part=None))
    _, record = _run(ds, model_path)
    assert "Doe" not in record.reason and "PID-123" not in record.reason
    _, record = _run(_chest(), model_path)
    text = json.dumps(record.events)
    assert "Doe" not in text and "PID-123" not in text


# ------------------------------------------------------------------------------------ medveil cxr anonymize

def test_cxr_anonymize_accepts_dicom_like_deidentify(model_path, tmp_path):
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds = _chest("MONOCHROME1")
    ds.save_as(src, enforce_file_format=True)
    result = runner.invoke(app, ["cxr", "anonymize", str(src), str(dst), "--model", str(model_path),
                                 "--throwaway-key"])
    assert result.exit_code == 0, result.output
    out = pydicom.dcmread(dst)
    assert out.PatientID != "PID-123" and "Doe" not in str(out.PatientName)
    assert "113102" in _codes(out) and "113100" in _codes(out) and out.RecognizableVisualFeatures == "NO"
    assert (out.pixel_array != ds.pixel_array).any()
    # a file without a .dcm suffix is still recognised by its content
    bare = tmp_path / "IM0001"
    bare.write_bytes(src.read_bytes())
    result = runner.invoke(app, ["cxr", "anonymize", str(bare), str(tmp_path / "o2"), "--model", str(model_path),
                                 "--throwaway-key"])
    assert result.exit_code == 0, result.output
    # no key: the same message as deidentify, nothing written
    result = runner.invoke(app, ["cxr", "anonymize", str(src), str(tmp_path / "nokey.dcm"), "--model",
                                 str(model_path)], env={"MEDVEIL_KEY_FILE": ""})
    assert result.exit_code != 0 and "no key" in result.output and not (tmp_path / "nokey.dcm").exists()


@pytest.mark.parametrize("changes, message", [({"ViewPosition": "LL"}, "does not apply"),
                                              ({"PixelData": b"\0" * 10}, "quarantined")])
def test_cxr_anonymize_writes_nothing_for_dicom_it_cannot_anonymise(model_path, tmp_path, changes, message):
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    ds = _chest()
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(src, enforce_file_format=True)
    result = runner.invoke(app, ["cxr", "anonymize", str(src), str(dst), "--model", str(model_path),
                                 "--throwaway-key"])
    assert result.exit_code == 1 and message in result.output and not dst.exists()
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------ intensity

def test_linear_window_follows_ps33():
    # PS3.3 C.11.2.1.2.1: c = 2048, w = 4096 maps 0 -> 0 and 4095 -> 1, the centre to one half
    v = I.window_value(np.array([0.0, 2047.5, 4095.0, -10, 5000]), 2048, 4096)
    assert v[0] == pytest.approx(0, abs=1e-3) and v[1] == pytest.approx(0.5, abs=1e-3)
    assert v[2] == pytest.approx(1, abs=1e-3) and v[3] == 0 and v[4] == 1
    assert I.window_value(np.array([99.0, 100.0]), 100, 1).tolist() == [0.0, 1.0]
    s = I.window_value(np.array([100.0]), 100, 50, "SIGMOID")
    assert s[0] == pytest.approx(0.5)
    e = I.window_value(np.array([75.0, 125.0]), 100, 50, "LINEAR_EXACT")
    assert e.tolist() == [0.0, 1.0]


def test_a_12_bit_png_is_not_black_and_matches_the_same_pixels_as_dicom():
    img = D.make_phantoms(1, 1, 64, seed=9).images[0, 0]
    twelve = np.round(img * 4095).astype(np.uint16)
    png_view = I.to_view(twelve, I.display_window(twelve, bits=16))
    assert png_view.mean() > 0.25  # /65535 would give about 0.03
    assert np.corrcoef(png_view.ravel(), img.ravel())[0, 1] > 0.99
    ds = _chest()
    ds.PixelData = twelve[:64, :56].tobytes()
    dicom_view = I.to_view(twelve[:64, :56], I.display_window(twelve[:64, :56], bits=12, ds=ds))
    png_same = I.to_view(twelve[:64, :56], I.display_window(twelve[:64, :56], bits=16))
    assert np.allclose(dicom_view, png_same)  # no window in the header: the same rule, the same view
    eight = np.round(img * 255).astype(np.uint8)
    assert np.allclose(I.to_view(eight, I.display_window(eight, bits=8)), eight / 255.0)


def test_dicom_view_applies_window_voi_lut_rescale_and_monochrome1():
    ds = _chest("MONOCHROME1")
    values = ds.pixel_array
    ds.WindowCenter, ds.WindowWidth = 1000, 500
    w = I.display_window(values, bits=12, ds=ds)
    view = I.to_view(values, w)
    expected = 1 - I.window_value(values, 1000, 500)
    assert w.kind == "window" and np.allclose(view, expected, atol=1e-6)
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    view = I.to_view(values, I.display_window(values, bits=12, ds=ds))
    assert np.allclose(view, 1 - I.window_value(values * 2.0 - 100, 1000, 500), atol=1e-6)
    del ds.RescaleSlope, ds.RescaleIntercept
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 8]
    item.LUTData = (np.arange(4096) // 16).tolist()
    ds.VOILUTSequence = Sequence([item])
    w = I.display_window(values, bits=12, ds=ds)
    assert w.kind == "voi-lut"  # the LUT wins over the window (PS3.3 C.11.2)
    assert np.allclose(I.to_view(values, w), 1 - (values // 16) / 255.0, atol=1e-6)


def test_png_and_dicom_of_the_same_image_get_the_same_warp(model_path, tmp_path):
    """One normalisation: the PNG command and the DICOM step compute the same field from the same pixels."""
    ds = _chest("MONOCHROME2")
    ds.WindowCenter, ds.WindowWidth = None, None
    del ds.WindowCenter, ds.WindowWidth
    values = ds.pixel_array.copy()
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(values).save(src)
    result = runner.invoke(app, ["cxr", "anonymize", str(src), str(dst), "--model", str(model_path)])
    assert result.exit_code == 0, result.output
    png_out = np.asarray(Image.open(dst))
    X.clean_visual_features(ds, X.load_model(model_path)[0])
    assert png_out.dtype == np.uint16 and np.array_equal(png_out, ds.pixel_array)
