"""A running gateway: ledger, outbox, forwarder and (optionally) the Storage SCP, wired together.

``medveil serve`` keeps one open until it is stopped; ``medveil pull`` opens
one, retrieves, waits for the outbox to drain and closes it.  Closing stops
accepting, stops the forwarder after the batch in flight, flushes the
mapping files and stamps the run's end in the audit store.  Whatever is
still in the outbox stays there for the next start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from medveil.gateway.endpoints import Destination
from medveil.gateway.forwarder import Backoff, Forwarder
from medveil.gateway.intake import Intake
from medveil.gateway.ledger import Ledger
from medveil.gateway.scp import ScpSettings, StorageScp
from medveil.gateway.senders import make_sender
from medveil.policy import Policy
from medveil.pseudonym import Key
from medveil.runner.limits import default_memory_budget


class Gateway:
    def __init__(self, *, workspace: Path, policy: Policy, key: Key, destination: Destination,
                 calling_ae: str, scp: ScpSettings | None = None, mappings_dir: Path | None = None,
                 record_originals: bool = False, resume: bool = True, mode: str = "serve",
                 backoff: Backoff = Backoff(), batch: int = 64, sender=None,
                 memory_budget: int | None = None,
                 on_received: Callable[[str], None] | None = None,
                 on_forwarded: Callable[[], None] | None = None) -> None:
        self.workspace = Path(workspace)
        self.policy = policy
        self.key = key
        self.destination = destination
        self.calling_ae = calling_ae
        self.scp_settings = scp
        self.mappings_dir = mappings_dir
        self.record_originals = record_originals
        self.resume = resume
        self.mode = mode
        self.backoff = backoff
        self.batch = batch
        self.sender = sender or make_sender(destination, calling_ae)
        # Each association cleans its files on its own thread: the associations share the memory the
        # way a batch run's workers do.
        self.memory_budget = memory_budget or default_memory_budget(scp.max_associations if scp else 1)
        #: Progress hooks: each received file's outcome, each file the destination confirmed.
        self.on_received = on_received or (lambda outcome: None)
        self.on_forwarded = on_forwarded or (lambda: None)
        self.ledger: Ledger | None = None
        self.forwarder: Forwarder | None = None
        self.scp: StorageScp | None = None

    def open(self) -> Gateway:
        settings = {"destination": self.destination.describe(), "resume": self.resume}
        if self.scp_settings is not None:
            settings.update(ae_title=self.scp_settings.ae_title, port=self.scp_settings.port,
                            tls=self.scp_settings.tls is not None)
        self.ledger = Ledger(self.workspace, self.policy, self.key, mappings_dir=self.mappings_dir,
                             record_originals=self.record_originals, mode=self.mode,
                             destination=self.destination.describe(), settings=settings)
        try:
            self.forwarder = Forwarder(self.ledger.outbox, self.sender, batch=self.batch, backoff=self.backoff,
                                       on_sent=self._sent,
                                       on_failed=self.ledger.forward_failed).start()
            self.intake = Intake(self.ledger, self.policy, self.key, resume=self.resume,
                                 memory_budget=self.memory_budget, on_queued=self.forwarder.wake)
            if self.scp_settings is not None:
                self.scp = StorageScp(self.scp_settings, self.intake, on_association=self._association,
                                      on_stored=self.on_received).start()
        except BaseException:
            self.close()
            raise
        return self

    # The callbacks run only after open() has made the ledger.
    def _sent(self, entry, answer) -> None:
        assert self.ledger is not None
        self.ledger.forwarded(entry, answer.detail)
        self.on_forwarded()

    def _association(self, kind: str, detail: dict) -> None:
        assert self.ledger is not None
        self.ledger.event(kind, json.dumps(detail, sort_keys=True))
        if kind == "association-end":
            self.ledger.flush()  # the mapping files catch up with the journal after each association

    def close(self):
        """Stop everything; returns the run summary."""
        if self.scp is not None:
            self.scp.stop()
        if self.forwarder is not None:
            self.forwarder.stop(timeout=120)
        return self.ledger.close() if self.ledger is not None else None

    def __enter__(self) -> Gateway:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
