"""medveil serve and medveil pull against a real Orthanc (skipped, saying why, where none can be installed).

Each test starts its own Orthanc on free loopback ports with a generated
configuration, sends a study in with pynetdicom's SCU (or has Orthanc send
it, for pull), lets medveil forward it, queries Orthanc back and compares
with a batch run (``medveil deidentify``) of the same files and key: every
instance arrives, de-identified, with the batch output's dataset bytes.
"""

from __future__ import annotations

import csv
import json
import stat
import subprocess
from pathlib import Path

import pytest

from gateway_support import MEDVEIL, PHI, ROOT, Serve, dataset_bytes, scu_send, sop_uid, transfer_syntax, write_study
from medveil.gateway.endpoints import parse_node
from medveil.gateway.pull import Selection, find_studies
from orthanc import Orthanc, free_port, require_orthanc, wait_for

pytest.importorskip("pynetdicom", reason="the gateway needs pynetdicom: pip install 'medveil[gateway]'")

pytestmark = pytest.mark.slow  # a real Orthanc and medveil serve/pull processes per test


@pytest.fixture(autouse=True)
def _orthanc_installed():
    require_orthanc()


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "medveil.key"
    subprocess.run([*MEDVEIL, "keygen", str(path)], check=True, capture_output=True, cwd=ROOT)
    return path


@pytest.fixture
def orthanc(tmp_path):
    with Orthanc(tmp_path / "orthanc") as server:
        yield server


def batch_outputs(study: Path, tmp_path: Path, key_file: Path, *args: str) -> dict[str, bytes]:
    """``medveil deidentify`` over the same files and key: SOP Instance UID -> released file."""
    out = tmp_path / "batch-out"
    result = subprocess.run([*MEDVEIL, "deidentify", str(study), str(out), "--key-file", str(key_file),
                             "--workspace", str(tmp_path / "batch-ws"), *args], capture_output=True, cwd=ROOT)
    assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
    files = [p.read_bytes() for p in sorted(out.rglob("*.dcm"))]
    return {sop_uid(data): data for data in files}


def assert_same_as_batch(received: list[bytes], expected: dict[str, bytes]) -> None:
    got = {sop_uid(data): data for data in received}
    assert sorted(got) == sorted(expected), "the destination does not hold exactly the batch run's instances"
    for uid, data in got.items():
        assert transfer_syntax(data) == transfer_syntax(expected[uid])
        assert dataset_bytes(data) == dataset_bytes(expected[uid]), "dataset bytes differ from the batch run"


def assert_no_phi(files: list[bytes]) -> None:
    for data in files:
        for value in PHI.values():
            if value.isdigit():
                continue  # dates are checked by the engine's own tests; digits occur in pixel data
            assert value.encode() not in data


def test_serve_forwards_a_study_by_c_store_identical_to_batch(tmp_path, orthanc, key_file):
    study = write_study(tmp_path / "in", ct=5, quarantined=1)
    mappings = tmp_path / "mappings"
    serve = Serve(tmp_path / "ws", key_file, orthanc.node, "--mappings", str(mappings)).start()
    try:
        statuses = scu_send(serve.port, study)
        assert statuses == [0] * len(study)  # custody taken, the refused one included
        released = len(study) - 1
        wait_for(lambda: len(orthanc.instances()) == released, 180, "the study to arrive in Orthanc")
        wait_for(lambda: not list((tmp_path / "ws" / "outbox").glob("*.dcm")), 60, "the outbox to empty")
    finally:
        assert serve.stop() == 0, serve.output()
    files = orthanc.files()
    assert_no_phi(files)
    assert_same_as_batch(files, batch_outputs(tmp_path / "in", tmp_path, key_file))
    # The refused file is in quarantine with its reason, as in batch mode.
    reasons = list((tmp_path / "ws" / "quarantine").glob("*.reason.txt"))
    assert len(reasons) == 1 and "burned-in" in reasons[0].read_text()
    # Mapping files hold the pairs of what was released.
    with open(mappings / "uid_mapping.csv", newline="") as handle:
        pairs = dict(csv.reader(handle))
    import pydicom

    for path in study[:5]:
        original = pydicom.dcmread(path, stop_before_pixels=True)
        assert pairs[str(original.SOPInstanceUID)] in {sop_uid(f) for f in files}
    with open(mappings / "patid_mapping.csv", newline="") as handle:
        assert dict(csv.reader(handle))[PHI["PatientID"]]
    # The audit store recorded each file and each forwarding.
    from medveil.store.audit import AuditStore

    with AuditStore.open(tmp_path / "ws" / "audit.sqlite") as store:
        run = store.runs()[-1]
        summary = store.run_summary(run["run_id"])
    assert summary["status_counts"] == {"written": released, "quarantined": 1}
    assert summary["event_counts"]["forwarded"] == released
    assert run["finished_at"] and summary["event_counts"]["gateway"] == 1  # the run says it was a gateway


