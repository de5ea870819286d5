"""The engine-agnostic core: ``deidentify_bytes`` and the in-memory writer it uses.

The core is what every engine calls, so it is tested on its own: bytes in,
bytes or a reason out, no file system; the writer that keeps Pixel Data by
reference must produce exactly what pydicom writes to a BytesIO (sequence
item lengths are filled in by seeking back); and a large image is cleaned
with a bounded number of copies of it in memory.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pydicom
import pydicom.data
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import medveil
from medveil.dicomio.encode import Chunks
from medveil.pipeline import deidentify_bytes
from medveil.pseudonym import Key
from medveil.quiet import silenced

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
KEY = Key(b"c" * 32)
BASIC = medveil.get_profile("basic")


def _read(data: bytes):
    with silenced():
        return pydicom.dcmread(io.BytesIO(data), force=True)


@pytest.mark.parametrize("name", ["rtplan.dcm", "test-SR.dcm", "CT_small.dcm", "MR_small_implicit.dcm"])
def test_chunked_writer_writes_what_bytesio_gets(name):
    with silenced():
        ds = pydicom.dcmread(TEST_FILES / name)
        for _elem in ds.iterall():  # converted elements and sequences: lengths are patched by seeking
            pass
        expected = io.BytesIO()
        ds.save_as(expected)
        chunks = Chunks()
        ds.save_as(chunks)
    assert chunks.getvalue() == expected.getvalue()


def test_chunked_writer_overwrites_across_parts_and_refuses_to_grow_after_a_seek():
    chunks = Chunks()
    for part in (b"abcd", b"efgh", bytearray(b"ij")):
        chunks.write(part)
    chunks.seek(2)
    chunks.write(b"XYZW")
    chunks.seek(0, 2)
    chunks.write(b"k")
    assert chunks.getvalue() == b"abXYZWghijk"
    chunks.seek(9)
    with pytest.raises(OSError):
        chunks.write(b"too long")


def test_bytes_in_bytes_out_and_reasons_instead_of_exceptions():
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    out, record = deidentify_bytes(data, BASIC, KEY)
    assert isinstance(out, bytes) and record.status == "written"
    assert _read(out).PatientID != _read(data).PatientID
    assert record.relpath.endswith(".dcm") and record.uid_pairs
    again, _ = deidentify_bytes(data, BASIC, KEY)
    assert again == out  # deterministic: what makes engines interchangeable
    reason, record = deidentify_bytes(b"not dicom at all", BASIC, KEY)
    assert isinstance(reason, str) and record.status == "quarantined" and record.reason == reason
    truncated = (TEST_FILES / "rtplan_truncated.dcm").read_bytes()
    reason, record = deidentify_bytes(truncated, BASIC, KEY)
    assert record.status == "quarantined" and "truncated" in reason


def test_a_large_image_is_cleaned_with_bounded_copies(tmp_path):
    """Beyond the input itself, one copy of a 20 MB image is alive at a time: the output.

    pydicom's copy of the pixel bytes is swapped for a view into the input, and
    the encoder joins the output once from views (no intermediate buffers).
    """
    with silenced():
        ds = pydicom.dcmread(TEST_FILES / "MR_small.dcm")
    frames = 20_000_000 // len(ds.PixelData)
    ds.NumberOfFrames = frames
    ds.PixelData = ds.PixelData * frames
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    del ds, buffer
    tracemalloc.start()
    try:
        out, record = deidentify_bytes(data, BASIC, KEY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.status == "written", record.reason
    assert out.endswith(_read(data).PixelData)
    assert peak < 1.3 * len(data)


def test_pixel_comparison_finds_a_difference_in_any_chunk():
    from medveil.pipeline import _same_bytes

    data = bytes(range(256)) * 40
    same = memoryview(bytearray(data))
    assert _same_bytes(memoryview(data), same, chunk=1000)
    for position in (0, 999, 1000, len(data) - 1):
        changed = bytearray(data)
        changed[position] ^= 1
        assert not _same_bytes(memoryview(data), memoryview(changed), chunk=1000)
    assert not _same_bytes(memoryview(data), memoryview(data)[:-1], chunk=1000)


def test_what_engines_may_log_names_no_path_and_no_original_identifier():
    """Dask logs a failed task's arguments and results travel as objects: their reprs must be clean."""
    from medveil.runner.base import Job

    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    original = _read(data)
    _, record = deidentify_bytes(data, BASIC, KEY)
    job = Job(index=3, path="/exports/DOE^JANE_MRN-123456/img.dcm", input_ref="abc")
    assert "DOE" not in repr(job) and "123456" not in repr(job)
    assert str(original.SOPInstanceUID) in record.uid_pairs
    assert str(original.SOPInstanceUID) not in repr(record)
    assert str(original.PatientID) not in repr(record)
