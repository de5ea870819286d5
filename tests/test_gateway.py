"""Gateway pieces that need no Orthanc: addresses, the outbox, the forwarder's back-off, STOW-RS
answers, pull selections, and the whole serve path into an in-test pynetdicom SCP."""

from __future__ import annotations

import io
import json
import stat
import threading

import pytest

from medveil.gateway.endpoints import DicomNode, DicomWeb, EndpointError, ae_title, parse_destination
from medveil.gateway.forwarder import Backoff, Forwarder
from medveil.gateway.outbox import Outbox
from medveil.gateway.pull import PullError, Selection
from medveil.gateway.senders import DestinationDown, Sent, _failed_instances

# -- addresses ---------------------------------------------------------------------


def test_destinations_parse_as_dicom_nodes_or_dicomweb_urls():
    node = parse_destination("PACS@10.0.0.5:104")
    assert node == DicomNode("PACS", "10.0.0.5", 104)
    assert parse_destination("ARCHIVE@[::1]:11112").host == "::1"
    web = parse_destination("http://archive:8042/dicom-web/")
    assert isinstance(web, DicomWeb) and web.url == "http://archive:8042/dicom-web"


@pytest.mark.parametrize("text", ["PACS", "PACS@host", "@host:104", "PACS@host:0", "PACS@host:70000",
                                  "WAY_TOO_LONG_AE_TITLE@h:104", "BACK\\SLASH@h:104",
                                  "http://user:secret@host/dicom-web", "http:///nohost"])
def test_bad_destinations_are_refused_with_a_message(text):
    with pytest.raises(EndpointError):
        parse_destination(text)


def test_ae_titles_follow_ps3_8():
    assert ae_title("  STORESCP ") == "STORESCP"
    for bad in ("", "    ", "A" * 17, "A\\B", "Ä"):
        with pytest.raises(EndpointError):
            ae_title(bad)


# -- outbox --------------------------------------------------------------------------


def test_outbox_is_private_ordered_and_survives_a_restart(tmp_path):
    box = Outbox(tmp_path / "outbox")
    h1, h2, h3 = ("1" * 64), ("2" * 64), ("3" * 64)
    first = box.put(b"one", input_ref="a", output_sha256=h1)
    second = box.put(b"two", input_ref="b", output_sha256=h2)
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (tmp_path / "outbox").iterdir())
    # What a crash can leave: a temporary file that was never renamed into place.
    (tmp_path / "outbox" / f".medveil-tmp-000000000009-c-{h3}.dcm").write_bytes(b"half")
    again = Outbox(tmp_path / "outbox")
    assert [(e.seq, e.input_ref, e.output_sha256, e.path.read_bytes()) for e in again.pending()] == \
        [(first.seq, "a", h1, b"one"), (second.seq, "b", h2, b"two")]
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted([first.path.name, second.path.name])
    third = again.put(b"three", input_ref="c", output_sha256=h3)
    assert third.seq > second.seq  # numbering goes on after a restart: arrival order holds
    again.remove(first)
    assert [e.seq for e in again.pending()] == [second.seq, third.seq] and len(again) == 2


# -- forwarder -------------------------------------------------------------------------


