"""dicognito, as its command line runs it: one default ``Anonymizer()`` for the whole batch.

The CLI cannot be called directly because it names outputs by the new SOP
Instance UID, and the validator needs the input's relative path to pair
files.  Everything else matches the CLI's defaults: one Anonymizer shared by
all files (so a patient gets one pseudonym across the batch), no seed, no
kept elements; its burned-in-annotation guard only warns by default, so
leaving it out changes nothing that is written.  The CLI reads with
``force=False``, which ``dcmread``'s default is as well.
"""

from __future__ import annotations

from . import Peer

DRIVER = '''
import pydicom
from dicognito.anonymizer import Anonymizer


def setup():
    return Anonymizer()


def process(anonymizer, src, dst):
    with pydicom.dcmread(src) as dataset:
        anonymizer.anonymize(dataset)
        dataset.save_as(dst)
'''

PEER = Peer(
    name="dicognito",
    requirement="dicognito==0.19.0",
    distribution="dicognito",
    driver=DRIVER,
    default="Anonymizer() with its defaults, one per batch, as the CLI",
)
