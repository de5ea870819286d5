"""One PNG of the masked images of a run, before and after, boxes drawn (``report --masked-png``).

It is made from the workspace's review database, so its "before" halves are
original pixels: it is written owner-only, for the curator and for the demo
(``make demo`` writes ``demo/masked.png``), never for a release.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

from PIL import Image, ImageDraw

from medveil.errors import MedveilError
from medveil.review.database import ReviewDatabase
from medveil.review.overview import Overview
from medveil.store.private import open_private

BOX_COLOUR = (255, 48, 48)
GAP = 12
LABEL = 18
MAX_FILES = 12
MIN_SIDE = 384
MIN_WIDTH = 720


def _with_boxes(png: bytes, boxes, region, scale: float) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    zoom = max(1, min(4, MIN_SIDE // max(1, image.width)))  # small frames (a 128-pixel CT) enlarged
    if zoom > 1:
        image = image.resize((image.width * zoom, image.height * zoom), Image.Resampling.NEAREST)
        scale *= zoom
    draw = ImageDraw.Draw(image)
    x0, y0 = region[0], region[1]
    for x1, y1, x2, y2 in boxes:
        draw.rectangle([round((x1 - x0) * scale), round((y1 - y0) * scale),
                        round((x2 - x0) * scale) - 1, round((y2 - y0) * scale) - 1], outline=BOX_COLOUR, width=2)
    return image


def masked_pairs(overview: Overview, database: ReviewDatabase,
                 limit: int = MAX_FILES) -> list[tuple[str, Image.Image, Image.Image]]:
    """(label, before, after) for the whole-frame pictures of up to *limit* masked files."""
    pairs: list[tuple[str, Image.Image, Image.Image]] = []
    for state in overview.masked:
        if len(pairs) >= limit:
            break
        for info in database.pictures(state.input_ref):
            if info.kind != "frame":
                continue
            before = database.picture_png(state.input_ref, info.number, "before")
            after = database.picture_png(state.input_ref, info.number, "after")
            if before is None or after is None:
                continue
            scale = info.width / max(1, info.region[2] - info.region[0])
            label = f"{state.input_ref[:12]} frame {info.frame}: {len(info.boxes)} box(es)"
            pairs.append((label, _with_boxes(before, info.boxes, info.region, scale),
                          _with_boxes(after, info.boxes, info.region, scale)))
    return pairs


def write_masked_png(overview: Overview, path: Path) -> int:
    """Write the before/after sheet to *path* (mode 0600); returns how many images it shows (0: none written)."""
    path = Path(path)
    _refuse_inside_release(overview, path)
    database = ReviewDatabase.open(overview.workspace)
    if database is None:
        return 0
    with database:
        pairs = masked_pairs(overview, database)
    if not pairs:
        return 0
    width = max(MIN_WIDTH, max(b.width + a.width for _, b, a in pairs) + 3 * GAP)
    height = sum(max(b.height, a.height) + LABEL + GAP for _, b, a in pairs) + GAP
    sheet = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    y = GAP
    for label, before, after in pairs:
        draw.text((GAP, y), f"{label}. Left: before (original pixels, private). Right: after (as released).",
                  fill=(230, 230, 230))
        y += LABEL
        sheet.paste(before, (GAP, y))
        sheet.paste(after, (2 * GAP + before.width, y))
        y += max(before.height, after.height) + GAP
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    # 0600 before the first byte (an existing file keeps its mode through O_TRUNC), never through a link.
    try:
        with os.fdopen(open_private(path), "wb") as handle:
            handle.write(buffer.getvalue())
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else type(exc).__name__
        raise MedveilError(f"the masked-image sheet cannot be written ({why})") from None
    return len(pairs)


def _refuse_inside_release(overview: Overview, path: Path) -> None:
    """The sheet's "before" halves are original pixels: never inside the run's release tree."""
    if not overview.output or "://" in overview.output:
        return
    release = Path(overview.output).resolve()
    target = path.resolve()
    if target == release or release in target.parents:
        raise MedveilError("the masked-image sheet holds original pixels and must not be written inside the "
                           "run's release tree; write it to a private place")