class FakeSender:
    """Answers from a script: 'down' raises DestinationDown, otherwise a list of ok flags per call."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[list[bytes]] = []

    def send(self, paths):
        self.calls.append([p.read_bytes() for p in paths])
        answer = self.script.pop(0) if self.script else "all"
        if answer == "down":
            raise DestinationDown("cannot connect (ConnectionRefusedError)")
        if answer == "all":
            return [Sent(True, "0x0000")] * len(paths)
        return [Sent(ok, "0x0000" if ok else "C-STORE status 0xA900") for ok in answer]


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_forwarder_backs_off_when_the_destination_is_down_and_never_drops_a_file(tmp_path):
    box = Outbox(tmp_path / "outbox")
    for n in range(3):
        box.put(f"file{n}".encode(), input_ref=str(n), output_sha256=_sha(f"file{n}".encode()))
    clock, flushed, sent, failed = Clock(), [], [], []
    sender = FakeSender(["down", "down", "all"])
    forwarder = Forwarder(box, sender, backoff=Backoff(first=1, ceiling=3), clock=clock,
                          before_send=lambda: flushed.append(1), on_sent=lambda e, a: sent.append(e.input_ref),
                          on_failed=lambda e, d: failed.append(d))
    assert forwarder.step() == 1  # down: wait 1 s
    assert forwarder.step() == pytest.approx(1)  # not yet due: nothing is tried
    assert len(sender.calls) == 1
    clock.now += 1
    assert forwarder.step() == 2  # down again: the wait doubles
    clock.now += 2
    assert forwarder.step() == 0  # delivered
    assert sent == ["0", "1", "2"] and len(box) == 0 and len(flushed) == 3
    assert all("destination unavailable" in d for d in failed)
    assert forwarder.step() is None  # idle


def test_a_file_the_destination_refuses_waits_alone_while_the_others_go(tmp_path):
    box = Outbox(tmp_path / "outbox")
    for n in range(3):
        box.put(f"file{n}".encode(), input_ref=str(n), output_sha256=_sha(f"file{n}".encode()))
    clock = Clock()
    sender = FakeSender([[True, False, True], [False], [True]])
    forwarder = Forwarder(box, sender, backoff=Backoff(first=5, ceiling=60), clock=clock)
    assert forwarder.step() == 0
    assert [e.input_ref for e in box.pending()] == ["1"]
    assert forwarder.step() == pytest.approx(5)  # only the refused file is left, and it waits
    clock.now += 5
    forwarder.step()  # refused again: now it waits 10 s
    clock.now += 9
    assert forwarder.step() == pytest.approx(1)
    clock.now += 1
    forwarder.step()
    assert len(box) == 0 and sender.calls[-1] == [b"file1"]


def test_drain_waits_for_the_thread_to_empty_the_outbox(tmp_path):
    box = Outbox(tmp_path / "outbox")
    box.put(b"x", input_ref="a", output_sha256=_sha(b"x"))
    release = threading.Event()

    class Slow(FakeSender):
        def send(self, paths):
            release.wait(60)
            return super().send(paths)

    forwarder = Forwarder(box, Slow([])).start()
    try:
        assert not forwarder.drain(0.05)
        release.set()
        assert forwarder.drain(120)
    finally:
        forwarder.stop(60)


# -- STOW-RS answers ---------------------------------------------------------------------


def test_stow_failed_sop_sequence_is_read_from_dicom_json():
    answer = {"00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]},
                                                   "00081197": {"vr": "US", "Value": [0xA700]}}]},
              "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.4"]}}]}}
    assert _failed_instances(json.dumps(answer).encode()) == {"1.2.3"}
    assert _failed_instances(json.dumps([answer]).encode()) == {"1.2.3"}
    assert _failed_instances(b"") == set() and _failed_instances(b"<xml/>") == set()


# -- pull selections --------------------------------------------------------------------


def test_pull_needs_a_selection_and_builds_a_study_level_query():
    with pytest.raises(PullError):
        Selection()
    with pytest.raises(PullError):
        Selection(date_from="2023-01-01")
    query = Selection(patient_id="P1", date_from="20230101").query()
    assert query.QueryRetrieveLevel == "STUDY" and query.PatientID == "P1"
    assert query.StudyDate == "20230101-" and query.StudyInstanceUID == ""
    assert Selection(study_uids=("1.2", "1.3")).query().StudyInstanceUID == ["1.2", "1.3"]


# -- the whole serve path, in process, into a pynetdicom SCP (no Orthanc needed) -------------


class ArchiveScp:
    """A minimal C-STORE SCP standing in for an archive: keeps what it receives, as received."""

    def __init__(self):
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

        self.received: dict[str, bytes] = {}
        ae = AE(ae_title="ARCHIVE")
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]

    def _store(self, event):
        self.received[str(event.request.AffectedSOPInstanceUID)] = event.encoded_dataset(include_meta=False)
        return 0x0000

    def stop(self):
        self.server.shutdown()


def test_gateway_in_process_releases_what_a_batch_run_releases(tmp_path, key):
    pytest.importorskip("pynetdicom")
    import medveil
    from gateway_support import dataset_bytes, scu_send, sop_uid, write_study
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings
    from medveil.policy import get_profile
    from medveil.store.audit import AuditStore

    policy = get_profile("basic")
    from dataclasses import replace

    policy = replace(policy, sequential_patient_ids=True)
    first = write_study(tmp_path / "in" / "a", ct=2, quarantined=1)
    second = write_study(tmp_path / "in" / "b", ct=2, quarantined=0, compressed=False,
                         patient={"PatientID": "MRN-SECOND", "PatientName": "OTHER^ONE"})
    archive = ArchiveScp()
    gateway = Gateway(workspace=tmp_path / "ws", policy=policy, key=key, calling_ae="MEDVEIL",
                      destination=DicomNode("ARCHIVE", "127.0.0.1", archive.port),
                      scp=ScpSettings(port=0), mappings_dir=tmp_path / "maps").open()
    try:
        assert scu_send(gateway.scp.port, first) == [0] * len(first)
        assert scu_send(gateway.scp.port, second) == [0] * len(second)
        assert gateway.forwarder.drain(120)
    finally:
        summary = gateway.close()
        archive.stop()
    assert summary.written == len(first) + len(second) - 1 and summary.quarantined == 1
    # A batch run over the same files, in the order they were sent, with the same key and policy
    # (sequential IDs numbered in a fresh workspace, so both number the patients alike).
    batch = medveil.deidentify_path(tmp_path / "in", tmp_path / "out", policy=policy, key=key,
                                    workspace=tmp_path / "batch-ws")
    assert batch.written == summary.written
    expected = {sop_uid(p.read_bytes()): p.read_bytes() for p in (tmp_path / "out").rglob("*.dcm")}
    assert sorted(archive.received) == sorted(expected)
    for uid, data in archive.received.items():
        assert data == dataset_bytes(expected[uid])
    numbers = {policy.patient_id_format.number(n) for n in (1, 2)}
    assert {p.relative_to(tmp_path / "out").parts[0] for p in (tmp_path / "out").rglob("*.dcm")} == numbers
    assert (tmp_path / "maps" / "patid_mapping.csv").read_text().count("\n") == 3  # header + 2 patients
    with AuditStore.open(tmp_path / "ws" / "audit.sqlite") as store:
        counts = store.run_summary(summary.run_id)["event_counts"]
    assert counts["forwarded"] == summary.written and counts["association"] == 2


def _part10(dataset: bytes, transfer_syntax: str, sop_instance_uid: str) -> bytes:
    from medveil.gateway.intake import part10

    return part10("1.2.840.10008.5.1.4.1.1.2", sop_instance_uid, transfer_syntax, dataset)


def test_a_deflate_bomb_sent_to_the_gateway_is_quarantined_before_it_is_inflated(tmp_path, key):
    """A few kB of Deflated Explicit VR that inflate to far more than an association's memory budget
    end in quarantine with the budget's reason, as in batch mode, instead of being inflated."""
    pytest.importorskip("pynetdicom")
    import zlib

    from gateway_support import scu_send
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings
    from medveil.policy import get_profile
    from medveil.store.audit import AuditStore

    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = squeeze.compress(bytes(24 << 20)) + squeeze.flush()
    path = tmp_path / "bomb.dcm"
    path.write_bytes(_part10(bomb, "1.2.840.10008.1.2.1.99", "1.2.826.0.1.3680043.8.498.1"))
    archive = ArchiveScp()
    gateway = Gateway(workspace=tmp_path / "ws", policy=get_profile("basic"), key=key, calling_ae="MEDVEIL",
                      destination=DicomNode("ARCHIVE", "127.0.0.1", archive.port), scp=ScpSettings(port=0),
                      memory_budget=32 << 20).open()
    try:
        assert gateway.intake.memory_budget == 32 << 20
        assert scu_send(gateway.scp.port, [path]) == [0]
        assert gateway.forwarder.drain(60)
    finally:
        summary = gateway.close()
        archive.stop()
    assert summary.quarantined == 1 and summary.written == 0 and not archive.received
    with AuditStore.open(tmp_path / "ws" / "audit.sqlite") as store:
        reasons = [row["reason"] for row in store.file_rows(summary.run_id)]
    assert len(reasons) == 1 and "memory budget" in reasons[0], reasons


