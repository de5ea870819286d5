"""The fast file encoder writes exactly the bytes pydicom's writer would (preamble aside)."""

from __future__ import annotations

import copy
import dataclasses
import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from tests.corpora import pydicom_files

import medveil.pipeline as pipeline
from medveil.dicomio import encode
from medveil.policy import Option, get_profile
from medveil.pseudonym import throwaway_key
from medveil.quiet import silenced
from medveil.synth.corpus import installed_corpora, iter_files


def _pydicom_bytes(ds: Dataset) -> bytes:
    ds = copy.deepcopy(ds)
    ds.preamble = None
    encode.encapsulated_as_ob(ds)  # the one intended difference: pydicom keeps an encapsulated OW
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _part10_datasets():
    for corpus, path, relpath in iter_files(installed_corpora()):
        with silenced():
            try:
                ds = pydicom.dcmread(path, force=True)
            except Exception:
                continue
        if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
            yield f"{corpus}:{relpath}", ds


def _fast_or_none(ds: Dataset) -> bytes | None:
    try:
        return encode._fast(copy.deepcopy(ds))
    except encode._Unsupported:
        return None


@pytest.mark.slow  # whole corpora
def test_every_corpus_file_is_encoded_as_pydicom_encodes_it():
    fast = compared = 0
    for label, ds in _part10_datasets():
        with silenced():
            try:
                expected = _pydicom_bytes(ds)
            except Exception:
                continue  # pydicom cannot write it either (tested below for the fallback)
            assert encode.encode_file(copy.deepcopy(ds)) == expected, label
            fast += _fast_or_none(ds) is not None
        compared += 1
    assert compared >= 200
    assert fast >= 0.8 * compared  # the fast path is the common path, not the exception


@pytest.mark.slow  # whole corpora
@pytest.mark.parametrize("profile", ["basic", "tcia"])
def test_deidentified_datasets_are_encoded_as_pydicom_encodes_them(monkeypatch, profile):
    """Converted, emptied, replaced and added elements and sequences, on real files."""
    policy = get_profile(profile)
    policy = dataclasses.replace(policy, burned_in="pass", options=policy.options - {Option.CLEAN_PIXEL_DATA})
    results = []

    def both(ds):
        expected = _pydicom_bytes(ds)
        fast = _fast_or_none(ds)
        results.append(fast is not None)
        if fast is not None:
            assert fast == expected
        return expected

    monkeypatch.setattr(pipeline, "encode_file", both)
    key = throwaway_key()
    for _, path, _ in iter_files(installed_corpora()):
        pipeline.deidentify_bytes(path.read_bytes(), policy, key)
    assert len(results) >= 100 and sum(results) >= 0.8 * len(results)


def test_preamble_is_zeros_whatever_the_input_held():
    with silenced():
        ds = pydicom.dcmread(pydicom_files() / "CT_small.dcm")
    ds.preamble = b"DOE^JOHN MRN 12345678".ljust(128, b"\x01")
    out = encode.encode_file(copy.deepcopy(ds))
    assert out[:132] == bytes(128) + b"DICM"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian  # pydicom's path
    out = encode.encode_file(ds)
    assert out[:132] == bytes(128) + b"DICM"
    with silenced():
        assert pydicom.dcmread(io.BytesIO(out)).PatientName == "CompressedSamples^CT1"


def test_a_released_file_has_no_input_preamble():
    with silenced():
        ds = pydicom.dcmread(pydicom_files() / "CT_small.dcm")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = bytearray(buffer.getvalue())
    data[:24] = b"II*\x00 DOE^JOHN 1234567 .".ljust(24)  # a dual-format file's TIFF header, with a name
    out, record = pipeline.deidentify_bytes(bytes(data), get_profile("basic"), throwaway_key())
    assert isinstance(out, bytes), record.reason
    assert out[:128] == bytes(128)


def test_fallback_files_match_pydicom_too():
    """Deflate, big endian and ambiguous VRs go to pydicom: the same bytes, by construction."""
    names = ["image_dfl.dcm", "MR_small_bigendian.dcm", "OBXXXX1A.dcm"]
    for name in names:
        path = pydicom_files() / name
        if not path.exists():
            continue
        with silenced():
            ds = pydicom.dcmread(path)
            assert encode.encode_file(copy.deepcopy(ds)) == _pydicom_bytes(ds), name


def test_undefined_length_items_and_sequences_keep_their_form():
    with silenced():
        ds = pydicom.dcmread(pydicom_files() / "rtplan.dcm")
    for elem in ds.iterall():
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
    expected = _pydicom_bytes(ds)
    assert b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" in expected  # item delimiters
    assert b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" in expected  # sequence delimiters
    assert _fast_or_none(ds) == expected


def test_non_ascii_text_is_left_to_pydicom_and_encoded_by_the_character_set():
    with silenced():
        ds = pydicom.dcmread(pydicom_files() / "CT_small.dcm")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDescription = "Thorax – Übersicht"
    ds.SeriesDescription = ["a", "Ü"]
    expected = _pydicom_bytes(ds)
    assert "Übersicht".encode() in expected
    assert encode.encode_file(copy.deepcopy(ds)) == expected



def _read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


@pytest.mark.parametrize("name", ["SC_rgb_rle_16bit.dcm", "MR_small_jp2klossless.dcm", "rtdose_rle.dcm"])
def test_encapsulated_pixel_data_read_as_ow_is_written_as_ob(name):
    """PS3.5 A.4: encapsulated Pixel Data is OB; the fragments' bytes stay as they came."""
    source = pydicom.dcmread(get_testdata_file(name))
    assert source["PixelData"].VR == "OW"  # how these files store it
    written = _read(encode.encode_file(copy.deepcopy(source)))
    assert written["PixelData"].VR == "OB"
    assert written.PixelData == source.PixelData
    assert written.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID


def test_encapsulated_ow_converted_element_is_written_as_ob():
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle_16bit.dcm"))
    value = ds.PixelData  # converted: a DataElement, not a raw one
    written = _read(encode.encode_file(ds))
    assert written["PixelData"].VR == "OB" and written.PixelData == value


def test_native_ow_pixel_data_stays_ow():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    source_vr = ds["PixelData"].VR
    written = _read(encode.encode_file(copy.deepcopy(ds)))
    assert written["PixelData"].VR == source_vr == "OW"
    assert written.PixelData == ds.PixelData


def test_released_file_has_encapsulated_pixel_data_as_ob():
    """Through the runner: the header path keeps the pixels, and writes them as OB."""
    data = Path(get_testdata_file("MR_small_jp2klossless.dcm")).read_bytes()
    policy = get_profile("basic")
    out, record = pipeline.deidentify_bytes(data, policy, throwaway_key())
    assert record.status == "written"
    released, source = _read(out), _read(data)
    assert released["PixelData"].VR == "OB"
    assert released.PixelData == source.PixelData