@pytest.mark.skipif(not Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so").exists(),
                    reason="Orthanc's DICOMweb plugin is not installed (Debian package 'orthanc-dicomweb')")
def test_serve_forwards_by_stow_rs_identical_to_batch(tmp_path, orthanc, key_file):
    study = write_study(tmp_path / "in", ct=4, quarantined=0)
    serve = Serve(tmp_path / "ws", key_file, f"{orthanc.url}/dicom-web").start()
    try:
        assert scu_send(serve.port, study) == [0] * len(study)
        wait_for(lambda: len(orthanc.instances()) == len(study), 180, "the study to arrive over STOW-RS")
    finally:
        assert serve.stop() == 0, serve.output()
    files = orthanc.files()
    assert_no_phi(files)
    assert_same_as_batch(files, batch_outputs(tmp_path / "in", tmp_path, key_file))


def test_destination_down_keeps_files_in_a_private_outbox_until_it_is_back(tmp_path, key_file):
    study = write_study(tmp_path / "in", ct=4, quarantined=0)
    down = Orthanc(tmp_path / "orthanc")  # configured, not started: its port refuses connections
    workspace = tmp_path / "ws"
    serve = Serve(workspace, key_file, down.node).start()
    try:
        assert scu_send(serve.port, study) == [0] * len(study)
        outbox = workspace / "outbox"
        queued = wait_for(lambda: len(list(outbox.glob("*.dcm"))) == len(study) and list(outbox.glob("*.dcm")),
                          60, "the files to be queued")
        assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in queued)
        wait_for(lambda: "last error: " in serve.output(), 120,
                 "the gateway to report the destination down")
        with down:  # the destination comes back: the retries deliver everything
            wait_for(lambda: len(down.instances()) == len(study), 180, "the outbox to be delivered")
            wait_for(lambda: not list(outbox.glob("*.dcm")), 60, "the outbox to empty")
            files = down.files()
    finally:
        assert serve.stop() == 0, serve.output()
    assert_same_as_batch(files, batch_outputs(tmp_path / "in", tmp_path, key_file))
    from medveil.store.audit import AuditStore

    with AuditStore.open(workspace / "audit.sqlite") as store:
        summary = store.run_summary(store.runs()[-1]["run_id"])
    assert summary["event_counts"].get("forward-retry", 0) >= 1


def test_restart_mid_stream_resumes_the_outbox_and_completes_the_study(tmp_path, key_file):
    """The gateway is killed (SIGKILL) halfway through a study while the destination is down; after a
    restart the sender sends the study again; the destination ends with the whole study, once."""
    study = write_study(tmp_path / "in", ct=6, quarantined=0)
    dest = Orthanc(tmp_path / "orthanc")
    workspace = tmp_path / "ws"
    first = Serve(workspace, key_file, dest.node).start()
    half = len(study) // 2
    assert scu_send(first.port, study[:half]) == [0] * half
    wait_for(lambda: len(list((workspace / "outbox").glob("*.dcm"))) == half, 60, "the first half queued")
    first.kill()
    assert scu_send(first.port, study[half:])[0] == -1  # nobody listens: the sender keeps these
    with dest:
        second = Serve(workspace, key_file, dest.node, port=first.port).start()
        try:
            # The outbox of the killed process goes out first, then the re-sent study.
            wait_for(lambda: len(dest.instances()) == half, 180, "the resumed outbox to be delivered")
            assert scu_send(second.port, study) == [0] * len(study)
            wait_for(lambda: len(dest.instances()) == len(study), 180, "the whole study to arrive")
            wait_for(lambda: not list((workspace / "outbox").glob("*.dcm")), 60, "the outbox to empty")
            # A third sending of the same study is recognised: nothing is forwarded again.
            assert scu_send(second.port, study) == [0] * len(study)
        finally:
            assert second.stop() == 0, second.output()
        files = dest.files()
    assert len(files) == len(study)
    assert_same_as_batch(files, batch_outputs(tmp_path / "in", tmp_path, key_file))
    from medveil.store.audit import AuditStore

    with AuditStore.open(workspace / "audit.sqlite") as store:
        last = store.run_summary(store.runs()[-1]["run_id"])
    assert last["status_counts"]["unchanged"] >= len(study)  # the third sending