def test_the_gateway_has_a_memory_budget_by_default(tmp_path, key):
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings
    from medveil.policy import get_profile
    from medveil.runner.limits import default_memory_budget

    gateway = Gateway(workspace=tmp_path / "ws", policy=get_profile("basic"), key=key, calling_ae="MEDVEIL",
                      destination=DicomNode("ARCHIVE", "127.0.0.1", 104), scp=ScpSettings(max_associations=4))
    assert gateway.memory_budget is not None
    assert gateway.memory_budget <= default_memory_budget(1)


def test_tls_towards_a_plain_http_url_is_refused_not_silently_dropped(tmp_path):
    """--to-tls or --to-tls-ca with an http:// STOW-RS URL would post in plain text (urllib ignores a TLS
    context for http); the user asked for TLS, so the address is refused at start-up."""
    from medveil.gateway.endpoints import Tls

    with pytest.raises(EndpointError, match="https://"):
        parse_destination("http://archive:8042/dicom-web", Tls())
    assert parse_destination("https://archive/dicom-web", Tls()).tls == Tls()
    from typer.testing import CliRunner

    from medveil.cli import app

    result = CliRunner().invoke(app, ["serve", "--to", "http://archive:8042/dicom-web", "--to-tls",
                                      "--workspace", str(tmp_path / "ws"), "--throwaway-key"])
    assert result.exit_code != 0 and "https://" in result.output
    assert not (tmp_path / "ws").exists()


