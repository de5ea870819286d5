"""What a curator needs to look at a run before release.

The pieces, in the order a file meets them:

- :mod:`~medveil.review.capture` runs inside the per-file core: it notes the
  header before de-identification and, for an image whose pixels were masked,
  renders the frame before and after (downscaled), so the coordinator can keep
  them;
- :mod:`~medveil.review.keep` writes that material into the private workspace
  (``review/review.sqlite``, owner-only), one row per input;
- :mod:`~medveil.review.overview` reads the audit store and that database
  back into one account of the run: files, actions, repairs, masked boxes,
  quarantine reasons, curator decisions;
- :mod:`~medveil.review.decisions` releases or drops a quarantined file;
- :mod:`~medveil.review.app` (``medveil review``), :mod:`~medveil.review.static`
  (``deidentify --report``) and :mod:`~medveil.review.terminal`
  (``medveil report``) show the account.

Original header values never leave the core: the workspace keeps, per file,
which attribute changed and how, with the value the OUTPUT holds.  The only
original content kept is the "before" pixels of masked images, and only in
the workspace.
"""
