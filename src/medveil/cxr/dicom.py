"""The "Clean Recognizable Visual Features" step for frontal chest CR/DX images: apply a trained anonymiser to the
pixel data of a DICOM dataset, or refuse to release it.

Which images: ``applicable`` decides (SOP class, Body Part Examined, View Position, Image Laterality; an image
check where the header cannot tell).  Other images are left exactly as they are and nothing is claimed for them.

Fail closed: once an image is a frontal chest radiograph (or might be one and cannot be checked), the only ways out
are "warped" or "quarantined".  Every reason it cannot be warped (no or undecodable Pixel Data, colour, an
unsupported bit depth, no torch, a broken checkpoint) raises :class:`CannotWarp`, a ``QuarantineError``, so the
runner quarantines the file with that reason; it is never released with its original pixels.

What changes, and why:

- Pixel Data: every frame warped by its own field (computed from that frame's display view, ``intensity``), in the
  stored values, dtype and byte order of the input; the deformation is geometric, so MONOCHROME1/2, the window and
  the value range do not matter to it.  Big-endian data stay big-endian; encapsulated (compressed) data are decoded
  and stored uncompressed in Explicit VR Little Endian (never recompressed lossily).
- SOP Instance UID: in a ``deidentify`` run that replaces UIDs (the default), the warped image keeps the keyed
  pseudonym of its original UID.  That pseudonym is already a new UID that never named the original pixels, and
  every object of the run (and of later runs with the same key) that references the image (GSPS, SR, KOS) maps its
  reference through the same keyed function, so references stay resolvable without any state shared between files.
  When UIDs are retained (Retain UIDs option) or the step is used on its own, a new UID is derived
  deterministically from the old one (a warped image must not carry the UID of the unwarped original); references
  in other objects then still name the original, and an audit event says so (``docs/cxr.md``).
- Image Type value 1 becomes DERIVED and Derivation Description says what was done.  No Source Image Sequence is
  added: it would point from the released image back to an unreleased original.
- Recognizable Visual Features (0028,0302) becomes NO and the De-identification Method Code Sequence gains
  (113102, DCM, "Clean Recognizable Visual Features Option") from PS3.16 CID 7050 (PS3.15 Annex E), only for images
  this step warped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medveil.cxr.applicable import CR_DX_SOP_CLASSES, Decision, decide, header_decision
from medveil.errors import MedveilError, QuarantineError
from medveil.policy.options import OPTION_CODES, Option

CODE = OPTION_CODES[Option.CLEAN_RECOGNIZABLE_VISUAL_FEATURES]
DEFAULT_MODEL = Path(__file__).with_name("data") / "anonymiser_cxr128.pt"
UID_SALT = "medveil cxr clean recognizable visual features"
__all__ = ["CR_DX_SOP_CLASSES", "CannotWarp", "NotApplicable", "clean_visual_features", "pipeline_step"]


class NotApplicable(MedveilError):
    """The dataset is not a frontal chest CR/DX image: the step leaves it alone."""


class CannotWarp(QuarantineError):
    """A frontal chest radiograph (or one that cannot be ruled out) that this step cannot warp: quarantine it."""


def load_model(path: Path | str | None = None, device: str = "cpu"):
    """(generator, training size) from a checkpoint of ``medveil cxr train`` (default: the shipped one)."""
    import torch

    from medveil.cxr.models import build_generator

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        raise MedveilError("no anonymiser checkpoint at the given path")
    ckpt = torch.load(path, map_location=device, weights_only=True)
    gen = build_generator(ckpt["config"])
    gen.load_state_dict(ckpt["state"])
    gen.eval()
    gen.train_size = int(ckpt.get("size", 128))
    return gen, gen.train_size


def is_chest_radiograph(ds: Dataset) -> bool:
    """True when the header alone says "frontal chest CR/DX" (the image check is not consulted)."""
    return header_decision(ds).applies is True


# ------------------------------------------------------------------------------------------------- pixels

@dataclass
class Frames:
    """The stored values of a dataset's frames, decoded once, and how to put new ones back."""

    values: np.ndarray  # (F, H, W), the dtype pydicom decodes to
    bits_stored: int

    @property
    def first(self) -> np.ndarray:
        return self.values[0]