def test_an_outbox_file_that_no_longer_matches_its_recorded_hash_is_never_sent(tmp_path):
    """The outbox name carries the hash of the cleaned bytes the ledger recorded; a file changed on disk
    afterwards (damaged, replaced, edited by hand) is held back and reported, while the others go."""
    box = Outbox(tmp_path / "outbox")
    entries = [box.put(data, input_ref=str(n), output_sha256=_sha(data))
               for n, data in enumerate([b"clean-0", b"clean-1", b"clean-2"])]
    entries[1].path.write_bytes(b"PATIENT^ORIGINAL")  # no longer what was recorded
    clock, failed, sent = Clock(), [], []
    sender = FakeSender([])
    forwarder = Forwarder(box, sender, backoff=Backoff(first=5, ceiling=60), clock=clock,
                          on_sent=lambda e, a: sent.append(e.input_ref),
                          on_failed=lambda e, d: failed.append((e.input_ref, d)))
    assert forwarder.step() == 0
    assert sender.calls == [[b"clean-0", b"clean-2"]] and sent == ["0", "2"]
    assert [e.input_ref for e in box.pending()] == ["1"]  # kept, not dropped
    assert failed and failed[0][0] == "1" and "hash" in failed[0][1]
    clock.now += 3600
    forwarder.step()
    assert sender.calls == [[b"clean-0", b"clean-2"]]  # still never sent


def test_the_forwarder_thread_survives_a_failing_callback(tmp_path):
    """Recording a delivery can fail (the workspace disk is full, the audit store is locked); the thread
    that drains the outbox must go on with the next files instead of dying silently."""
    box = Outbox(tmp_path / "outbox")
    for n in range(3):
        box.put(f"file{n}".encode(), input_ref=str(n), output_sha256=_sha(f"file{n}".encode()))
    calls = []

    def on_sent(entry, answer):
        calls.append(entry.input_ref)
        if len(calls) == 1:
            raise OSError("no space left on device")

    forwarder = Forwarder(box, FakeSender([[True], "all"]), batch=1, backoff=Backoff(first=0.01, ceiling=0.01),
                          on_sent=on_sent).start()
    try:
        assert forwarder.drain(120)
        assert forwarder._thread.is_alive()
    finally:
        forwarder.stop(60)
    assert calls == ["0", "1", "2"] and len(box) == 0


