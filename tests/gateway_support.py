"""Helpers for the gateway tests: a study with PHI on disk, an SCU, a medveil serve process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.uid import generate_uid

from orthanc import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
MEDVEIL = [sys.executable, "-m", "medveil"]
PHI = {"PatientName": "GATEWAY^GRETA^Q", "PatientID": "MRN-GW-4711", "PatientBirthDate": "19510304",
       "InstitutionName": "Harbour View Imaging", "ReferringPhysicianName": "LOOKER^LEO",
       "AccessionNumber": "ACCGW0099", "StudyDate": "20230815"}


def write_study(directory: Path, *, ct: int = 5, patient: dict | None = None, quarantined: int = 1,
                compressed: bool = True) -> list[Path]:
    """One study of one patient: *ct* CT slices (explicit VR little endian), an MR series of a
    JPEG 2000 and an implicit VR image (with *compressed*), and *quarantined* CT slices that say Burned In
    Annotation YES (the basic profile refuses those).  Returns the file paths; every file carries the values in PHI."""
    values = dict(PHI, **(patient or {}))
    study, series, series2, frame = (generate_uid() for _ in range(4))
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    sources = [("CT_small.dcm", series)] * (ct + quarantined)
    if compressed:
        sources += [("MR_small_jp2klossless.dcm", series2), ("MR_small_implicit.dcm", series2)]
    for number, (name, series_uid) in enumerate(sources, start=1):
        ds = pydicom.dcmread(pydicom.data.get_testdata_file(name))
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            # PS3.5 A.4: encapsulated Pixel Data is OB (pydicom's test file says OW).  Orthanc's DCMTK
            # corrects it on storage, which would hide whether medveil changed anything else.
            ds["PixelData"].VR = "OB"
        if number > ct and name == "CT_small.dcm":
            ds.BurnedInAnnotation = "YES"
        path = directory / f"{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def dataset_bytes(part10: bytes) -> bytes:
    """A Part 10 file's dataset, after the meta group (whose Implementation and Source AE fields
    differ with whoever stored the file)."""
    assert part10[128:132] == b"DICM"
    length = int.from_bytes(part10[140:144], "little")  # (0002,0000) UL, explicit VR little endian
    return part10[144 + length:]


def transfer_syntax(part10: bytes) -> str:
    return str(pydicom.dcmread(BytesIO(part10), stop_before_pixels=True).file_meta.TransferSyntaxUID)


def sop_uid(part10: bytes) -> str:
    return str(pydicom.dcmread(BytesIO(part10), stop_before_pixels=True).SOPInstanceUID)


def scu_send(port: int, paths: list[Path], *, called: str = "MEDVEIL", calling: str = "MODALITY",
             tls=None) -> list[int]:
    """C-STORE each file as stored (no re-encoding); returns the statuses (-1: no answer)."""
    from pynetdicom import AE, _config
    from pynetdicom.presentation import build_context

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=calling)
    pairs = set()
    for path in paths:
        meta = pydicom.filereader.read_file_meta_info(path)
        pairs.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    contexts = [build_context(c, [t]) for c, t in sorted(pairs)]
    assoc = ae.associate("127.0.0.1", port, contexts=contexts, ae_title=called, tls_args=tls)
    if not assoc.is_established:
        return [-1] * len(paths)
    statuses = []
    try:
        for path in paths:
            if not assoc.is_established:
                statuses.append(-1)
                continue
            status = assoc.send_c_store(path)
            statuses.append(int(status.Status) if "Status" in status else -1)
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses


def echo(port: int, *, called: str = "MEDVEIL", tls=None) -> bool:
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return "Status" in status and int(status.Status) == 0


class Serve:
    """``medveil serve`` as a real process (so that a test can kill it)."""

    def __init__(self, workspace: Path, key_file: Path, to: str, *args: str, port: int | None = None,
                 log: Path | None = None) -> None:
        self.port = port or free_port()
        self.args = [*MEDVEIL, "serve", "--to", to, "--workspace", str(workspace), "--port", str(self.port),
                     "--key-file", str(key_file), "--retry-max", "2", *args]
        self.log_path = log or workspace.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready=None) -> Serve:
        env = dict(os.environ, COLUMNS="200")
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, cwd=ROOT)
        wait_for(ready or self._answers, 120, "medveil serve to answer C-ECHO")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"medveil serve exited with {self.process.returncode}: {self.output()}")
        try:
            return echo(self.port)
        except Exception:
            return False

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(180)
        self.log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(60)
        self.log.close()
