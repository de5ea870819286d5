"""``medveil serve`` and ``medveil pull``: medveil as a DICOM node (see docs/gateway.md)."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

import typer

from medveil.cli.common import console, fail
from medveil.cli.progress import RunProgress
from medveil.errors import MedveilError
from medveil.records import Status

DEFAULT_AE = "MEDVEIL"


def _policy_and_key(profile, recipe, option, without, burned_in, sequential_ids, verify, pixel_scan, ocr,
                    key_file, throwaway_key):
    from dataclasses import replace

    from medveil.cli.deidentify import BurnedIn, PixelScan, _check_ocr, _pixel_settings, build_policy, load_run_key

    policy = build_policy(profile, recipe, option, BurnedIn(burned_in) if burned_in else None, without)
    if sequential_ids:
        policy = replace(policy, sequential_patient_ids=True)
    policy = _pixel_settings(policy, None, PixelScan(pixel_scan) if pixel_scan else None, ocr, None, None, None)
    if verify:
        policy = replace(policy, verify=True)
    _check_ocr(policy)
    return policy, load_run_key(key_file, throwaway_key)[0]


def _size(text: str | None, what: str) -> int | None:
    from medveil.cli.deidentify import _size

    return _size(text, what)


def _tls(cert: Path | None, key: Path | None, ca: Path | None):
    from medveil.gateway.endpoints import Tls

    return Tls(cert, key, ca) if (cert or key or ca) else None


def _destination(to: str, to_tls: bool, to_tls_ca: Path | None, cert: Path | None, key: Path | None):
    from medveil.gateway.endpoints import Tls, parse_destination

    tls = Tls(cert, key, to_tls_ca) if (to_tls or to_tls_ca) else None
    if tls is None and to.startswith("https://"):
        tls = Tls(cert, key, None)
    return parse_destination(to, tls)


def _workspace(workspace: Path) -> Path:
    if workspace.exists() and not workspace.is_dir():
        fail("the workspace must be a folder")
    return workspace


# Help panels; Policy, Pseudonyms and Run are named as in deidentify's help.
NETWORK, SELECTION, POLICY, PSEUDONYMS, RUN = "Network", "Selection", "Policy", "Pseudonyms", "Run"

# Options both commands share (typer needs them spelled out per command).
_TO = typer.Option(..., "--to", metavar="DEST", rich_help_panel=NETWORK,
                   help="Where cleaned files go: AET@host:port (C-STORE) or a DICOMweb base URL (STOW-RS), "
                        "e.g. http://host:8042/dicom-web.")
_WORKSPACE = typer.Option(..., "--workspace", metavar="DIR", rich_help_panel=RUN,
                          help="Private workspace: audit store, quarantine, outbox (the same folder a batch run "
                               "uses keeps one history).")
_THROWAWAY = typer.Option(False, "--throwaway-key", metavar="", rich_help_panel=PSEUDONYMS,
                          help="A random key for this run only.")
_RECIPE = typer.Option(None, "--recipe", "-r", exists=True, metavar="FILE", rich_help_panel=POLICY, help="YAML recipe.")
_OPTION = typer.Option([], "--option", "-o", metavar="NAME", rich_help_panel=POLICY, help="Add an option (repeatable).")
_WITHOUT = typer.Option([], "--without", metavar="NAME", rich_help_panel=POLICY, help="Drop an option (repeatable).")
_BURNED_IN = typer.Option(None, "--burned-in", metavar="quarantine|pass", rich_help_panel=POLICY,
                          help="Without Clean Pixel Data: quarantine (default) or pass files presumed to carry "
                               "burned-in text.")
_PIXEL_SCAN = typer.Option(None, "--pixel-scan", metavar="all|flagged", rich_help_panel=POLICY,
                           help="With clean_pixel_data: screen every image, or trust the header.")
_OCR = typer.Option(None, "--ocr", metavar="ENGINES", rich_help_panel=POLICY, help="OCR engines, comma-separated.")


def _pem(flag: str, text: str):
    return typer.Option(None, flag, exists=True, dir_okay=False, metavar="FILE", rich_help_panel=NETWORK, help=text)


_TO_TLS = typer.Option(False, "--to-tls", metavar="", rich_help_panel=NETWORK,
                       help="TLS towards a C-STORE destination (system trust).")
_TO_TLS_CA = _pem("--to-tls-ca", "CA certificates to trust for the destination (implies TLS).")
_PROFILE = typer.Option("basic", "--profile", "-p", metavar="NAME", rich_help_panel=POLICY,
                        help="Profile, as for deidentify.")
_KEY_FILE = typer.Option(None, "--key-file", "-k", metavar="FILE", rich_help_panel=PSEUDONYMS,
                         help="Secret key (or MEDVEIL_KEY_FILE).")
_MEMORY_BUDGET = typer.Option(None, "--memory-budget", metavar="SIZE", rich_help_panel=RUN,
                              help="Per association, e.g. 2G; larger files, inflated datasets and decoded images "
                                   "are quarantined (default: a share of free memory).")


def serve(
    to: str = _TO,
    ae_title: str = typer.Option(DEFAULT_AE, "--ae-title", metavar="AET", rich_help_panel=NETWORK,
                                 help="medveil's AE title (called AE)."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDRESS", rich_help_panel=NETWORK,
                             help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(11112, "--port", metavar="PORT", rich_help_panel=NETWORK, help="Port to listen on."),
    allow: list[str] = typer.Option([], "--allow", metavar="AET", rich_help_panel=NETWORK,
                                    help="Calling AE title allowed to send (repeatable; default: any)."),
    calling_ae: str | None = typer.Option(None, "--calling-ae", metavar="AET", rich_help_panel=NETWORK,
                                             help="AE title medveil uses towards the destination "
                                                  "(default: --ae-title)."),
    tls_cert: Path | None = _pem("--tls-cert", "TLS certificate (PEM): turns on TLS for incoming associations."),
    tls_key: Path | None = _pem("--tls-key", "TLS private key (PEM) for --tls-cert."),
    tls_ca: Path | None = _pem("--tls-ca", "CA certificates (PEM): senders must present a certificate signed "
                                              "by one."),
    to_tls: bool = _TO_TLS,
    to_tls_ca: Path | None = _TO_TLS_CA,
    profile: str = _PROFILE,
    key_file: Path | None = _KEY_FILE,
    throwaway_key: bool = _THROWAWAY,
    mappings: Path | None = typer.Option(None, "--mappings", metavar="DIR", rich_help_panel=PSEUDONYMS,
                                            help="Keep uid_mapping.csv and patid_mapping.csv here, up to date "
                                                 "before each file leaves."),
    recipe: Path | None = _RECIPE,
    option: list[str] = _OPTION,
    without: list[str] = _WITHOUT,
    burned_in: str | None = _BURNED_IN,
    pixel_scan: str | None = _PIXEL_SCAN,
    ocr: str | None = _OCR,
    sequential_ids: bool = typer.Option(False, "--sequential-ids", metavar="", rich_help_panel=PSEUDONYMS,
                                        help="Number patients 1, 2, ... (numbers kept in the workspace, shared "
                                             "with batch runs)."),
    verify: bool = typer.Option(False, "--verify", metavar="", rich_help_panel=POLICY,
                                help="Rescan every output; quarantine what still looks like PHI."),
    workspace: Path = _WORKSPACE,
    record_originals: bool = typer.Option(False, "--record-originals", metavar="", rich_help_panel=RUN,
                                          help="Store the calling AE and the original SOP Instance UID of each "
                                               "file in the audit store."),
    resume: bool = typer.Option(True, "--resume/--no-resume", metavar="", rich_help_panel=RUN,
                                help="Do not forward again an instance already forwarded identically to this "
                                     "destination."),
    retry_max: float = typer.Option(60.0, "--retry-max", min=1.0, metavar="SECONDS", rich_help_panel=RUN,
                                    help="Longest wait between retries."),
    memory_budget: str | None = _MEMORY_BUDGET,
) -> None:
    """Receive DICOM (C-STORE), de-identify each file, forward it to --to; runs until stopped (Ctrl-C)."""
    from medveil.gateway.endpoints import ae_title as check_ae
    from medveil.gateway.endpoints import port as check_port
    from medveil.gateway.forwarder import Backoff
    from medveil.gateway.node import Gateway
    from medveil.gateway.scp import ScpSettings

    try:
        policy, key = _policy_and_key(profile, recipe, option, without, burned_in, sequential_ids, verify,
                                      pixel_scan, ocr, key_file, throwaway_key)
        own = check_ae(ae_title)
        scp = ScpSettings(ae_title=own, host=host, port=check_port(port),
                          allowed_callers=tuple(check_ae(a, "allowed calling AE title") for a in allow),
                          tls=_tls(tls_cert, tls_key, tls_ca))
        if scp.tls is not None:
            scp.tls.server_context()  # refuse a bad certificate now, not at the first association
        destination = _destination(to, to_tls, to_tls_ca, tls_cert, tls_key)
        gateway = Gateway(workspace=_workspace(workspace), policy=policy, key=key, destination=destination,
                          calling_ae=check_ae(calling_ae or own, "calling AE title"), scp=scp,
                          mappings_dir=mappings, record_originals=record_originals, resume=resume,
                          mode="serve", backoff=Backoff(ceiling=retry_max),
                          memory_budget=_size(memory_budget, "--memory-budget")).open()
    except MedveilError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({type(exc).__name__})")
    assert gateway.scp is not None and gateway.ledger is not None  # open() started both (an SCP was asked for)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log(f"medveil {policy.describe()}: listening as {own} on {host}:{gateway.scp.port}"
        f"{' (TLS)' if scp.tls else ''}, forwarding to {destination.describe()}; "
        f"outbox: {len(gateway.ledger.outbox)} waiting; Ctrl-C stops")
    last = None
    while not stop.wait(2.0):
        line = _status_line(gateway)
        if line != last:
            log(line)
            last = line
    log("stopping: the outbox keeps what was not forwarded yet")
    summary = gateway.close()
    log(_status_line(gateway, summary))


def log(line: str) -> None:
    """One status line, stamped with the UTC time and never wrapped: a service's log is read by line."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    console.print(f"{stamp} {line}", soft_wrap=True, markup=False, highlight=False)


