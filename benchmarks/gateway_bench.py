#!/usr/bin/env python3
"""Studies per minute through ``medveil serve`` against the batch runner, on the same files.

Workload: ``--studies`` generated CT studies of ``--images`` slices each
(pydicom's CT_small with fresh UIDs and planted patient data), one patient
per study, profile ``basic``, one key.

Contenders, each timed ``--repeats`` times with a fresh workspace (medians reported):
  batch            medveil's batch runner, one worker: folder in, release tree out
  gateway-null     pynetdicom's SCU (another process) sends each study on its own association
                   to medveil's Storage SCP (in this process), which forwards by C-STORE to a pynetdicom
                   SCP that keeps the bytes in memory; timed until that archive has every file
  gateway-orthanc  the same with a real Orthanc as the destination (skipped when Orthanc is not
                   installed; `make orthanc` installs it)
  direct-orthanc   no medveil: the files go straight to that Orthanc, from a sender with Nagle's
                   algorithm off; Orthanc's own ingest rate, the ceiling for anything in front of it

The gateway's sender is pynetdicom's SCU as it comes (Nagle's algorithm on, as in
DCMTK since 3.6.2): medveil's SCP acknowledges at once so that such a sender does
not wait on delayed ACKs (see medveil.gateway.latency).

The gateway numbers include the network on both sides, the durable outbox
(two fsyncs per file) and the forwarding; the batch number includes
discovery, the audit store and writing the release tree.  Ratios are to
batch.  Usage: python benchmarks/gateway_bench.py [--studies N] [--images N]
[--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
import pydicom.data
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' Orthanc launcher: one way to start it

from medveil import deidentify_path, get_profile  # noqa: E402
from medveil.pseudonym import throwaway_key  # noqa: E402
from medveil.quiet import silenced  # noqa: E402


def build_studies(directory: Path, studies: int, images: int) -> list[list[Path]]:
    source = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    out = []
    for s in range(studies):
        study, series = generate_uid(), generate_uid()
        paths = []
        for i in range(images):
            ds = source.copy()
            ds.PatientName, ds.PatientID = f"BENCH^PATIENT{s}", f"MRN{s:06d}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = i + 1
            path = directory / f"study{s:03d}" / f"{i:04d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        out.append(paths)
    return out


def send_study(port: int, paths: list[Path], called: str = "MEDVEIL", nodelay: bool = False) -> None:
    from pynetdicom import AE, _config
    from pynetdicom.presentation import build_context

    from medveil.gateway.latency import requestor_handlers

    _config.STORE_SEND_CHUNKED_DATASET = True
    meta = pydicom.filereader.read_file_meta_info(paths[0])
    ae = AE(ae_title="MODALITY")
    assoc = ae.associate("127.0.0.1", port, ae_title=called,
                         contexts=[build_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])],
                         evt_handlers=requestor_handlers() if nodelay else [])
    assert assoc.is_established
    for path in paths:
        assert assoc.send_c_store(path).Status == 0
    assoc.release()


def send_all(port: int, studies: list[list[Path]], called: str = "MEDVEIL", nodelay: bool = False) -> None:
    """One association per study, studies one after the other (as a modality sends)."""
    for paths in studies:
        send_study(port, paths, called, nodelay)


def time_direct(studies, node: str, clear) -> float:
    """The same studies straight to the destination: its own ingest rate."""
    clear()
    called, _, address = node.partition("@")
    start = time.perf_counter()
    with ProcessPoolExecutor(1) as pool:
        pool.submit(send_all, int(address.rsplit(":", 1)[1]), studies, called, True).result()
    return time.perf_counter() - start


class NullArchive:
    def __init__(self):
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

        self.count = 0
        ae = AE(ae_title="ARCHIVE")
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.node = f"ARCHIVE@127.0.0.1:{self.server.server_address[1]}"

    def _store(self, event):
        event.encoded_dataset(include_meta=False)
        self.count += 1
        return 0

    def received(self) -> int:
        return self.count

    def reset(self):
        self.count = 0

    def stop(self):
        self.server.shutdown()


def time_batch(studies, work: Path, key, policy) -> float:
    out, ws = work / "batch-out", work / "batch-ws"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ws, ignore_errors=True)
    start = time.perf_counter()
    summary = deidentify_path(studies[0][0].parents[1], out, policy=policy, key=key, workspace=ws)
    elapsed = time.perf_counter() - start
    assert summary.written == sum(map(len, studies)), "batch did not release every file"
    return elapsed


def time_gateway(studies, work: Path, key, policy, destination: str, received, reset) -> float:
    from medveil.gateway.endpoints import parse_destination
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings

    ws = work / "gateway-ws"
    shutil.rmtree(ws, ignore_errors=True)
    reset()
    total = sum(map(len, studies))
    gateway = Gateway(workspace=ws, policy=policy, key=key, destination=parse_destination(destination),
                      calling_ae="MEDVEIL", scp=ScpSettings(port=0)).open()
    try:
        start = time.perf_counter()
        # The sender is another process, as a modality is another machine: it must not share this GIL.
        with ProcessPoolExecutor(1) as pool:
            pool.submit(send_all, gateway.scp.port, studies).result()
        assert gateway.forwarder.drain(3600), "the outbox did not drain"
        while received() < total:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
    finally:
        gateway.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    key, policy = throwaway_key(), get_profile("basic")
    rows = []
    with tempfile.TemporaryDirectory(prefix="medveil-gateway-bench-") as tmp, silenced():
        work = Path(tmp)
        studies = build_studies(work / "in", args.studies, args.images)
        contenders = {"batch": lambda: time_batch(studies, work, key, policy)}
        null = NullArchive()
        contenders["gateway-null"] = lambda: time_gateway(studies, work, key, policy, null.node,
                                                          null.received, null.reset)
        orthanc = None
        try:
            from orthanc import Orthanc, orthanc_binary

            if orthanc_binary():
                orthanc = Orthanc(work / "orthanc").start()

                def clear():
                    for instance in orthanc.instances():
                        orthanc.request("DELETE", f"/instances/{instance}")

                contenders["gateway-orthanc"] = lambda: time_gateway(
                    studies, work, key, policy, orthanc.node, lambda: len(orthanc.instances()), clear)
                contenders["direct-orthanc"] = lambda: time_direct(studies, orthanc.node, clear)
            else:
                print("gateway-orthanc skipped: Orthanc is not installed (make orthanc)", file=sys.stderr)
            times = {name: [] for name in contenders}
            for _ in range(args.repeats):  # interleaved, so that load changes hit every contender
                for name, run in contenders.items():
                    times[name].append(run())
        finally:
            null.stop()
            if orthanc is not None:
                orthanc.stop()
    base = statistics.median(times["batch"])
    files = args.studies * args.images
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({"contender": name, "median_s": round(median, 3), "studies_per_min": round(
            args.studies / median * 60, 1), "files_per_s": round(files / median, 1),
            "vs_batch": round(median / base, 2), "runs": [round(v, 3) for v in values]})
    print(f"{args.studies} studies x {args.images} CT images, profile basic, medians of {args.repeats}")
    print("| contender | median s | studies/min | files/s | time vs batch |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['contender']} | {row['median_s']} | {row['studies_per_min']} | {row['files_per_s']} "
              f"| {row['vs_batch']}x |")
    if args.json:
        args.json.write_text(json.dumps({"studies": args.studies, "images": args.images, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