def test_a_curator_release_of_a_file_the_gateway_quarantined_goes_out_through_the_outbox(tmp_path, key):
    """The review page's Release on a gateway workspace must queue the cleaned file as an outbox entry
    (forwarded by the next serve or pull), not write a folder tree into the outbox that nothing sends."""
    pytest.importorskip("pynetdicom")
    import pydicom

    from gateway_support import scu_send, write_study
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings
    from medveil.policy import get_profile
    from medveil.review import decisions
    from medveil.review.database import ReviewDatabase
    from medveil.review.overview import load

    policy, workspace = get_profile("basic"), tmp_path / "ws"
    files = write_study(tmp_path / "in", ct=1, quarantined=1, compressed=False)

    def gateway(archive):
        return Gateway(workspace=workspace, policy=policy, key=key, calling_ae="MEDVEIL", scp=ScpSettings(port=0),
                       destination=DicomNode("ARCHIVE", "127.0.0.1", archive.port)).open()

    archive = ArchiveScp()
    node = gateway(archive)
    try:
        assert scu_send(node.scp.port, files) == [0, 0]
        assert node.forwarder.drain(120)
    finally:
        node.close()
        archive.stop()
    assert len(archive.received) == 1
    held = load(workspace).quarantined[0]
    copy = workspace / "quarantine" / f"{held.input_ref}.dcm"
    fixed = pydicom.dcmread(copy)
    fixed.BurnedInAnnotation = "NO"  # the curator looked: no burned-in text
    fixed.save_as(copy)
    with ReviewDatabase.open(workspace) as database:
        outputs = database.outputs()
    outcome = decisions.release(workspace, held.input_ref, decisions.Reviewer(key=key, policy=policy), outputs)
    assert outcome.decision == "released"
    outbox = workspace / "outbox"
    assert [p.is_file() for p in outbox.iterdir()] == [True]  # one entry, no folder tree
    archive = ArchiveScp()
    node = gateway(archive)
    try:
        assert node.forwarder.drain(120)
    finally:
        node.close()
        archive.stop()
    assert len(archive.received) == 1 and not list(outbox.iterdir())


# -- delayed acknowledgements ----------------------------------------------------------------


class _Event:
    """What the latency handlers read from a pynetdicom event: the association's raw socket."""

    def __init__(self, sock):
        from types import SimpleNamespace

        self.assoc = SimpleNamespace(dul=SimpleNamespace(socket=SimpleNamespace(socket=sock)))


def test_latency_handlers_set_nodelay_and_quickack_and_tolerate_a_missing_socket():
    import socket

    from medveil.gateway.latency import no_delay, quick_ack

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        no_delay(_Event(client))
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        if hasattr(socket, "TCP_QUICKACK"):
            quick_ack(_Event(server))
            assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
        quick_ack(_Event(None))
        no_delay(object())  # an event without an association: nothing to do, nothing raised
    finally:
        for sock in (client, server, listener):
            sock.close()


def test_gateway_sockets_use_the_latency_settings(tmp_path, key):
    pytest.importorskip("pynetdicom")
    import socket

    from pynetdicom import evt

    from gateway_support import scu_send, write_study
    from medveil.gateway.latency import quick_ack
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings
    from medveil.policy import get_profile

    archive = ArchiveScp()
    gateway = Gateway(workspace=tmp_path / "ws", policy=get_profile("basic"), key=key, calling_ae="MEDVEIL",
                      destination=DicomNode("ARCHIVE", "127.0.0.1", archive.port),
                      scp=ScpSettings(port=0)).open()
    try:
        bound = [handler for handler, *_ in gateway.scp._server.get_handlers(evt.EVT_PDU_RECV)]
        assert quick_ack in bound  # re-armed after every PDU the SCP reads
        gateway.forwarder.stop()  # send by hand, to look at the sender's open association
        study = write_study(tmp_path / "in", ct=1, quarantined=0)
        assert scu_send(gateway.scp.port, study) == [0] * len(study)
        entries = gateway.ledger.outbox.pending()
        assert entries and all(answer.ok for answer in gateway.sender.send([e.path for e in entries]))
        sock = gateway.sender._assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        gateway.sender.close()
        gateway.close()
        archive.stop()


