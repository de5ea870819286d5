"""pydicom/deid with its bundled default recipe (``deid.dicom``), as its docs show.

``DeidRecipe()`` with no argument loads the bundled recipe, and
``replace_identifiers(..., save=True, output_folder=...)`` writes each file
under its own base name into the folder given, so pointing the folder at the
mirrored directory keeps the relative path.  No ``ids`` lookup is passed: the
recipe's ``var:`` values (entity_id, item_timestamp, ...) exist only when a
user fills them in after ``get_identifiers``, and the defaults are what is
being measured.  The recipe's pixel filters (its ``%filter`` sections) are
the separate DicomCleaner step, not run by ``replace_identifiers``.
"""

from __future__ import annotations

from . import Peer

DRIVER = '''
from deid.config import DeidRecipe
from deid.dicom import replace_identifiers


def setup():
    return DeidRecipe()


def process(recipe, src, dst):
    replace_identifiers([str(src)], deid=recipe, save=True, output_folder=str(dst.parent),
                        overwrite=True)
'''

PEER = Peer(
    name="deid",
    requirement="deid==0.4.13",
    distribution="deid",
    driver=DRIVER,
    default="replace_identifiers with DeidRecipe() (bundled deid.dicom), no ids lookup",
)
