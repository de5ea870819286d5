"""The thread that drains the outbox to the destination, backing off when it fails.

Files leave in arrival order, in batches (one association or one POST per
batch).  Two kinds of failure are told apart:

* the destination is down (no connection, association refused, HTTP 5xx):
  nothing is charged to the files; the whole queue waits, doubling the wait
  after each failed try up to a ceiling, and retries;
* the destination refused one file (a failure status): only that file waits,
  with its own doubling wait, while the others go on.

Nothing is ever dropped: a file leaves the outbox only when the destination
confirmed it.  Nothing is sent that is not what the ledger recorded: before
each try a file's bytes are hashed again and compared with the hash its name
carries; a file changed since (damaged, replaced) is held back like a refused
one and reported, never sent.  After a restart the queue starts over with every file that
is still there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from medveil.gateway.outbox import Entry, Outbox
from medveil.gateway.senders import DestinationDown, Sent
from medveil.runner.book import sha256_file


@dataclass(frozen=True)
class Backoff:
    """Waits of ``first * 2**n`` seconds, at most ``ceiling``."""

    first: float = 1.0
    ceiling: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.ceiling, self.first * (2 ** max(0, failures - 1)))


class Forwarder:
    """Sends outbox entries with *sender*; reports each outcome to *on_sent* / *on_failed*.

    *before_send* runs before every batch (a hook; the gateway needs none: pairs are
    journaled before a file enters the outbox).  The callbacks
    receive the entry and the destination's answer; they must not raise.
    """

    def __init__(self, outbox: Outbox, sender, *, batch: int = 64, backoff: Backoff = Backoff(),
                 before_send: Callable[[], None] = lambda: None,
                 on_sent: Callable[[Entry, Sent], None] = lambda e, s: None,
                 on_failed: Callable[[Entry, str], None] = lambda e, d: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.sender = sender
        self.batch = batch
        self.backoff = backoff
        self.before_send = before_send
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        #: seq -> (failed attempts, monotonic time of the next try), for files the destination refused.
        self._refused: dict[int, tuple[int, float]] = {}
        self.down_failures = 0
        self.down_until = 0.0
        self.sent = 0
        self.last_error: str | None = None

    # -- control ----------------------------------------------------------------

    def start(self) -> Forwarder:
        self._thread = threading.Thread(target=self._loop, name="medveil-forwarder", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """New files are in the outbox (or the user wants a retry now)."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty; False when *timeout* seconds passed first."""
        deadline = time.monotonic() + timeout
        self.wake()
        with self._idle:
            while len(self.outbox):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    # -- the loop -----------------------------------------------------------------

    def _close_sender(self) -> None:
        try:
            getattr(self.sender, "close", lambda: None)()
        except Exception:
            pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception as exc:  # recording an outcome failed: the thread must outlive it
                wait = self._trouble(exc)
            if wait is None:
                self._close_sender()  # nothing to send: do not hold the destination's association
                with self._idle:
                    self._idle.notify_all()
                wait = 5.0  # nothing to do: look again now and then (files may be added by hand)
            self._wake.wait(wait)
            self._wake.clear()
        self._close_sender()

    def step(self) -> float | None:
        """Send one batch of what is due; returns seconds until something is due, None when idle."""
        now = self.clock()
        if now < self.down_until:
            return self.down_until - now
        pending = self.outbox.pending()
        if not pending:
            return None
        due = [e for e in pending if self._refused.get(e.seq, (0, 0.0))[1] <= now][:self.batch]
        damaged = [e for e in due if not _as_recorded(e)]
        for entry in damaged:  # never sent: it waits, reported, until someone restores or removes it
            self._hold(entry, "the outbox file no longer matches the hash recorded for it; not sent")
        due = [e for e in due if e not in damaged]
        if not due:
            return max(0.05, min(t for _, t in (self._refused[e.seq] for e in pending
                                                if e.seq in self._refused)) - now)
        try:
            self.before_send()
            answers = self.sender.send([e.path for e in due])
        except DestinationDown as exc:
            self._close_sender()
            self.down_failures += 1
            self.last_error = exc.detail
            delay = self.backoff.delay(self.down_failures)
            self.down_until = self.clock() + delay
            for entry in due[:1]:
                self.on_failed(entry, f"destination unavailable: {exc.detail}; retry in {delay:g} s")
            return delay
        except Exception as exc:  # a bug in a sender must not kill the thread: back off and retry
            return self._trouble(exc)
        self.down_failures = 0
        self.last_error = None
        for entry, answer in zip(due, answers, strict=False):
            if answer.ok:
                self.outbox.remove(entry)
                self._refused.pop(entry.seq, None)
                self.sent += 1
                self.on_sent(entry, answer)
            else:
                self._hold(entry, answer.detail)
        return 0.0

    def _trouble(self, exc: Exception) -> float:
        """Back off as if the destination were down; the error's type is all that is kept."""
        self.down_failures += 1
        self.last_error = f"medveil's own error while forwarding ({type(exc).__name__})"
        delay = self.backoff.delay(self.down_failures)
        self.down_until = self.clock() + delay
        return delay

    def _hold(self, entry: Entry, why: str) -> None:
        """*entry* waits alone, with its own doubling wait."""
        failures = self._refused.get(entry.seq, (0, 0.0))[0] + 1
        delay = self.backoff.delay(failures)
        self._refused[entry.seq] = (failures, self.clock() + delay)
        self.last_error = why
        self.on_failed(entry, f"{why}; retry in {delay:g} s")


def _as_recorded(entry: Entry) -> bool:
    """Whether the outbox file still holds the bytes whose hash the ledger recorded (and its name carries)."""
    try:
        return sha256_file(entry.path) == entry.output_sha256
    except OSError:
        return False
