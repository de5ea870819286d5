"""TCP settings that keep a DIMSE exchange from waiting on delayed acknowledgements.

A C-STORE request goes out as two small writes (the command, then the
dataset).  With Nagle's algorithm on, the sender holds the second write
until the first is acknowledged, and the receiver's kernel delays that
acknowledgement by up to 40 ms.  Each file then costs about 40 ms whatever
its size: measured here on loopback, pynetdicom to pynetdicom, 47 ms per
C-STORE of CT_small, and 5.5 ms with either fix below.  DCMTK has left
Nagle's algorithm on by default since 3.6.2 (Orthanc's own builds turn it
off), and pynetdicom leaves it on, so medveil cannot count on its peers.

* As a sender (forwarding C-STORE, C-FIND, C-MOVE), medveil turns Nagle's
  algorithm off on its own socket (``TCP_NODELAY``).
* As a receiver (``serve``, and ``pull``'s C-MOVE), it asks the kernel to
  acknowledge at once (``TCP_QUICKACK``, Linux), again after every PDU,
  since the kernel drops back to delayed acknowledgements by itself.

Both are pynetdicom event handlers.  A socket that refuses an option (another
operating system, a closed connection) is left as it is: this is speed, not
safety.
"""

from __future__ import annotations

import socket

#: Linux only; elsewhere the receiver-side setting is skipped.
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _raw_socket(event) -> socket.socket | None:
    try:
        return event.assoc.dul.socket.socket
    except AttributeError:
        return None


def _set(event, option: int | None) -> None:
    sock = _raw_socket(event)
    if sock is None or option is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)
    except OSError:
        pass


def no_delay(event) -> None:
    """EVT_CONN_OPEN on medveil's requesting side: send each PDU at once."""
    _set(event, socket.TCP_NODELAY)


def quick_ack(event) -> None:
    """EVT_CONN_OPEN and EVT_PDU_RECV on medveil's accepting side: acknowledge at once."""
    _set(event, _QUICKACK)


def requestor_handlers() -> list:
    """Handlers for ``AE.associate(..., evt_handlers=...)``."""
    from pynetdicom import evt

    return [(evt.EVT_CONN_OPEN, no_delay)]


def acceptor_handlers() -> list:
    """Handlers for ``AE.start_server(..., evt_handlers=...)``."""
    from pynetdicom import evt

    return [(evt.EVT_CONN_OPEN, quick_ack), (evt.EVT_PDU_RECV, quick_ack)]
