"""The Storage SCP: the network side of ``medveil serve`` (and of ``medveil pull``'s C-MOVE).

It accepts every storage SOP class pynetdicom knows, in every transfer
syntax (the dataset is never decoded here: its bytes go to the core as they
arrived), plus Verification (C-ECHO).  Calling AE titles can be restricted;
the called AE title must be ours.

A C-STORE is answered only after the file is cleaned and recorded, and
queued in the outbox (durably) or quarantined: a success means medveil has
taken custody.  A file that is quarantined is answered with success too,
since sending it again would not change the outcome; the curator finds it
in the quarantine.  If medveil cannot take custody (the workspace disk is
full), the answer is 0xA700 "Out of Resources" so that the sender keeps the
file and tries again.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from medveil.gateway.endpoints import Tls
from medveil.gateway.intake import Intake, part10
from medveil.gateway.latency import acceptor_handlers

OUT_OF_RESOURCES = 0xA700
SUCCESS = 0x0000
#: The outcome of a C-STORE answered "Out of Resources" (the sender keeps the file).
REFUSED = "refused"


@dataclass
class ScpSettings:
    ae_title: str = "MEDVEIL"
    host: str = "127.0.0.1"
    port: int = 11112
    #: Calling AE titles allowed to associate; empty: anyone.
    allowed_callers: tuple[str, ...] = ()
    tls: Tls | None = None
    max_associations: int = 10


@dataclass
class Traffic:
    """Counts per outcome, for the console (no identifiers)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.counts[outcome] += 1


class StorageScp:
    """A pynetdicom server feeding :class:`Intake`; start with :meth:`start`, end with :meth:`stop`."""

    def __init__(self, settings: ScpSettings, intake: Intake, *, on_association=None, on_stored=None) -> None:
        self.settings = settings
        self.intake = intake
        self.traffic = Traffic()
        self.on_association = on_association or (lambda kind, detail: None)
        #: Called with each answered C-STORE's outcome (a Status, or "refused"), after the answer is decided.
        self.on_stored = on_stored or (lambda outcome: None)
        self._server = None

    def build_ae(self):
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.settings.ae_title)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None  # each of pynetdicom's storage contexts names its class
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_called_aet = True
        if self.settings.allowed_callers:
            ae.require_calling_aet = list(self.settings.allowed_callers)
        ae.maximum_associations = self.settings.max_associations
        return ae

    def start(self) -> StorageScp:
        from pynetdicom import evt

        ae = self.build_ae()
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, lambda event: SUCCESS),
                    (evt.EVT_ACCEPTED, self._on_accepted), (evt.EVT_RELEASED, self._on_ended),
                    (evt.EVT_ABORTED, self._on_ended), *acceptor_handlers()]
        context = self.settings.tls.server_context() if self.settings.tls else None
        self._server = ae.start_server((self.settings.host, self.settings.port), block=False,
                                       evt_handlers=handlers, ssl_context=context)
        return self

    @property
    def port(self) -> int:
        """The port actually bound (useful when the settings asked for port 0)."""
        return self._server.server_address[1] if self._server else self.settings.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- handlers (run on the association's thread) ---------------------------------------

    def _on_accepted(self, event) -> None:
        self.on_association("association", {"calling_ae": str(event.assoc.requestor.ae_title).strip(),
                                            "tls": self.settings.tls is not None})

    def _on_ended(self, event) -> None:
        self.on_association("association-end", {"calling_ae": str(event.assoc.requestor.ae_title).strip()})

    def _on_store(self, event) -> int:
        request = event.request
        try:
            sop_class = str(request.AffectedSOPClassUID or "").strip("\0 ")
            sop_instance = str(request.AffectedSOPInstanceUID or "").strip("\0 ")
            data = part10(sop_class, sop_instance, str(event.context.transfer_syntax),
                          event.encoded_dataset(include_meta=False))
            caller = str(event.assoc.requestor.ae_title).strip()
            admitted = self.intake.receive(data, sop_instance, f"dicom://{caller}/{sop_instance}")
        except Exception as exc:  # our storage failed: the sender keeps the file and retries
            self.traffic.add(f"refused ({type(exc).__name__})")
            self.on_stored(REFUSED)
            return OUT_OF_RESOURCES
        self.traffic.add(admitted.status)
        self.on_stored(admitted.status)
        return SUCCESS