def read_frames(ds: Dataset) -> Frames:
    """Decode the greyscale frames this step can warp, or raise ``CannotWarp`` saying why not."""
    if "PixelData" not in ds:
        raise CannotWarp("chest radiograph without Pixel Data: nothing to anonymise")
    samples = _int(ds.get("SamplesPerPixel"), 1)
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise CannotWarp("chest radiograph is not greyscale (MONOCHROME1/2); the anonymiser handles greyscale only")
    allocated = _int(ds.get("BitsAllocated"), 0)
    if allocated not in (8, 16, 32):
        raise CannotWarp("chest radiograph with an unsupported Bits Allocated")
    try:
        values = ds.pixel_array
    except Exception as exc:
        raise CannotWarp(f"chest radiograph whose Pixel Data cannot be decoded ({type(exc).__name__})") from None
    frames = _int(ds.get("NumberOfFrames"), 1) or 1
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3 or values.shape[0] != frames or min(values.shape[1:]) < 8:
        raise CannotWarp("chest radiograph whose decoded frames do not match the header")
    return Frames(values, _int(ds.get("BitsStored"), allocated) or allocated)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _write_frames(ds: Dataset, new: np.ndarray) -> bytes:
    """Put the warped frames back in the input's layout; returns the encoded Pixel Data value."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    frames = new if _int(ds.get("NumberOfFrames"), 1) > 1 else new[0]
    if syntax is not None and syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        data = frames.astype(frames.dtype.newbyteorder("<"), copy=False).tobytes()
        ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
        ds["PixelData"].VR = "OB" if frames.dtype.itemsize == 1 else "OW"
        ds["PixelData"].is_undefined_length = False
    else:
        order: Literal["<", ">"] = ">" if syntax is not None and not syntax.is_little_endian else "<"
        data = frames.astype(frames.dtype.newbyteorder(order), copy=False).tobytes()
        ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    return bytes(ds.PixelData)


# --------------------------------------------------------------------------------------------- the step

def clean_visual_features(ds: Dataset, model=None, *, new_uid: bool = True, frames: Frames | None = None,
                          decision: Decision | None = None) -> dict:
    """Anonymise the pixels of a frontal chest CR/DX dataset in place (see the module docstring).

    ``model``: a generator from ``load_model`` (or a checkpoint path, or ``None`` for the shipped model).
    ``new_uid``: derive a new SOP Instance UID (see the module docstring for when a run does not).
    Raises ``NotApplicable`` (``ds`` unchanged) when the header says it is not a frontal chest CR/DX image (an
    undecided header is taken as the caller's decision), and ``CannotWarp`` when it is one and cannot be warped.
    Returns what was done, for the audit record (fixed texts and counts only).
    """
    decision = decision or header_decision(ds)
    if decision.applies is False:
        raise NotApplicable(decision.why)
    frames = frames or read_frames(ds)
    try:
        from medveil.cxr.apply import anonymise_values
        from medveil.cxr.intensity import display_window

        if isinstance(model, str | Path) or model is None:
            model, _ = load_model(model)
        size = int(getattr(model, "train_size", 128))
        out = np.empty_like(frames.values)
        kinds = set()
        info = np.iinfo(out.dtype) if out.dtype.kind in "iu" else None
        for i, frame in enumerate(frames.values):
            window = display_window(frame, bits=frames.bits_stored, ds=ds)
            kinds.add(window.kind)
            warped = anonymise_values(model, frame, window, size)
            if info is not None:
                warped = np.clip(np.rint(warped), info.min, info.max)
            out[i] = warped.astype(out.dtype)
    except MedveilError:
        raise
    except ImportError:
        raise CannotWarp("chest radiograph, but torch is not installed (pip install 'medveil[cxr]')") from None
    except Exception as exc:
        raise CannotWarp(f"chest radiograph could not be warped ({type(exc).__name__})") from None
    _write_frames(ds, out)
    old_uid = str(ds.SOPInstanceUID)
    _record(ds, model, new_uid)
    return {"frames": int(out.shape[0]), "window": sorted(kinds), "new_uid": str(ds.SOPInstanceUID) != old_uid}


def _record(ds: Dataset, model, new_uid: bool) -> None:
    if new_uid:
        uid = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), UID_SALT])
        ds.SOPInstanceUID = uid
        if hasattr(ds, "file_meta") and "MediaStorageSOPInstanceUID" in ds.file_meta:
            ds.file_meta.MediaStorageSOPInstanceUID = uid
    image_type = list(ds.get("ImageType", []) or [])
    ds.ImageType = ["DERIVED"] + (image_type[1:] if image_type else ["SECONDARY"])
    cfg = getattr(model, "config", {})
    what = f"smooth deformation (PriCheXy-Net), mu {cfg['mu']:g}" if cfg.get("kind") == "warp" else "generator"
    ds.DerivationDescription = f"medveil cxr anonymiser: {what}"[:1024]
    ds.RecognizableVisualFeatures = "NO"
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


_MODELS: dict[str | None, object] = {}


def _model_for(path: str | None):
    """One loaded model per checkpoint per worker process (loading costs more than applying)."""
    if path not in _MODELS:
        try:
            _MODELS[path] = load_model(path)[0]
        except ImportError:
            raise CannotWarp("chest radiograph, but torch is not installed (pip install 'medveil[cxr]')") from None
        except MedveilError as exc:
            raise CannotWarp(f"chest radiograph, but the anonymiser cannot be loaded: {exc}") from None
        except Exception as exc:
            raise CannotWarp(f"chest radiograph, but the anonymiser cannot be loaded ({type(exc).__name__})") from None
        _one_thread_in_workers()
    return _MODELS[path]


def _one_thread_in_workers() -> None:
    """In a worker process, torch gets one thread.

    Why: the runner already runs one worker per core, so more torch threads only oversubscribe them; and a worker
    forked from a process that had used torch's OpenMP thread pool (a notebook, a test session) hangs in its first
    parallel region, while a single thread never enters one.
    """
    import multiprocessing
    import sys

    # only where torch is loaded already: a header-decided file in a run without torch stays torch-free
    if multiprocessing.parent_process() is not None and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)


def _image_check(ds: Dataset, cache: dict) -> Decision:
    """The lung-field check on the first frame (decoded once; the warp reuses it)."""
    try:
        import torch  # noqa: F401  (the check needs it; loaded here so that the thread setting below sees it)

        from medveil.cxr.intensity import display_window, to_view
        from medveil.cxr.lungs import lung_field_check
    except ImportError:
        raise CannotWarp("CR/DX image that may be a chest radiograph, but torch is not installed for the image "
                         "check (pip install 'medveil[cxr]')") from None
    _one_thread_in_workers()
    try:
        frames = cache["frames"] = read_frames(ds)
    except CannotWarp as exc:
        raise CannotWarp(f"CR/DX image that may be a chest radiograph: {exc}") from None
    view = to_view(frames.first, display_window(frames.first, bits=frames.bits_stored, ds=ds))
    try:
        return lung_field_check(view)
    except MedveilError as exc:
        raise CannotWarp(f"CR/DX image that may be a chest radiograph, but the image check failed: {exc}") from None


def pipeline_step(ds: Dataset, policy, uid_pairs: dict[str, str], events: list) -> dict[int, bytes] | None:
    """The ``deidentify --clean-visual-features cxr`` step, run on a dataset the engine has just de-identified.

    Returns the new encoded Pixel Data value (tag -> bytes) that the writer must then find in the output, or
    ``None`` when the image was left alone (recorded as an event with the decision, not an error).  Raises
    ``CannotWarp`` (the caller quarantines the file) for a frontal chest radiograph that cannot be warped.
    """
    _one_thread_in_workers()
    cache: dict = {}
    decision = decide(ds, image_check=lambda: _image_check(ds, cache))
    if not decision.applies:
        events.append(("visual-features-not-applicable", json.dumps(decision.record(), sort_keys=True)))
        return None
    retained = bool(getattr(policy, "retains_uids", False))
    before = str(ds.SOPInstanceUID)
    done = clean_visual_features(ds, _model_for(getattr(policy, "visual_features_model", None)), new_uid=retained,
                                 frames=cache.get("frames"), decision=decision)
    after = str(ds.SOPInstanceUID)
    if after != before:
        originals = [original for original, new in uid_pairs.items() if new == before]
        for original in originals or [before]:
            uid_pairs[original] = after
        events.append(("visual-features-new-uid", "Retain UIDs: the warped image has a derived SOP Instance UID; "
                                                  "references to it in other objects still name the original"))
    events.append(("visual-features-cleaned", json.dumps({**decision.record(), **done}, sort_keys=True)))
    return {0x7FE00010: bytes(ds.PixelData)}
