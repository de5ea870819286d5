"""Clients that deliver outbox files to the destination, byte for byte.

Both senders take the outbox's files as they are: the C-STORE sender hands
pynetdicom the file path so the dataset goes out as stored (no decode and
re-encode), and the STOW-RS sender posts the Part 10 file itself.  What
arrives is what the core wrote and the audit store hashed.

A sender says per file whether the destination took it.  When the
destination cannot be reached at all it raises :class:`DestinationDown`
instead, so that the forwarder backs off as a whole rather than charging an
attempt to every file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.filereader import read_file_meta_info

from medveil.gateway.endpoints import Destination, DicomNode, DicomWeb
from medveil.gateway.latency import requestor_handlers

if TYPE_CHECKING:
    from pynetdicom.association import Association

#: Statuses a C-STORE SCP returns for a stored instance (PS3.4 Table B.2-1): success and warnings.
STORED = {0x0000, 0xB000, 0xB006, 0xB007}
#: At most this many presentation contexts in one association (PS3.8 9.3.2.2: 128 odd context IDs).
MAX_CONTEXTS = 128


class DestinationDown(Exception):
    """The destination cannot be reached or refused the association; *detail* is safe text."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Sent:
    """The destination's answer for one file."""

    ok: bool
    detail: str = ""


class DimseSender:
    """C-STORE SCU: one presentation context per (SOP class, transfer syntax) in the batch.

    The association stays open from batch to batch while files keep coming
    (setting one up costs more than sending a small image); the forwarder
    calls :meth:`close` when the outbox is empty.  A batch that needs a
    context the open association lacks opens a new one.
    """

    def __init__(self, node: DicomNode, calling_ae: str, *, timeout: float = 60.0) -> None:
        self.node = node
        self.calling_ae = calling_ae
        self.timeout = timeout
        self._assoc: Association | None = None
        self._offered: set[tuple[str, str]] = set()

    def close(self) -> None:
        if self._assoc is not None and self._assoc.is_established:
            self._assoc.release()
        self._assoc = None
        self._offered = set()

    def _association(self, pairs: list[tuple[str, str]]) -> Association:
        from pynetdicom import AE
        from pynetdicom.presentation import build_context

        if self._assoc is not None and self._assoc.is_established and set(pairs) <= self._offered:
            return self._assoc
        self.close()
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = min(self.timeout, 30.0)
        tls = (self.node.tls.client_context(), self.node.host) if self.node.tls else None
        try:
            assoc = ae.associate(self.node.host, self.node.port, ae_title=self.node.ae_title, tls_args=tls,
                                 contexts=[build_context(sop_class, [syntax]) for sop_class, syntax in pairs],
                                 evt_handlers=requestor_handlers())
        except (OSError, ValueError) as exc:
            raise DestinationDown(f"cannot connect ({type(exc).__name__})") from None
        if not assoc.is_established:
            raise DestinationDown("association rejected or aborted" if assoc.is_rejected or assoc.is_aborted
                                  else "no association")
        self._assoc, self._offered = assoc, set(pairs)
        return assoc

    def send(self, paths: Sequence[Path]) -> list[Sent]:
        from pynetdicom import _config

        # Send stored files without decoding them: the bytes that leave are the bytes recorded.
        _config.STORE_SEND_CHUNKED_DATASET = True
        metas: list[tuple[str, str] | None] = []
        for path in paths:
            try:
                meta = read_file_meta_info(path)
                metas.append((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
            except Exception:  # a damaged outbox file: it stays, and says why
                metas.append(None)
        pairs = sorted({pair for pair in metas if pair is not None})
        results: list[Sent | None] = [None if m else Sent(False, "unreadable outbox file") for m in metas]
        # Contexts in rounds of at most 128: a large mixed batch needs more than one association.
        for start in range(0, len(pairs), MAX_CONTEXTS):
            chunk = pairs[start:start + MAX_CONTEXTS]
            assoc = self._association(chunk)
            wanted = set(chunk)
            accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts}
            for index, (path, pair) in enumerate(zip(paths, metas, strict=True)):
                if pair not in wanted:
                    continue
                if pair not in accepted:
                    results[index] = Sent(False, "the destination does not accept this SOP class "
                                                 "in this transfer syntax")
                elif not assoc.is_established:
                    results[index] = Sent(False, "association lost")
                else:
                    results[index] = self._store(assoc, path)
        if not (self._assoc and self._assoc.is_established):
            self.close()
        if results and all(r is not None and not r.ok and r.detail == "association lost" for r in results):
            raise DestinationDown("association lost")
        return [r or Sent(False, "not sent") for r in results]

    @staticmethod
    def _store(assoc, path: Path) -> Sent:
        try:
            status = assoc.send_c_store(path)
        except (OSError, ValueError, AttributeError, RuntimeError) as exc:
            return Sent(False, f"C-STORE failed ({type(exc).__name__})")
        code = getattr(status, "Status", None)
        if code is None:
            return Sent(False, "no response (timeout or association lost)")
        if int(code) in STORED:
            return Sent(True, f"0x{int(code):04X}")
        return Sent(False, f"C-STORE status 0x{int(code):04X}")


class StowSender:
    """STOW-RS (PS3.18 10.5): one multipart/related POST of Part 10 files per batch."""

    #: Keep one request under this many bytes (servers limit request bodies).
    MAX_BODY = 256 << 20

    def __init__(self, service: DicomWeb) -> None:
        self.service = service

    def send(self, paths: Sequence[Path]) -> list[Sent]:
        results: list[Sent] = []
        batch: list[tuple[Path, bytes]] = []
        size = 0
        for path in paths:
            data = path.read_bytes()
            if batch and size + len(data) > self.MAX_BODY:
                results.extend(self._post(batch))
                batch, size = [], 0
            batch.append((path, data))
            size += len(data)
        if batch:
            results.extend(self._post(batch))
        return results

    def _post(self, batch: list[tuple[Path, bytes]]) -> list[Sent]:
        boundary = uuid.uuid4().hex
        body = bytearray()
        for _, data in batch:
            body += (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
            body += data
            body += b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"{self.service.url}/studies", data=bytes(body), method="POST",
            headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                     "Accept": "application/dicom+json"})
        context = self.service.tls.client_context() if self.service.tls else None
        try:
            with urllib.request.urlopen(request, timeout=self.service.timeout, context=context) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
            if status >= 500 or status in (401, 403, 404, 408, 429):
                raise DestinationDown(f"HTTP {status}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DestinationDown(f"cannot connect ({type(getattr(exc, 'reason', exc)).__name__})") from None
        failed = _failed_instances(payload)
        if status == 200 and not failed:
            return [Sent(True, "HTTP 200")] * len(batch)
        if status not in (200, 202, 409):
            return [Sent(False, f"HTTP {status}")] * len(batch)
        out = []
        for path, _ in batch:
            uid = str(read_file_meta_info(path).MediaStorageSOPInstanceUID)
            out.append(Sent(False, f"STOW-RS refused it (HTTP {status})") if uid in failed
                       else Sent(True, f"HTTP {status}"))
        return out


def _failed_instances(payload: bytes) -> set[str]:
    """SOP Instance UIDs in the response's Failed SOP Sequence (0008,1198), from DICOM JSON."""
    try:
        doc = json.loads(payload or b"{}")
    except ValueError:
        return set()
    if isinstance(doc, list):
        doc = doc[0] if doc else {}
    items = (doc.get("00081198") or {}).get("Value") or [] if isinstance(doc, dict) else []
    failed = set()
    for item in items:
        value = (item.get("00081155") or {}).get("Value") if isinstance(item, dict) else None
        if value:
            failed.add(str(value[0]))
    return failed


def make_sender(destination: Destination, calling_ae: str):
    """The sender for *destination*."""
    if isinstance(destination, DicomWeb):
        return StowSender(destination)
    return DimseSender(destination, calling_ae)