def test_serve_refuses_unknown_callers(tmp_path, orthanc, key_file):
    study = write_study(tmp_path / "in", ct=1, quarantined=0, compressed=False)
    serve = Serve(tmp_path / "ws", key_file, orthanc.node, "--allow", "MODALITY").start()
    try:
        assert scu_send(serve.port, study, calling="STRANGER") == [-1]
        assert scu_send(serve.port, study, calling="MODALITY") == [0]
        wait_for(lambda: len(orthanc.instances()) == 1, 180, "the allowed caller's file")
    finally:
        assert serve.stop() == 0


def test_pull_moves_studies_from_a_source_pacs_to_the_destination(tmp_path, orthanc, key_file):
    port = free_port()
    with Orthanc(tmp_path / "source", aet="SOURCE", modalities={"medveil": ("MEDVEIL", "127.0.0.1", port)}) \
            as source:
        wanted = write_study(tmp_path / "in" / "wanted", ct=3, quarantined=1)
        other = write_study(tmp_path / "other", ct=2, quarantined=0, compressed=False,
                            patient={"PatientID": "MRN-OTHER", "StudyDate": "20190101"})
        for path in wanted + other:
            source.upload(path.read_bytes())
        # The query asks for each study's size, which pull's progress bar takes as its total.
        found = find_studies(parse_node(source.node), "MEDVEIL", Selection(patient_id=PHI["PatientID"]))
        assert [study.instances for study in found] == [len(wanted)]
        result = subprocess.run(
            [*MEDVEIL, "pull", "--from", source.node, "--to", orthanc.node, "--workspace", str(tmp_path / "ws"),
             "--key-file", str(key_file), "--port", str(port), "--patient", PHI["PatientID"],
             "--from-date", "20230101", "--to-date", "20231231", "--json", "--wait", "300"],
            capture_output=True, cwd=ROOT, timeout=900)
    assert result.returncode == 1, result.stderr.decode(errors="replace")  # 1: one file was quarantined
    report = json.loads(result.stdout)
    assert report["studies_found"] == 1 and report["studies_moved"] == 1
    assert report["quarantined"] == 1 and report["forwarded"] == len(wanted) - 1 and report["outbox"] == 0
    stderr = result.stderr.decode(errors="replace")
    assert PHI["PatientID"] not in stderr and PHI["PatientName"] not in stderr
    files = orthanc.files()
    assert_no_phi(files)
    assert_same_as_batch(files, batch_outputs(tmp_path / "in", tmp_path, key_file))


def test_serve_over_tls(tmp_path, orthanc, key_file):
    pytest.importorskip("cryptography")
    from tls_support import make_ca_and_leaf

    cert, key, ca = make_ca_and_leaf(tmp_path / "tls")
    study = write_study(tmp_path / "in", ct=1, quarantined=0, compressed=False)
    serve = Serve(tmp_path / "ws", key_file, orthanc.node, "--tls-cert", str(cert), "--tls-key", str(key))
    import ssl

    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    from gateway_support import echo

    serve.start(ready=lambda: echo(serve.port, tls=(client, "localhost")))
    try:
        assert scu_send(serve.port, study) == [-1]  # plain associations get nowhere
        assert scu_send(serve.port, study, tls=(client, "localhost")) == [0]
        wait_for(lambda: len(orthanc.instances()) == 1, 180, "the file sent over TLS")
    finally:
        assert serve.stop() == 0