# -- what a sender's request may leave out ------------------------------------------------------------


class _StoreEvent:
    """A C-STORE as the SCP's handler sees it: the request's UIDs, the context and the dataset's bytes."""

    def __init__(self, sop_class: str, sop_instance: str, syntax: str, dataset: bytes):
        from types import SimpleNamespace

        self.request = SimpleNamespace(AffectedSOPClassUID=sop_class, AffectedSOPInstanceUID=sop_instance)
        self.context = SimpleNamespace(transfer_syntax=syntax)
        self.assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title="MODALITY"))
        self._dataset = dataset

    def encoded_dataset(self, include_meta: bool = False) -> bytes:
        return self._dataset


def test_a_request_without_uids_is_judged_not_refused_for_resources(tmp_path, key):
    """An empty or malformed UID in the C-STORE request must not answer 0xA700 (the sender would retry
    for ever): the file is released, named from its own dataset, or quarantined with a reason."""
    import warnings

    from pydicom import examples

    from gateway_support import dataset_bytes, write_study
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import SUCCESS, ScpSettings, StorageScp
    from medveil.policy import get_profile
    from medveil.store.audit import AuditStore

    study = write_study(tmp_path / "in", ct=1, quarantined=0, compressed=False)
    good = dataset_bytes(study[0].read_bytes())
    stripped = examples.ct.copy()
    del stripped.SOPInstanceUID
    buffer = io.BytesIO()
    stripped.save_as(buffer, implicit_vr=False, little_endian=True)
    no_uid = dataset_bytes(buffer.getvalue())
    explicit = "1.2.840.10008.1.2.1"
    ct = "1.2.840.10008.5.1.4.1.1.2"
    gateway = Gateway(workspace=tmp_path / "ws", policy=get_profile("basic"), key=key, calling_ae="MEDVEIL",
                      destination=DicomNode("ARCHIVE", "127.0.0.1", 104), scp=None).open()
    scp = StorageScp(ScpSettings(port=0), gateway.intake)
    try:
        gateway.forwarder.stop()  # nothing leaves: the outbox is what is looked at
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            answers = [scp._on_store(_StoreEvent(ct, "", explicit, good)),
                       scp._on_store(_StoreEvent(ct, "1.2.abc", explicit, good)),
                       scp._on_store(_StoreEvent("", "", explicit, no_uid))]
        assert answers == [SUCCESS] * 3
        assert not [w for w in caught if "1.2.abc" in str(w.message)]  # a malformed UID is not quoted
        # the first two are one instance with identical output (sent twice), the third has no UIDs at all
        assert dict(scp.traffic.counts) == {"written": 2, "quarantined": 1}
    finally:
        summary = gateway.close()
    with AuditStore.open(tmp_path / "ws" / "audit.sqlite") as store:
        reasons = [row["reason"] for row in store.file_rows(summary.run_id) if row["reason"]]
    assert len(reasons) == 1 and "UID" in reasons[0], reasons


def test_serve_log_lines_are_stamped_and_never_wrapped(monkeypatch):
    import re

    from rich.console import Console

    from medveil.cli import gateway as cli_gateway

    stream = io.StringIO()
    monkeypatch.setattr(cli_gateway, "console", Console(file=stream, width=40))
    cli_gateway.log("received 7 (queued 7, already forwarded 0, quarantined 0); forwarded 7; outbox 0 [x]")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("outbox 0 [x]")  # one line, markup left as text
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ received 7 ", lines[0])