def _status_line(gateway, summary=None) -> str:
    counts = gateway.scp.traffic.counts if gateway.scp else {}
    received = sum(counts.values())
    forwarder = gateway.forwarder
    text = (f"received {received} (queued {counts.get('written', 0)}, already forwarded "
            f"{counts.get('unchanged', 0)}, quarantined {counts.get('quarantined', 0)}); "
            f"forwarded {forwarder.sent if forwarder else 0}; outbox {len(gateway.ledger.outbox)}")
    refused = received - sum(counts.get(status, 0) for status in (Status.WRITTEN, Status.UNCHANGED, Status.QUARANTINED))
    if refused:
        text += f"; refused for lack of resources {refused}"
    if forwarder and forwarder.last_error:
        text += f"; last error: {forwarder.last_error}"
    if summary is not None:
        text += f"; audit store: {summary.workspace / 'audit.sqlite'}"
    return text


def pull(
    source: str = typer.Option(..., "--from", metavar="SOURCE", rich_help_panel=NETWORK,
                               help="The source PACS: AET@host:port (it must know medveil's AE title, host and port "
                                    "as a C-MOVE destination)."),
    to: str = _TO,
    study: list[str] = typer.Option([], "--study", metavar="UID", rich_help_panel=SELECTION,
                                    help="Study Instance UID (repeatable)."),
    patient: str | None = typer.Option(None, "--patient", metavar="ID", rich_help_panel=SELECTION,
                                          help="Patient ID."),
    from_date: str | None = typer.Option(None, "--from-date", metavar="YYYYMMDD", rich_help_panel=SELECTION,
                                            help="Studies on or after this date."),
    to_date: str | None = typer.Option(None, "--to-date", metavar="YYYYMMDD", rich_help_panel=SELECTION,
                                          help="Studies on or before this date."),
    ae_title: str = typer.Option(DEFAULT_AE, "--ae-title", metavar="AET", rich_help_panel=NETWORK,
                                 help="medveil's AE title (the C-MOVE destination)."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDRESS", rich_help_panel=NETWORK,
                             help="Address to receive the C-MOVE on (0.0.0.0: every interface; a remote source "
                                  "must reach it)."),
    port: int = typer.Option(11112, "--port", metavar="PORT", rich_help_panel=NETWORK,
                             help="Port to receive the C-MOVE on."),
    tls_cert: Path | None = _pem("--tls-cert", "TLS certificate (PEM) for medveil's side."),
    tls_key: Path | None = _pem("--tls-key", "Its key."),
    tls_ca: Path | None = _pem("--tls-ca", "CA certificates: the source's sub-associations must use TLS with a "
                                              "certificate signed by one."),
    from_tls_ca: Path | None = _pem("--from-tls-ca", "CA certificates to trust for the source (implies TLS)."),
    to_tls: bool = _TO_TLS,
    to_tls_ca: Path | None = _TO_TLS_CA,
    profile: str = _PROFILE,
    key_file: Path | None = _KEY_FILE,
    throwaway_key: bool = _THROWAWAY,
    mappings: Path | None = typer.Option(None, "--mappings", metavar="DIR", rich_help_panel=PSEUDONYMS,
                                            help="Keep the mapping files here."),
    recipe: Path | None = _RECIPE,
    option: list[str] = _OPTION,
    without: list[str] = _WITHOUT,
    burned_in: str | None = _BURNED_IN,
    pixel_scan: str | None = _PIXEL_SCAN,
    ocr: str | None = _OCR,
    sequential_ids: bool = typer.Option(False, "--sequential-ids", metavar="", rich_help_panel=PSEUDONYMS,
                                        help="Number patients 1, 2, ..."),
    verify: bool = typer.Option(False, "--verify", metavar="", rich_help_panel=POLICY,
                                help="Rescan every output."),
    workspace: Path = _WORKSPACE,
    record_originals: bool = typer.Option(False, "--record-originals", metavar="", rich_help_panel=RUN,
                                          help="Store original instance references in the audit store."),
    resume: bool = typer.Option(True, "--resume/--no-resume", metavar="", rich_help_panel=RUN,
                                help="Skip instances already forwarded."),
    wait: float = typer.Option(600.0, "--wait", min=0.0, metavar="SECONDS", rich_help_panel=RUN,
                               help="How long to wait for the destination to take everything; what is left "
                                    "stays in the outbox for the next start."),
    as_json: bool = typer.Option(False, "--json", metavar="", rich_help_panel=RUN,
                                 help="Print the summary as JSON on stdout."),
    memory_budget: str | None = _MEMORY_BUDGET,
) -> None:
    """Pull studies from a PACS (C-FIND, C-MOVE), de-identify them and push them to --to.

    Exit status: 0 all forwarded, 1 some files quarantined, 4 files still in the outbox.
    """
    from medveil.gateway.endpoints import Tls, parse_node
    from medveil.gateway.endpoints import ae_title as check_ae
    from medveil.gateway.endpoints import port as check_port
    from medveil.gateway.node import Gateway
    from medveil.gateway.pull import PullError, PullReport, Selection, find_studies, move_studies
    from medveil.gateway.scp import ScpSettings

    report = PullReport()
    received = RunProgress("pulling", quiet=as_json)
    forwarded = RunProgress("forwarding", quiet=as_json, held_label="refused")
    try:
        selection = Selection(tuple(study), patient, from_date, to_date)
        policy, key = _policy_and_key(profile, recipe, option, without, burned_in, sequential_ids, verify,
                                      pixel_scan, ocr, key_file, throwaway_key)
        own = check_ae(ae_title)
        src = parse_node(source, Tls(tls_cert, tls_key, from_tls_ca) if from_tls_ca else None, what="source")
        scp = ScpSettings(ae_title=own, host=host, port=check_port(port), tls=_tls(tls_cert, tls_key, tls_ca))
        destination = _destination(to, to_tls, to_tls_ca, tls_cert, tls_key)
        gateway = Gateway(workspace=_workspace(workspace), policy=policy, key=key, destination=destination,
                          calling_ae=own, scp=scp, mappings_dir=mappings, record_originals=record_originals,
                          resume=resume, mode="pull", memory_budget=_size(memory_budget, "--memory-budget"),
                          on_received=received, on_forwarded=lambda: forwarded(Status.WRITTEN)).open()
    except MedveilError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({type(exc).__name__})")
    # open() started all three (an SCP was asked for)
    assert gateway.scp is not None and gateway.ledger is not None and gateway.forwarder is not None
    drained = False
    try:
        studies = find_studies(src, own, selection)
        report.studies_found = len(studies)
        if not as_json:
            console.print(f"{len(studies)} studies match on {src.describe()}")
        if studies:
            sizes = [study.instances for study in studies]
            with received:  # a bar of files received and cleaned (total: what the source said it has)
                if all(size is not None for size in sizes):
                    received.set_total(sum(size or 0 for size in sizes))
                move_studies(src, own, own, studies, report)
        with forwarded:  # then a bar of the files the destination still has to confirm
            forwarded.set_total(forwarded.done + len(gateway.ledger.outbox))
            drained = gateway.forwarder.drain(wait)
    except PullError as exc:
        gateway.close()
        fail(str(exc))
    summary = gateway.close()
    left = len(gateway.ledger.outbox)
    counts = gateway.scp.traffic.counts
    result = {"studies_found": report.studies_found, "studies_moved": report.studies_moved,
              "suboperations": {"completed": report.completed, "failed": report.failed,
                                "warning": report.warning},
              "received": sum(counts.values()), "queued": counts.get(Status.WRITTEN, 0),
              "already_forwarded": counts.get(Status.UNCHANGED, 0), "quarantined": counts.get(Status.QUARANTINED, 0),
              "forwarded": gateway.forwarder.sent, "outbox": left, "problems": report.problems,
              "run_id": summary.run_id, "workspace": str(summary.workspace)}
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        log(f"studies moved {report.studies_moved}/{report.studies_found}; " + _status_line(gateway, summary))
        for problem in report.problems:
            console.print(f"[yellow]warning:[/] {problem}")
        if left:
            console.print(f"[yellow]{left} files wait in the outbox[/]: the next 'medveil serve' or "
                          "'medveil pull' with this workspace forwards them")
    if left or not drained:
        raise typer.Exit(4)
    if counts.get(Status.QUARANTINED, 0) or report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(pull)
