"""medveil as a node in the imaging network: receive, de-identify, forward.

``medveil serve`` is a DICOM Storage SCP: a modality or PACS sends images
with C-STORE, every file goes through the same per-file pipeline as a batch
run (:func:`medveil.pipeline.deidentify_bytes`), and the cleaned files are
forwarded to a destination (a PACS by C-STORE, or a DICOMweb server by
STOW-RS).  ``medveil pull`` fetches studies from a source PACS (C-FIND, then
C-MOVE to medveil itself) through the same path.

The pieces, one responsibility each:

* :mod:`~medveil.gateway.endpoints`: what the user names (AE titles, addresses, TLS).
* :mod:`~medveil.gateway.outbox`: cleaned files waiting to leave, durable across restarts.
* :mod:`~medveil.gateway.senders`: C-STORE and STOW-RS clients that send outbox files as they are.
* :mod:`~medveil.gateway.forwarder`: the thread that drains the outbox, with back-off.
* :mod:`~medveil.gateway.ledger`: the workspace bookkeeping (audit store, mapping pairs,
  quarantine, sequential IDs), the one adapter over the batch runner's pieces.
* :mod:`~medveil.gateway.intake`: one received file through the pipeline into the ledger and the outbox.
* :mod:`~medveil.gateway.scp`: the Storage SCP.
* :mod:`~medveil.gateway.pull`: C-FIND and C-MOVE against a source PACS.
"""
