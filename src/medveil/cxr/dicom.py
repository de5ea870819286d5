"""The "Clean Recognizable Visual Features" step for chest CR/DX images: apply a trained anonymiser to the pixel
data of a DICOM dataset.

What changes, and why:

- Pixel Data: the warped image, in the stored value range and dtype of the input (the deformation is geometric,
  so MONOCHROME1/2 and the value range do not matter to it; the network sees a MONOCHROME2 [0, 1] view).
- SOP Instance UID (and the file meta's Media Storage SOP Instance UID): a new UID, as for any derived image; it
  is derived deterministically from the incoming (already pseudonymised) UID, so re-running gives the same output.
- Image Type value 1 becomes DERIVED and Derivation Description says what was done.  No Source Image Sequence is
  added: it would point from the released image back to an unreleased original.
- De-identification Method Code Sequence gains (113102, DCM, "Clean Recognizable Visual Features Option") from
  PS3.16 CID 7050 (the project's code table in ``medveil.policy.options``), and De-identification Method a line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from medveil.errors import MedveilError
from medveil.policy.options import OPTION_CODES, Option

CXR_MODALITIES = {"CR", "DX"}
CR_DX_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
}
CODE = OPTION_CODES[Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES]
DEFAULT_MODEL = Path(__file__).with_name("data") / "anonymiser_cxr128.pt"


class NotApplicable(MedveilError):
    """The dataset is not a single-frame greyscale chest CR/DX image this step can process."""


def load_model(path: Path | str | None = None, device: str = "cpu"):
    """(generator, training size) from a checkpoint of ``medveil cxr train`` (default: the shipped one)."""
    import torch

    from medveil.cxr.models import build_generator

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        raise MedveilError(f"no anonymiser checkpoint at {path}")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    gen = build_generator(ckpt["config"])
    gen.load_state_dict(ckpt["state"])
    gen.eval()
    gen.train_size = int(ckpt.get("size", 128))
    return gen, gen.train_size


def is_chest_radiograph(ds: Dataset) -> bool:
    modality = str(ds.get("Modality", "")).upper()
    sop = str(ds.get("SOPClassUID", ""))
    if modality not in CXR_MODALITIES and sop not in CR_DX_SOP_CLASSES:
        return False
    part = str(ds.get("BodyPartExamined", "") or "").upper()
    return part in ("", "CHEST", "THORAX", "LUNG")


def clean_visual_features(ds: Dataset, model) -> None:
    """Anonymise the pixels of a chest CR/DX dataset in place (see the module docstring).

    ``model``: a generator from ``load_model`` (or a checkpoint path, or ``None`` for the shipped model).
    Raises ``NotApplicable`` (and leaves ``ds`` unchanged) for anything else than a single-frame, one-sample
    chest CR/DX image with native or decodable pixel data.
    """
    from medveil.cxr.apply import anonymise_image

    if not is_chest_radiograph(ds):
        raise NotApplicable("not a chest CR/DX image")
    if "PixelData" not in ds:
        raise NotApplicable("no Pixel Data")
    if int(ds.get("SamplesPerPixel", 1)) != 1 or int(ds.get("NumberOfFrames", 1) or 1) != 1:
        raise NotApplicable("only single-frame greyscale images")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and not syntax.is_little_endian:
        raise NotApplicable("big-endian pixel data")
    if isinstance(model, (str, Path)) or model is None:
        model, _ = load_model(model)
    size = getattr(model, "train_size", 128)

    stored = ds.pixel_array
    if stored.ndim != 2:
        raise NotApplicable("only single-frame greyscale images")
    lo, hi = float(stored.min()), float(stored.max())
    span = hi - lo if hi > lo else 1.0
    view = (stored.astype(np.float32) - lo) / span
    inverted = str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    if inverted:
        view = 1 - view
    out = anonymise_image(model, view, size)
    if inverted:
        out = 1 - out
    new = np.clip(np.rint(out * span + lo), lo, hi).astype(stored.dtype)

    if syntax is not None and syntax.is_compressed:
        from pydicom.uid import ExplicitVRLittleEndian

        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = new.tobytes()
        ds["PixelData"].VR = "OB" if new.dtype.itemsize == 1 else "OW"
        ds["PixelData"].is_undefined_length = False
    else:
        data = new.tobytes()
        ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    _record(ds, model)


def _record(ds: Dataset, model) -> None:
    old = str(ds.SOPInstanceUID)
    new_uid = generate_uid(entropy_srcs=[old, "medveil cxr clean recognizable visual features"])
    ds.SOPInstanceUID = new_uid
    if hasattr(ds, "file_meta") and "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = new_uid
    image_type = list(ds.get("ImageType", []) or [])
    ds.ImageType = ["DERIVED"] + (image_type[1:] if image_type else ["SECONDARY"])
    cfg = getattr(model, "config", {})
    what = ("smooth deformation (PriCheXy-Net), mu %g" % cfg["mu"]) if cfg.get("kind") == "warp" else "generator"
    ds.DerivationDescription = f"medveil cxr anonymiser: {what}"[:1024]
    methods = ds.get("DeidentificationMethod")
    lines = [] if methods is None else ([methods] if isinstance(methods, str) else list(methods))
    if "medveil cxr anonymiser" not in lines:
        ds.DeidentificationMethod = lines + ["medveil cxr anonymiser"]
    seq = list(ds.get("DeidentificationMethodCodeSequence", []) or [])
    if not any(str(item.get("CodeValue", "")) == CODE.value for item in seq):
        item = Dataset()
        item.add_new(0x00080100, "SH", CODE.value)
        item.add_new(0x00080102, "SH", CODE.scheme)
        item.add_new(0x00080104, "LO", CODE.meaning)
        seq.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(seq)
    ds.PatientIdentityRemoved = "YES"


_MODELS: dict[str | None, object] = {}


def _model_for(path: str | None):
    """One loaded model per checkpoint per worker process (loading costs more than applying)."""
    if path not in _MODELS:
        _MODELS[path] = load_model(path)[0]
    return _MODELS[path]


def pipeline_step(ds: Dataset, policy, uid_pairs: dict[str, str], events: list) -> dict[int, bytes] | None:
    """The ``deidentify --clean-visual-features cxr`` step, run on a dataset the engine has just de-identified.

    Returns the new encoded Pixel Data value (tag -> bytes) that the writer must then find in the output, or
    ``None`` when the image was left alone (not a chest CR/DX image: recorded as an event, not an error).  The UID
    map is updated so that the original SOP Instance UID maps to the derived image's UID.  Any failure on a chest
    radiograph propagates, and the caller quarantines the file: it must not be released uncleaned.
    """
    if not is_chest_radiograph(ds):
        events.append(("visual-features-not-applicable", "not a chest CR/DX image"))
        return None
    before = str(ds.SOPInstanceUID)
    try:
        clean_visual_features(ds, _model_for(getattr(policy, "visual_features_model", None)))
    except NotApplicable as exc:
        events.append(("visual-features-not-applicable", str(exc)))
        return None
    after = str(ds.SOPInstanceUID)
    for original, new in list(uid_pairs.items()):
        if new == before:
            uid_pairs[original] = after
    events.append(("visual-features-cleaned", "cxr"))
    return {0x7FE00010: bytes(ds.PixelData)}
